"""The helpdesk's pages, in the admin's look: thin views over ``selectors`` and ``services``.

Every page needs a staff account (``admin_view`` in ``helpdesk/urls.py``) and a permission:
``helpdesk.use_helpdesk`` for a citizen's page, its export and the actions (plus the action's
own permission), ``helpdesk.view_funnel`` for the funnel (clerks: their own office only).
Actions are POSTed twice: once for the confirmation page, where the agent types the reason,
then with the reason and ``confirm``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from helpdesk import charts, exports, selectors, services
from helpdesk.forms import FunnelFilterForm, ReasonForm, TimelineFilterForm
from keys import audit
from keys.admin import sees_all_offices
from keys.models import Activation, AuditEvent, Citizen, DigitalKey, RegistrationOffice, User

Action = AuditEvent.Action
TIMELINE_PAGE_SIZE = 50

USE = "helpdesk.use_helpdesk"
ACTION_PERMISSIONS = {
    "resend": "keys.resend_activation_email",
    "revoke": "keys.revoke_activation",
    "block": "helpdesk.block_digitalkey",
    "unlock": "helpdesk.unlock_signin",
}


def _require(user: User, *permissions: str) -> None:
    if not user.has_perms(permissions):
        raise PermissionDenied


def _may(user: User) -> dict[str, bool]:
    return {name: user.has_perms([USE, perm]) for name, perm in ACTION_PERMISSIONS.items()}


def _context(request: HttpRequest, **extra: object) -> dict:
    return {**admin.site.each_context(request), **extra}


def _citizen_url(person: Citizen) -> str:
    return reverse("helpdesk:citizen", args=[person.pk])


def _timeline_filters(request: HttpRequest, person_offices: list[RegistrationOffice]):
    form = TimelineFilterForm(request.GET or None, offices=person_offices)
    return form, form.filters()


def _offices_of(overview: selectors.Overview) -> list[RegistrationOffice]:
    seen = {row.activation.office_id: row.activation.office for row in overview.activations}
    return sorted(seen.values(), key=lambda office: office.name)


@require_GET
def citizen_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request.user, USE)
    person = get_object_or_404(
        Citizen.objects.select_related("office", "account", "registered_by"), pk=pk
    )
    overview = selectors.overview(person)
    form, filters = _timeline_filters(request, _offices_of(overview))
    # Recorded first, so the timeline counted and the page shown agree (this visit included).
    audit.record(Action.CITIZEN_VIEWED, request=request, citizen=person)
    events = selectors.timeline(person, **filters)
    page = Paginator(events, TIMELINE_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return TemplateResponse(
        request,
        "helpdesk/citizen.html",
        _context(
            request,
            title=person.full_name,
            overview=overview,
            person=person,
            form=form,
            page=page,
            query=query.urlencode(),
            may=_may(request.user),
            may_funnel=request.user.has_perm("helpdesk.view_funnel"),
        ),
    )


@require_GET
def timeline_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """The citizen's audit trail with the page's filters, as a CSV file (streamed)."""
    _require(request.user, USE)
    person = get_object_or_404(Citizen, pk=pk)
    offices = list(
        RegistrationOffice.objects.filter(activations__citizen=person).distinct().order_by("name")
    )
    _form, filters = _timeline_filters(request, offices)
    events = selectors.timeline(person, **filters)
    audit.record(
        Action.AUDIT_EXPORTED,
        request=request,
        citizen=person,
        filters={
            "actions": filters.get("actions") or [],
            "since": str(filters.get("since") or ""),
            "until": str(filters.get("until") or ""),
            "office": filters["office"].code if filters.get("office") else "",
        },
    )
    header = [
        _("When"),
        _("What"),
        _("Action code"),
        _("Who"),
        _("Registration office"),
        _("IP address"),
        _("Browser"),
        _("Detail"),
    ]
    rows = (
        [
            exports.local_time(event.created_at),
            str(event.get_action_display()),
            event.action,
            event.actor_label,
            event.activation.office.code if event.activation_id else "",
            event.ip_address or "",
            event.user_agent,
            exports.detail_text(event.detail),
        ]
        for event in events.iterator(chunk_size=2000)
    )
    return exports.csv_response(f"citizen-{person.pk}-activity.csv", header, rows)


# -- actions -----------------------------------------------------------------------------------


def _act(
    request: HttpRequest,
    person: Citizen,
    *,
    name: str,
    title: str,
    consequences: list[str],
    target: str,
    perform: Callable[[str], str],
) -> HttpResponse:
    """The confirmation page (first POST), then the action with the agent's reason."""
    form = ReasonForm(request.POST if request.POST.get("confirm") == "yes" else None)
    if form.is_bound and form.is_valid():
        try:
            message = perform(form.cleaned_data["reason"])
        except services.NotPossible:
            messages.warning(
                request, _("Nothing was done: the situation changed. Look at the page again.")
            )
        else:
            messages.success(request, message)
        return HttpResponseRedirect(_citizen_url(person))
    return TemplateResponse(
        request,
        "helpdesk/confirm.html",
        _context(
            request,
            title=title,
            person=person,
            form=form,
            action=name,
            target=target,
            consequences=consequences,
        ),
    )


def _person(pk: int) -> Citizen:
    return get_object_or_404(Citizen.objects.select_related("office", "account"), pk=pk)


def _open_activation(pk: int, activation_id: int) -> tuple[Citizen, Activation | None]:
    """The person and their activation, or ``None`` when that activation is no longer open."""
    person = _person(pk)
    activation = get_object_or_404(Activation, pk=activation_id, citizen=person)
    return person, activation if activation.is_open else None


@require_POST
def resend_view(request: HttpRequest, pk: int, activation_id: int) -> HttpResponse:
    _require(request.user, USE, ACTION_PERMISSIONS["resend"])
    person, activation = _open_activation(pk, activation_id)
    if activation is None:
        messages.warning(request, _("This activation is no longer open."))
        return HttpResponseRedirect(_citizen_url(person))

    def perform(reason: str) -> str:
        activation.citizen = person
        sent = services.resend_activation_email(
            activation, by=request.user, reason=reason, request=request
        )
        if sent:
            return _("The activation e-mail was sent to %(email)s with a new link.") % {
                "email": person.email
            }
        return _("The activation e-mail to %(email)s is queued and will be retried.") % {
            "email": person.email
        }

    return _act(
        request,
        person,
        name="resend",
        title=_("Send the activation e-mail again?"),
        target=_("The open activation issued on %(date)s") % {"date": _date(activation.created_at)},
        consequences=[
            _("A new activation link goes to %(email)s.") % {"email": person.email},
            _("The earlier link stops working; the paper code stays valid."),
        ],
        perform=perform,
    )


@require_POST
def revoke_view(request: HttpRequest, pk: int, activation_id: int) -> HttpResponse:
    _require(request.user, USE, ACTION_PERMISSIONS["revoke"])
    person, activation = _open_activation(pk, activation_id)
    if activation is None:
        messages.warning(request, _("This activation is no longer open."))
        return HttpResponseRedirect(_citizen_url(person))

    def perform(reason: str) -> str:
        activation.citizen = person
        services.revoke_activation(activation, by=request.user, reason=reason, request=request)
        return _("The activation is revoked: its link and code no longer work.")

    return _act(
        request,
        person,
        name="revoke",
        title=_("Revoke the open activation?"),
        target=_("The open activation issued on %(date)s") % {"date": _date(activation.created_at)},
        consequences=[
            _("Its link and paper code stop working at once."),
            _("The citizen needs a new activation from a registration office."),
        ],
        perform=perform,
    )


@require_POST
def block_key_view(request: HttpRequest, pk: int, key_id: int) -> HttpResponse:
    _require(request.user, USE, ACTION_PERMISSIONS["block"])
    person = _person(pk)
    if person.account_id is None:
        raise PermissionDenied
    key = get_object_or_404(DigitalKey, pk=key_id, user_id=person.account_id)
    if key.state != DigitalKey.State.ACTIVE:
        messages.warning(request, _("This digital key is not active."))
        return HttpResponseRedirect(_citizen_url(person))
    label = selectors.key_label(key.kind)
    others = (
        DigitalKey.objects.filter(user_id=person.account_id, state=DigitalKey.State.ACTIVE)
        .exclude(pk=key.pk)
        .exists()
    )

    def perform(reason: str) -> str:
        key.user = person.account
        services.block_key(key, by=request.user, reason=reason, request=request)
        return _("The digital key “%(key)s” is blocked.") % {"key": label}

    consequences = [
        _("The key can no longer be used to sign in."),
        _("Every session of the citizen's account ends."),
        _("The citizen gets a security notice by e-mail."),
    ]
    if not others:
        consequences.append(
            _(
                "This is the citizen's only active key: they cannot sign in until a "
                "registration office issues a new activation."
            )
        )
    return _act(
        request,
        person,
        name="block",
        title=_("Block this digital key?"),
        target=_("Digital key “%(key)s”, activated on %(date)s")
        % {"key": label, "date": _date(key.activated_at or key.created_at)},
        consequences=consequences,
        perform=perform,
    )


@require_POST
def unlock_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request.user, USE, ACTION_PERMISSIONS["unlock"])
    person = _person(pk)
    if person.account_id is None:
        raise PermissionDenied

    def perform(reason: str) -> str:
        services.unlock_signin(person, by=request.user, reason=reason, request=request)
        return _("Signing in is unlocked for %(username)s.") % {"username": person.account.username}

    return _act(
        request,
        person,
        name="unlock",
        title=_("Lift the sign-in lockout?"),
        target=_("The account %(username)s") % {"username": person.account.username},
        consequences=[
            _("The citizen can try to sign in again at once; the count of failures restarts."),
            _("Keys paused after wrong app codes can be used again."),
            _("The citizen gets a security notice by e-mail."),
        ],
        perform=perform,
    )


def _date(value) -> str:
    from django.utils.formats import date_format
    from django.utils.timezone import localtime

    return date_format(localtime(value), "SHORT_DATETIME_FORMAT") if value else "—"


# -- the funnel --------------------------------------------------------------------------------


def _funnel_data(request: HttpRequest) -> tuple[FunnelFilterForm, selectors.Funnel]:
    user = request.user
    _require(user, "helpdesk.view_funnel")
    if sees_all_offices(user):
        offices = list(RegistrationOffice.objects.order_by("name"))
        form = FunnelFilterForm(request.GET or None, offices=offices)
        since, until, office = form.period()
    else:
        if user.office_id is None:
            raise PermissionDenied
        offices = [user.office]
        form = FunnelFilterForm(request.GET or None, offices=None)
        since, until, _office = form.period()
        office = user.office
    data = selectors.funnel(
        since=since, until=until, office=office, offices={o.pk: o for o in offices}
    )
    return form, data


@require_GET
def funnel_view(request: HttpRequest) -> HttpResponse:
    form, data = _funnel_data(request)
    scope = request.user.office.name if not sees_all_offices(request.user) else None
    return TemplateResponse(
        request,
        "helpdesk/funnel.html",
        _context(
            request,
            title=_("Activation funnel"),
            form=form,
            data=data,
            scope=scope,
            bars=charts.bars(data),
            weekly=charts.weekly(data),
            week_rows=[(selectors.week_label(w), row) for w, row in data.weeks],
            stages=selectors.STAGES,
            outcomes=selectors.OUTCOMES,
            query=request.GET.urlencode(),
        ),
    )


@require_GET
def funnel_csv(request: HttpRequest) -> HttpResponse:
    """One row per ISO week and issuing office."""
    _form, data = _funnel_data(request)
    header = [_("ISO week"), _("Week starting"), _("Office code"), _("Registration office")]
    header += [str(label) for _name, label in selectors.STAGES + selectors.OUTCOMES]
    rows = (
        [selectors.week_label(week), week.isoformat(), office.code, office.name, *row.values]
        for week, office, row in data.cells
    )
    return exports.csv_response(
        f"activation-funnel-{data.since.isoformat()}-{data.until.isoformat()}.csv", header, rows
    )
