"""The back office's admin site: Django's, with the staff sign-in of ``keys.services.staff``.

Installed as the default admin site (``admin.site``) by ``keys.apps.StaffAdminConfig`` in
``INSTALLED_APPS`` (Django's documented way of overriding the default admin site), so every
page under ``/admin/`` and the helpdesk's pages (``admin.site.admin_view``) go through
:meth:`StaffAdminSite.has_permission`:

- ``/admin/login/`` asks the username and password, limited per client address
  (``signin:ip``) and per username (the citizens' lockout), every failure audited;
- ``/admin/login/second-factor/`` sets up the staff member's app key or passkey at the first
  sign-in and asks for it at every sign-in;
- a session that has not passed the second factor is refused, and a staff session ends after
  ``STAFF_IDLE_TIMEOUT`` (30 minutes) without a request.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import REDIRECT_FIELD_NAME, login, logout
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from keys import audit, backends
from keys.conf import limits
from keys.digital_keys import get_kind
from keys.forms import VerifyForm
from keys.models import AuditEvent
from keys.ratelimit import hit
from keys.services import signin, staff
from keys.views import TOUCH_INTERVAL


class StaffSignInForm(forms.Form):
    username = forms.CharField(
        label=gettext_lazy("Username"),
        max_length=200,
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autocapitalize": "none", "autofocus": True}
        ),
    )
    password = forms.CharField(
        label=gettext_lazy("Password"),
        strip=False,
        max_length=1000,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def _safe_next(request: HttpRequest, target: str) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


class StaffAdminSite(admin.AdminSite):
    """``admin.site``: see the module's docstring."""

    def has_permission(self, request: HttpRequest) -> bool:
        """Active staff, signed in with password and second factor, not idle too long."""
        user = request.user
        if not (user.is_active and user.is_staff and staff.eligible(user)):
            return False
        if not staff.verified(request.session, user):
            return False
        now = timezone.now().timestamp()
        last_seen = request.session.get(staff.LAST_SEEN_SESSION_KEY, 0)
        if now - last_seen > limits.STAFF_IDLE_TIMEOUT.total_seconds():
            audit.record(AuditEvent.Action.SIGNED_OUT, request=request, reason="idle", staff=True)
            logout(request)
            messages.info(
                request,
                _("You were signed out after %(minutes)d minutes without activity. Sign in again.")
                % {"minutes": int(limits.STAFF_IDLE_TIMEOUT.total_seconds() // 60)},
            )
            return False
        if now - last_seen >= TOUCH_INTERVAL:
            request.session[staff.LAST_SEEN_SESSION_KEY] = now
        return True

    def get_urls(self) -> list[Any]:
        return [
            path("login/second-factor/", self.second_factor, name="login-second-factor"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {
            **self.each_context(request),
            "has_permission": False,
            "username": request.user.get_username(),
            **extra,
        }

    @method_decorator(never_cache)
    @method_decorator(sensitive_post_parameters("password"))
    @method_decorator(login_not_required)
    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """Step 1: username and password (``keys.services.staff.check_password``)."""
        next_url = _safe_next(
            request, request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME)
        )
        if request.method == "GET" and self.has_permission(request):
            return HttpResponseRedirect(next_url or reverse("admin:index", current_app=self.name))
        form = StaffSignInForm(request.POST or None)
        status = 200
        if request.method == "POST":
            limited = hit("signin:ip", audit.client_ip(request))
            if not limited.allowed:
                audit.record(AuditEvent.Action.RATE_LIMITED, request=request, scope="signin:ip")
                minutes = max(1, (limited.retry_after_seconds + 59) // 60)
                form = StaffSignInForm()
                form.is_bound = False
                status = 429
                error = _(
                    "Too many sign-in attempts from your network. Try again in %(minutes)d minutes."
                ) % {"minutes": minutes}
                response = self._login_page(request, form, next_url, error, status)
                response["Retry-After"] = str(limited.retry_after_seconds)
                return response
            if form.is_valid():
                result = staff.check_password(
                    request, form.cleaned_data["username"], form.cleaned_data["password"]
                )
                if result.outcome == signin.SignInOutcome.OK:
                    staff.start_pending(request, result.user, next_url)
                    return redirect("admin:login-second-factor")
                if result.outcome == signin.SignInOutcome.LOCKED:
                    form.add_error(
                        None,
                        signin.locked_message(result.retry_after_minutes),
                    )
                else:
                    form.add_error(
                        None,
                        _(
                            "Please enter the correct username and password for a staff "
                            "account. Note that both fields may be case-sensitive."
                        ),
                    )
        return self._login_page(request, form, next_url, "", status)

    def _login_page(
        self, request: HttpRequest, form: StaffSignInForm, next_url: str, error: str, status: int
    ) -> HttpResponse:
        request.current_app = self.name
        context = self._context(
            request,
            title=_("Log in"),
            subtitle=None,
            app_path=request.get_full_path(),
            form=form,
            page_error=error,
            **{REDIRECT_FIELD_NAME: next_url},
        )
        return TemplateResponse(request, "admin/staff_login.html", context, status=status)

    @method_decorator(never_cache)
    @method_decorator(sensitive_post_parameters("code"))
    @method_decorator(login_not_required)
    def second_factor(self, request: HttpRequest) -> HttpResponse:
        """Step 2: the second factor, set up at the first sign-in, asked at every sign-in."""
        found = staff.pending(request)
        if found is None:
            messages.info(request, _("Sign in with your username and password first."))
            return redirect("admin:login")
        user, data = found
        keys = staff.active_keys(user)
        enrolling = not keys
        if enrolling:
            kind_name = request.POST.get("kind") or request.GET.get("kind") or ""
            if kind_name not in staff.staff_kinds():
                kind_name = staff.staff_kinds()[0]
            key = staff.enrolment_key(user, kind_name)
            check = partial(staff.confirm_enrolment, request, user, key)
        else:
            chosen = request.POST.get("key") or request.GET.get("key")
            key = next((k for k in keys if str(k.pk) == chosen), keys[0])
            check = partial(staff.check_factor, request, user, key)
        kind = get_kind(key.kind)
        form = VerifyForm(
            request.POST or None,
            label=_("Security code"),
            check=check,
            digits=kind.code_digits,
            no_answer=kind.ceremony_no_answer,
        )
        status = 200
        if request.method == "POST":
            ip_limit = hit("verify:ip", audit.client_ip(request))
            key_limit = hit("verify:key", f"staff:{key.pk}") if ip_limit.allowed else ip_limit
            if not (ip_limit.allowed and key_limit.allowed):
                audit.record(
                    AuditEvent.Action.RATE_LIMITED, request=request, scope="verify", staff=True
                )
                form = VerifyForm(None, label=_("Security code"), digits=kind.code_digits)
                messages.error(
                    request,
                    _("Too many attempts. Try again in %(minutes)d minutes.")
                    % {"minutes": max(1, (key_limit.retry_after_seconds + 59) // 60)},
                )
                status = 429
            elif form.is_valid():
                login(request, user, backend=backends.PATH)
                staff.mark_verified(request.session, user, key)
                signin.record_success(request, user, key, attempt_recorded=True)
                target = _safe_next(request, data.get("next", ""))
                return HttpResponseRedirect(target or reverse("admin:index", current_app=self.name))
        request.current_app = self.name
        context = self._context(
            request,
            title=_("Set up your second factor") if enrolling else _("Second factor"),
            subtitle=None,
            form=form,
            key=key,
            kind=kind,
            enrolling=enrolling,
            purpose="add" if enrolling else "signin",
            other_keys=[(k, get_kind(k.kind)) for k in keys if k.pk != key.pk],
            staff_kinds=[(name, get_kind(name)) for name in staff.staff_kinds()],
            staff_user=user,
            # the kinds' scripts: a ceremony's, and the choice of a kind the browser can make
            with_scripts=enrolling or kind.browser_ceremony,
            **(kind.setup_context(key) if enrolling else {}),
        )
        return TemplateResponse(request, "admin/staff_second_factor.html", context, status=status)
