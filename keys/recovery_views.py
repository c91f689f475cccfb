"""The pages of recovery codes (issue 13): signing in with a recovery code after username and
password, making a new set in "My digital keys", and the set the wizard offers once a first key
is active (``keys.services.recovery``, model ``RecoveryCode``).
"""

from __future__ import annotations

from urllib.parse import quote

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from keys import audit
from keys.account_views import (
    PENDING,
    _pending,
    citizen_required,
    finish_signin,
    key_signin_required,
)
from keys.conf import limits
from keys.forms import CurrentPasswordForm
from keys.models import RecoveryCode
from keys.ratelimit import check_limits, reauth_refused
from keys.services import recovery, signin
from keys.views import WizardSession, _signed_in_as


class RecoveryCodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Recovery code"),
        max_length=40,
        help_text=gettext_lazy("10 letters and digits, for example ABCDE-23456."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )

    def clean_code(self) -> str:
        code = recovery.normalise(self.cleaned_data["code"])
        if len(code) != recovery.CODE_LENGTH or any(c not in recovery.ALPHABET for c in code):
            raise ValidationError(
                _("A recovery code has 10 letters and digits, for example ABCDE-23456."),
                code="format",
            )
        return code


def _codes_page(request: HttpRequest, codes: list[str], *, wizard: bool) -> HttpResponse:
    text = "\n".join(
        [
            _("CSAM – My digital keys: recovery codes"),
            _("Username: %(username)s") % {"username": request.user.get_username()},
            "",
            *codes,
            "",
            _("Each code can be used once."),
        ]
    )
    response = render(
        request,
        "keys/account/recovery_codes_shown.html",
        {
            "codes": codes,
            "download_href": "data:text/plain;charset=utf-8," + quote(text + "\n"),
            "wizard": wizard,
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@sensitive_post_parameters("code")
def signin_recovery_view(request: HttpRequest) -> HttpResponse:
    """After username and password: a recovery code instead of a key."""
    pending = _pending(request)
    if pending is None or not recovery.enabled():
        return redirect("keys:signin")
    user, _data = pending
    form = RecoveryCodeForm(request.POST or None)
    if request.method == "POST":
        ip = audit.client_ip(request)
        refused = check_limits(request, [("signin:ip", ip), ("verify:ip", ip)])
        if refused:
            return refused
        if form.is_valid():
            result = recovery.use_code(request, user, form.cleaned_data["code"])
            if result.outcome == recovery.RecoveryOutcome.OK:
                response = finish_signin(
                    request,
                    user,
                    methods=["pwd", recovery.AMR],
                    level=recovery.LEVEL,
                    detail={"method": "recovery_code"},
                )
                messages.warning(
                    request,
                    ngettext(
                        "You signed in with a recovery code. You have %(count)d code left.",
                        "You signed in with a recovery code. You have %(count)d codes left.",
                        result.remaining,
                    )
                    % {"count": result.remaining},
                )
                messages.warning(
                    request,
                    _(
                        "With this sign-in you can activate one new digital key. It counts "
                        "fully after %(hours)d hours, and we tell you at every address we "
                        "know. To remove keys, make new recovery codes or change your password "
                        "or mobile number, sign in with one of your digital keys."
                    )
                    % {"hours": int(limits.RECOVERY_KEY_PROBATION.total_seconds() // 3600)},
                )
                return response
            if result.outcome == recovery.RecoveryOutcome.LOCKED:
                request.session.pop(PENDING, None)
                form.add_error(
                    "code",
                    signin.locked_message(result.retry_after_minutes),
                )
            else:
                form.add_error("code", _("This recovery code is not correct or was used before."))
    return render(request, "keys/account/signin_recovery.html", {"form": form})


@citizen_required
@sensitive_post_parameters("current_password")
def recovery_codes_view(request: HttpRequest) -> HttpResponse:
    """How many codes are left, and a new set (the old one void) after the password."""
    if not recovery.enabled():
        return redirect("keys:my-keys")
    refused = key_signin_required(request)
    if refused:
        return refused
    form = CurrentPasswordForm(request.POST or None, user=request.user)
    refused = reauth_refused(request)
    if refused:
        return refused
    if request.method == "POST" and form.is_valid():
        return _codes_page(request, recovery.create_set(request, request.user), wizard=False)
    return render(
        request,
        "keys/account/recovery_codes.html",
        {"form": form, "remaining": recovery.remaining(request.user)},
    )


@never_cache
def wizard_recovery_codes_view(request: HttpRequest) -> HttpResponse:
    """Offered once the wizard activated a first key: the session that did it is signed in as
    the citizen, who just proved password and key, so no password is asked again."""
    from keys.models import Activation

    ws = WizardSession(request)
    activation = (
        Activation.objects.select_related("citizen", "citizen__account")
        .filter(pk=ws["activation_id"])
        .first()
        if ws.data
        else None
    )
    if (
        activation is None
        or not recovery.enabled()
        or activation.state != Activation.State.COMPLETED
        or not _signed_in_as(request, activation)
    ):
        return redirect("keys:home")
    user = activation.citizen.account
    if request.method == "POST":
        if RecoveryCode.objects.filter(user=user).exists():
            # Made already in this session (a reload of the page, a double submit): a new
            # set from "Mijn digitale sleutels" only, after the password.
            return redirect("keys:wizard-step", step="activated")
        return _codes_page(request, recovery.create_set(request, user), wizard=True)
    return redirect("keys:wizard-step", step="activated")
