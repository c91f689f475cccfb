"""The back office: registration clerks issue activations, the helpdesk follows them.

Clerks see the records of their own office; the helpdesk (``keys.view_all_offices``) sees all.
No page shows a code, a link token or a password hash: the hashes are not admin fields at all,
and the paper code appears once, on the letter rendered right after it is made.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from keys import audit
from keys.admin_forms import CitizenForm, FindCitizenForm
from keys.models import (
    Activation,
    AuditEvent,
    Citizen,
    DigitalKey,
    OutboundMessage,
    RegistrationOffice,
    User,
)
from keys.paginators import LargeTablePaginator
from keys.search import citizen_condition
from keys.services import issuance
from keys.validators import canonical_username

admin.site.site_header = _("CSAM – My digital keys: registration offices and helpdesk")
admin.site.site_title = _("CSAM – My digital keys")
admin.site.index_title = _("Registration and helpdesk")

BOTH_LOCATIONS = [ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM]


def sees_all_offices(user: User) -> bool:
    """Helpdesk staff and administrators see every office's records; clerks only their own."""
    return user.is_superuser or user.has_perm("keys.view_all_offices")


class OfficeScopedAdmin(admin.ModelAdmin):
    """Limits what a clerk sees to the records of their own registration office.

    These lists hold a country's records: no ``COUNT(*)`` of the whole table (no "N total",
    and a paginator that counts at most 1 000 rows, ``keys.paginators``), 50 rows a page."""

    office_lookups: tuple[str, ...] = ("office",)
    paginator = LargeTablePaginator
    show_full_result_count = False
    list_per_page = 50
    # Django's own words, from Django's catalogue (a variable, so not a message of ours)
    action_checkbox_label = "Select this object for an action - {}"

    def action_checkbox(self, obj: object) -> str:
        """The admin's checkbox of a row, the same HTML written directly: rendering a form
        widget's template for every row is a third of a list page's time."""
        label = format_html(gettext(self.action_checkbox_label), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            ACTION_CHECKBOX_NAME,
            obj.pk,
            label,
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if sees_all_offices(request.user):
            return queryset
        office = request.user.office
        if office is None:
            return queryset.none()
        condition = Q()
        for lookup in self.office_lookups:
            condition |= Q(**{lookup: office})
        return queryset.filter(condition)

    def get_list_filter(self, request: HttpRequest) -> Iterable:
        filters = list(super().get_list_filter(request))
        if not sees_all_offices(request.user):
            filters = [f for f in filters if f not in ("office", OfficeFilter)]
        return filters


class CitizenSearchMixin:
    """The helpdesk's search, through indexes at a million citizens (``keys.search``): a
    national number as typed, an e-mail address, a partial name without accents or case, a
    username. ``search_fields`` only shows the search box."""

    citizen_prefix = ""
    # The order of search results. The list's own order (last name, first name) walks its index
    # from "A" to the first matches: for "Peeters", through every name before P (a second and
    # more at a million citizens). Ordered by the folded name instead, the matches are found
    # through the trigram index and sorted: tens of milliseconds, and still in name order.
    search_ordering: list[str] | None = None

    def get_ordering(self, request: HttpRequest) -> list | tuple:
        if self.search_ordering and request.GET.get(SEARCH_VAR, "").strip():
            return self.search_ordering
        return super().get_ordering(request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        condition = citizen_condition(search_term, self.citizen_prefix)
        if condition is None:
            return queryset, False
        return queryset.filter(condition), False


class LatestActivationChangeList(ChangeList):
    """The citizens of one page with their latest activation's state, in one more query.

    Not a subquery per row in the list's query: PostgreSQL would compute it for every row an
    ``OFFSET`` skips too (20 000 rows on page 200)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        page = list(self.result_list)
        latest: dict[int, tuple] = {}
        rows = (
            Activation.objects.filter(citizen_id__in=[c.pk for c in page])
            .order_by("citizen_id", "-created_at", "-id")
            .values_list("citizen_id", "state", "expires_at")
        )
        for citizen_id, state, expires_at in rows:
            latest.setdefault(citizen_id, (state, expires_at))
        for citizen in page:
            citizen.latest_state, citizen.latest_expires_at = latest.get(citizen.pk, (None, None))
        self.result_list = page


class OfficeFilter(admin.ListFilter):
    """The office of a record, chosen in one ``<select>``: the admin's own filter renders a link
    with its query string for each of the country's 581 offices, on every list page."""

    title = _("registration office")
    parameter_name = "office"
    template = "admin/keys/office_filter.html"

    def __init__(self, request, params, model, model_admin) -> None:
        super().__init__(request, params, model, model_admin)
        value = params.pop(self.parameter_name, [""])
        value = value[-1] if isinstance(value, list) else value
        self.value = int(value) if str(value).isdigit() else None
        if self.value is not None:
            self.used_parameters[self.parameter_name] = str(self.value)

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value is None:
            return queryset
        return queryset.filter(office_id=self.value)

    def choices(self, changelist: ChangeList) -> Iterable[dict]:
        hidden = [
            (name, value)
            for name, value in changelist.params.items()
            if name not in {self.parameter_name, "p"}
        ]
        yield {
            "parameter": self.parameter_name,
            "selected": str(self.value),
            "hidden": hidden,
            # the ids as text: 581 numbers through the template's number formatting cost more
            # than the query
            "offices": [
                (str(pk), name)
                for pk, name in RegistrationOffice.objects.values_list("pk", "name").order_by(
                    "name"
                )
            ],
        }


class EffectiveStateFilter(admin.SimpleListFilter):
    """Filter by state as the helpdesk understands it: an open activation past its expiry date
    counts as expired."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return Activation.State.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        now = timezone.now()
        if value == Activation.State.EXPIRED:
            return queryset.filter(
                Q(state=value) | Q(state__in=Activation.OPEN_STATES, expires_at__lte=now)
            )
        if value in Activation.OPEN_STATES:
            return queryset.filter(state=value, expires_at__gt=now)
        return queryset.filter(state=value)


def render_letters(
    request: HttpRequest, issued: list[issuance.IssuedActivation]
) -> TemplateResponse:
    """The printable letters with the paper codes: the only time the codes are ever shown."""
    for item in issued:
        audit.record(AuditEvent.Action.LETTER_SHOWN, request=request, activation=item.activation)
    response = TemplateResponse(request, "keys/letter.html", {"letters": issued})
    response["Cache-Control"] = "no-store, max-age=0"
    response["Pragma"] = "no-cache"
    return response


def report_email_outcome(request: HttpRequest, issued: list[issuance.IssuedActivation]) -> None:
    failed = [
        item for item in issued if item.activation.email_status == Activation.EmailStatus.FAILED
    ]
    queued = [
        item for item in issued if item.activation.email_status == Activation.EmailStatus.PENDING
    ]
    if queued:
        messages.info(
            request,
            _(
                "The activation e-mail is queued and will be sent in a moment; its status shows on "
                "the record."
            ),
        )
    if failed:
        messages.error(
            request,
            ngettext(
                "The activation e-mail to %(emails)s could NOT be sent yet. The activation is "
                "saved and the e-mail is retried automatically; you can also use “Send the "
                "activation e-mail again” on the record.",
                "The activation e-mails to %(emails)s could NOT be sent yet. The activations are "
                "saved and the e-mails are retried automatically; you can also use “Send the "
                "activation e-mail again” on the records.",
                len(failed),
            )
            % {"emails": ", ".join(item.activation.citizen.email for item in failed)},
        )


class ActivationInline(admin.TabularInline):
    model = Activation
    fk_name = "citizen"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = [
        "created_at",
        "office",
        "issued_by",
        "state_display",
        "expires_at",
        "failed_code_attempts",
        "email_status",
    ]
    readonly_fields = fields
    verbose_name_plural = _("activations")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description=_("state"))
    def state_display(self, obj: Activation) -> str:
        return obj.get_effective_state_display()


class AuditEventInline(admin.TabularInline):
    model = AuditEvent
    fk_name = "citizen"
    extra = 0
    can_delete = False
    fields = ["created_at", "action", "actor_label", "ip_address", "user_agent", "activation"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    verbose_name_plural = _("audit timeline")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class OutboundMessageInline(admin.TabularInline):
    model = OutboundMessage
    fk_name = "activation"
    extra = 0
    can_delete = False
    fields = [
        "created_at",
        "channel",
        "recipient",
        "status",
        "attempts",
        "last_error",
        "next_attempt_at",
        "sent_at",
    ]
    readonly_fields = fields
    verbose_name_plural = _("activation e-mails")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm("keys.view_activation")


class ActivationAuditInline(AuditEventInline):
    fk_name = "activation"
    fields = ["created_at", "action", "actor_label", "ip_address", "user_agent"]
    readonly_fields = fields


class ActivationActionsMixin:
    """The actions on activations, shared by the citizen and the activation pages."""

    def _activations(self, queryset: QuerySet) -> list[Activation]:
        raise NotImplementedError

    def _open_activations(self, queryset: QuerySet) -> list[Activation]:
        return [a for a in self._activations(queryset) if a is not None and a.is_open]

    def has_issue_activation_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("keys.issue_activation")

    def has_revoke_activation_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("keys.revoke_activation")

    def has_resend_activation_email_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("keys.resend_activation_email")

    @admin.action(
        description=_("Reissue activation (new code and link, prints the letter)"),
        permissions=["issue_activation"],
        location=BOTH_LOCATIONS,
    )
    def reissue_activation(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        issued = []
        for citizen in self._citizens(queryset):
            issued.append(
                issuance.issue_activation(
                    citizen,
                    issued_by=request.user,
                    office=self._issuing_office(request, citizen),
                    request=request,
                )
            )
        report_email_outcome(request, issued)
        return render_letters(request, issued)

    @admin.action(
        description=_("Revoke the open activation"),
        permissions=["revoke_activation"],
        location=BOTH_LOCATIONS,
    )
    def revoke_activation(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        targets = self._open_activations(queryset)
        if not targets:
            self.message_user(
                request, _("There is no open activation to revoke."), messages.WARNING
            )
            return None
        if request.POST.get("post") != "yes":
            hidden = [
                (name, value)
                for name in request.POST
                if name not in {"csrfmiddlewaretoken", "post"}
                for value in request.POST.getlist(name)
            ]
            return TemplateResponse(
                request,
                "admin/keys/confirm_revoke.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("Revoke activations?"),
                    "targets": targets,
                    "hidden": hidden,
                    "opts": self.model._meta,
                },
            )
        revoked = sum(
            issuance.revoke_activation(a, by=request.user, request=request) for a in targets
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d activation revoked: its link and code no longer work.",
                "%(count)d activations revoked: their links and codes no longer work.",
                revoked,
            )
            % {"count": revoked},
            messages.SUCCESS,
        )
        return None

    @admin.action(
        description=_("Send the activation e-mail again (new link, same code)"),
        permissions=["resend_activation_email"],
        location=BOTH_LOCATIONS,
    )
    def resend_activation_email(self, request: HttpRequest, queryset: QuerySet) -> None:
        targets = self._open_activations(queryset)
        if not targets:
            self.message_user(
                request,
                _("There is no open activation: reissue one to give the citizen a new code."),
                messages.WARNING,
            )
            return
        for activation in targets:
            if issuance.resend_activation_email(activation, by=request.user, request=request):
                self.message_user(
                    request,
                    _(
                        "The activation e-mail was sent to %(email)s. The earlier link no longer "
                        "works; the paper code stays valid."
                    )
                    % {"email": activation.citizen.email},
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    _("The activation e-mail to %(email)s could NOT be sent. Try again later.")
                    % {"email": activation.citizen.email},
                    messages.ERROR,
                )

    def _issuing_office(self, request: HttpRequest, citizen: Citizen) -> RegistrationOffice:
        return request.user.office or citizen.office


@admin.register(Citizen)
class CitizenAdmin(CitizenSearchMixin, ActivationActionsMixin, OfficeScopedAdmin):
    form = CitizenForm
    search_ordering = ["search_name"]
    list_display = [
        "last_name",
        "first_name",
        "national_number_display",
        "office",
        "activation_state",
        "username",
        "created_at",
    ]
    list_display_links = ["last_name", "first_name"]
    list_filter = [OfficeFilter, "language"]
    search_fields = [
        "first_name",
        "last_name",
        "national_number",
        "email",
        "account__username",
    ]
    list_select_related = ["office", "account"]
    inlines = [ActivationInline, AuditEventInline]
    actions = ["reissue_activation", "revoke_activation", "resend_activation_email"]
    readonly_fields = ["birth_date", "account", "registered_by", "created_at", "updated_at"]

    def _citizens(self, queryset: QuerySet) -> list[Citizen]:
        return list(queryset)

    def get_inline_instances(self, request: HttpRequest, obj: Citizen | None = None) -> list:
        return super().get_inline_instances(request, obj) if obj is not None else []

    def _activations(self, queryset: QuerySet) -> list[Activation]:
        return [issuance.current_activation(c) for c in queryset]

    def get_changelist(self, request: HttpRequest, **kwargs: object) -> type[ChangeList]:
        return LatestActivationChangeList

    def get_fields(self, request: HttpRequest, obj: Citizen | None = None) -> list[str]:
        fields = list(super().get_fields(request, obj))
        if obj is None:
            fields = [f for f in fields if f not in self.readonly_fields]
            if not sees_all_offices(request.user):
                fields.remove("office")
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Citizen | None = None) -> list[str]:
        readonly = list(self.readonly_fields)
        if obj is not None and not sees_all_offices(request.user):
            readonly.append("office")
        return readonly

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and request.user.has_perm(
            "keys.issue_activation"
        )

    def get_form(self, request: HttpRequest, obj: Citizen | None = None, **kwargs: object):
        form = super().get_form(request, obj, **kwargs)
        if obj is None and not sees_all_offices(request.user):
            office = request.user.office

            class ClerkForm(form):
                clerk_office = office

                def clean(self) -> dict:
                    data = super().clean()
                    if office is None:
                        raise ValidationError(
                            _(
                                "Your account is not attached to a registration office; ask an "
                                "administrator to set one before registering citizens."
                            )
                        )
                    self.instance.office = office
                    return data

            return ClerkForm
        return form

    @admin.display(description=_("national number"), ordering="national_number")
    def national_number_display(self, obj: Citizen) -> str:
        return obj.national_number_display

    def get_list_display(self, request: HttpRequest) -> list:
        """The helpdesk gets a link to each citizen's helpdesk page (``helpdesk/``)."""
        columns = list(super().get_list_display(request))
        if request.user.has_perm("helpdesk.use_helpdesk"):
            columns.append("helpdesk_page")
        return columns

    @admin.display(description=_("helpdesk"))
    def helpdesk_page(self, obj: Citizen) -> str:
        url = reverse("helpdesk:citizen", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Helpdesk page"))

    def render_change_form(self, request: HttpRequest, context: dict, *args, **kwargs):
        context["may_use_helpdesk"] = request.user.has_perm("helpdesk.use_helpdesk")
        return super().render_change_form(request, context, *args, **kwargs)

    # -- a citizen of another office -----------------------------------------------------------

    def get_urls(self) -> list:
        find = path("find/", self.admin_site.admin_view(self.find_view), name="keys_citizen_find")
        return [find, *super().get_urls()]

    def may_find(self, request: HttpRequest) -> bool:
        """Clerks find a citizen of another office to serve them; the helpdesk sees all."""
        return not sees_all_offices(request.user) and (
            self.has_issue_activation_permission(request)
            or self.has_revoke_activation_permission(request)
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {**(extra_context or {}), "may_find": self.may_find(request)}
        return super().changelist_view(request, extra_context)

    def find_view(self, request: HttpRequest) -> HttpResponse:
        """Find a citizen registered at another office by their exact national number, and
        reissue or revoke their activation here: the record then belongs to this office.

        The number travels in a POST body only (never in a URL or an access log), and nothing
        but the exact number finds anybody: other offices' lists stay hidden.
        """
        if not self.may_find(request):
            raise PermissionDenied
        office = request.user.office
        may_issue = self.has_issue_activation_permission(request)
        may_revoke = self.has_revoke_activation_permission(request)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Find a citizen of another office"),
            "opts": self.model._meta,
            "office": office,
            "may_issue": may_issue,
            "may_revoke": may_revoke,
        }
        form = FindCitizenForm(request.POST if request.method == "POST" else None)
        context["form"] = form
        if office is None or not form.is_valid():
            return TemplateResponse(request, "admin/keys/citizen/find.html", context)
        number = form.cleaned_data["national_number"]
        citizen = Citizen.objects.select_related("office").filter(national_number=number).first()
        context["searched"] = True
        context["citizen"] = citizen
        if citizen is None or citizen.office_id == office.pk:
            return TemplateResponse(request, "admin/keys/citizen/find.html", context)
        action = request.POST.get("action")
        if action == "reissue" and may_issue:
            issued = issuance.issue_activation(
                citizen, issued_by=request.user, office=office, request=request
            )
            report_email_outcome(request, [issued])
            return render_letters(request, [issued])
        open_activation = citizen.activations.open().select_related("office").first()
        if action == "revoke" and may_revoke and open_activation is not None:
            if request.POST.get("post") != "yes":
                return TemplateResponse(
                    request,
                    "admin/keys/confirm_revoke.html",
                    {
                        **self.admin_site.each_context(request),
                        "title": _("Revoke activations?"),
                        "targets": [open_activation],
                        "hidden": [("national_number", number), ("action", "revoke")],
                        "opts": self.model._meta,
                    },
                )
            issuance.revoke_activation(
                open_activation, by=request.user, request=request, office=office
            )
            self.message_user(
                request,
                _(
                    "The activation of %(name)s is revoked: its link and code no longer work. "
                    "Their record now belongs to your office."
                )
                % {"name": citizen.full_name},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:keys_citizen_change", args=[citizen.pk]))
        context["open_activation"] = open_activation
        context["latest_activation"] = issuance.current_activation(citizen)
        return TemplateResponse(request, "admin/keys/citizen/find.html", context)

    @admin.display(description=_("activation"))
    def activation_state(self, obj: Citizen) -> str:
        state = getattr(obj, "latest_state", None)
        if state is None:
            return "—"
        expires_at = obj.latest_expires_at
        if state in Activation.OPEN_STATES and expires_at and expires_at <= timezone.now():
            state = Activation.State.EXPIRED
        return str(Activation.State(state).label)

    @admin.display(description=_("username"), ordering="account__username")
    def username(self, obj: Citizen) -> str:
        return obj.account.username if obj.account else "—"

    def save_model(
        self, request: HttpRequest, obj: Citizen, form: CitizenForm, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            if form.changed_data:
                audit.record(
                    AuditEvent.Action.CITIZEN_UPDATED,
                    request=request,
                    citizen=obj,
                    fields=form.changed_data,
                )
            return
        obj.registered_by = request.user
        super().save_model(request, obj, form, change)
        audit.record(
            AuditEvent.Action.CITIZEN_REGISTERED,
            request=request,
            citizen=obj,
            office=obj.office.code,
            document_type=obj.id_document_type,
        )
        request._issued_activation = issuance.issue_activation(
            obj, issued_by=request.user, office=obj.office, request=request
        )

    def response_add(
        self, request: HttpRequest, obj: Citizen, post_url_continue: str | None = None
    ) -> HttpResponse:
        issued = getattr(request, "_issued_activation", None)
        if issued is None:
            return super().response_add(request, obj, post_url_continue)
        report_email_outcome(request, [issued])
        return render_letters(request, [issued])


@admin.register(Activation)
class ActivationAdmin(CitizenSearchMixin, ActivationActionsMixin, OfficeScopedAdmin):
    citizen_prefix = "citizen__"
    # found: each person's activations together, newest first (the matching citizens through
    # their indexes, then their activations; not a walk of every activation, newest first,
    # joined to its citizen until enough match)
    search_ordering = ["citizen__search_name", "citizen_id", "-created_at"]
    list_display = [
        "citizen",
        "national_number",
        "username",
        "office",
        "state_display",
        "created_at",
        "expires_at",
        "failed_code_attempts",
        "email_status",
    ]
    # a date filter, not date_hierarchy: the hierarchy lists the years and months present,
    # reading every row of the table (a second at a million rows)
    list_filter = [
        EffectiveStateFilter,
        OfficeFilter,
        "email_status",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = [
        "citizen__first_name",
        "citizen__last_name",
        "citizen__national_number",
        "citizen__email",
        "citizen__account__username",
    ]
    list_select_related = ["citizen", "citizen__account", "office", "issued_by"]
    actions = ["reissue_activation", "revoke_activation", "resend_activation_email"]
    fields = [
        "citizen",
        "office",
        "issued_by",
        "state_display",
        "created_at",
        "expires_at",
        "opened_at",
        "code_verified_at",
        "completed_at",
        "closed_at",
        "failed_code_attempts",
        "email_status",
        "email_sent_at",
        "superseded_by",
        "terms_version",
        "terms_accepted_at",
    ]
    readonly_fields = fields
    inlines = [OutboundMessageInline, ActivationAuditInline]

    def _citizens(self, queryset: QuerySet) -> list[Citizen]:
        seen: dict[int, Citizen] = {}
        for activation in queryset.select_related("citizen"):
            seen.setdefault(activation.citizen_id, activation.citizen)
        return list(seen.values())

    def _activations(self, queryset: QuerySet) -> list[Activation]:
        return list(queryset.select_related("citizen"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description=_("state"), ordering="state")
    def state_display(self, obj: Activation) -> str:
        return obj.get_effective_state_display()

    @admin.display(description=_("national number"), ordering="citizen__national_number")
    def national_number(self, obj: Activation) -> str:
        return obj.citizen.national_number_display

    @admin.display(description=_("username"), ordering="citizen__account__username")
    def username(self, obj: Activation) -> str:
        return obj.citizen.account.username if obj.citizen.account else "—"


@admin.register(AuditEvent)
class AuditEventAdmin(CitizenSearchMixin, OfficeScopedAdmin):
    citizen_prefix = "citizen__"
    office_lookups = ("citizen__office", "activation__office")
    list_display = ["created_at", "action", "actor_label", "citizen", "activation", "ip_address"]
    list_filter = ["action", ("created_at", admin.DateFieldListFilter)]
    search_fields = [
        "citizen__first_name",
        "citizen__last_name",
        "citizen__national_number",
        "citizen__email",
        "citizen__account__username",
        "actor_label",
    ]
    list_select_related = ["citizen", "activation", "activation__citizen"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """A staff member's username finds what they did; any other term finds the events of
        the citizens the helpdesk's search finds (through their indexes: not a scan of every
        event joined to its citizen, 15 seconds at a million citizens)."""
        canonical = canonical_username(search_term.strip())
        staff = User.objects.filter(is_staff=True, username_canonical=canonical).first()
        if canonical and staff is not None:
            return queryset.filter(actor=staff), False
        return super().get_search_results(request, queryset, search_term)

    fields = [
        "created_at",
        "action",
        "actor_label",
        "citizen",
        "activation",
        "ip_address",
        "user_agent",
        "detail",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(DigitalKey)
class DigitalKeyAdmin(OfficeScopedAdmin):
    office_lookups = ("user__citizen__office",)
    list_display = ["user", "kind", "state", "created_at", "activated_at", "last_used_at"]
    list_filter = ["kind", "state"]
    search_fields = ["user__username", "user__citizen__last_name", "user__citizen__national_number"]
    list_select_related = ["user"]
    fields = [
        "user",
        "kind",
        "state",
        "phone",
        "email",
        "created_at",
        "activated_at",
        "last_used_at",
        "removed_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(RegistrationOffice)
class RegistrationOfficeAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "address"]
    search_fields = ["name", "code"]
    prepopulated_fields = {"code": ["name"]}


class StaffCreationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username",)


class StaffChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Accounts, for administrators: staff are created here and put in a group and an office."""

    form = StaffChangeForm
    add_form = StaffCreationForm
    list_display = ["username", "first_name", "last_name", "office", "is_staff", "is_active"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups", "office"]
    search_fields = ["username", "first_name", "last_name", "email"]
    ordering = ["username"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (
            _("Role"),
            {
                "fields": (
                    "office",
                    "is_active",
                    "is_staff",
                    "is_superuser",
                    "groups",
                    "user_permissions",
                )
            },
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "password1", "password2")}),
    )
    actions = ["reset_second_factor"]

    @admin.action(
        description=_("Reset the second factor (lost or stolen)"),
        permissions=["change"],
    )
    def reset_second_factor(self, request: HttpRequest, queryset: QuerySet) -> None:
        """For a staff member who lost their app or passkey: their keys are removed and their
        sessions end; they set up a new second factor at their next sign-in. Audited."""
        from keys.services import staff

        done = 0
        for user in queryset.filter(is_staff=True):
            staff.reset_second_factor(request, user)
            done += 1
        self.message_user(
            request,
            ngettext(
                "The second factor of %(count)d staff account was reset: it is set up again "
                "at the next sign-in.",
                "The second factor of %(count)d staff accounts was reset: each is set up again "
                "at the next sign-in.",
                done,
            )
            % {"count": done},
            messages.SUCCESS,
        )
