"""The pages of passkeys and recovery codes that the key-module interface does not cover:
signing in with a passkey alone (username-less, the browser's autofill), turning that on or off,
signing in with a recovery code, and making recovery codes (issue 13).

Kept apart from ``keys.account_views`` and ``keys.views`` so those stay as they were; they share
their session keys and guards.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from keys import audit
from keys.account_views import PENDING, _pending, citizen_required, signed_in
from keys.digital_keys import get_kind, level_of
from keys.digital_keys import passkey as passkeys
from keys.forms import CurrentPasswordForm
from keys.models import AuditEvent, DigitalKey, RecoveryCode, User
from keys.ratelimit import check_limits
from keys.services import recovery, signin
from keys.views import MODEL_BACKEND, WizardSession, _signed_in_as

#: The amr of a sign-in with a passkey alone: the key (``hwk``) and the user verification the
#: passkey requires (``user``: RFC 8176's user presence, the nearest value; ``pin`` or ``fpt``
#: would claim to know which one the device used).
USERNAMELESS_AMR = ["hwk", "user"]


def _finish_signin(
    request: HttpRequest, user: User, *, methods: list[str], level: str, detail: dict[str, Any]
) -> HttpResponse:
    """Signed in: the session, the audit event, then what every sign-in ends with."""
    request.session.pop(PENDING, None)
    login(request, user, backend=MODEL_BACKEND)
    audit.record(
        AuditEvent.Action.SIGNIN_SUCCEEDED,
        request=request,
        actor=user,
        citizen=getattr(user, "citizen", None),
        **detail,
    )
    return signed_in(request, user, methods=methods, level=level)


# --- signing in with a passkey alone ------------------------------------------------------


def _back_to_signin() -> HttpResponse:
    """Back to the sign-in page, which then does not offer passkeys in the autofill again at
    once (``?passkey=0``): the citizen reads the message and types username and password."""
    return redirect(reverse("keys:signin") + "?passkey=0")


@never_cache
@require_POST
def signin_passkey_options_view(request: HttpRequest) -> HttpResponse:
    """The options of a username-less sign-in (the static script asks for them when the
    sign-in page loads); the challenge waits in this session."""
    refused = check_limits(request, [("passkey-options:ip", audit.client_ip(request))])
    if refused:
        return JsonResponse({"error": "rate_limited"}, status=429)
    return JsonResponse(passkeys.authentication_options(request, None))


@never_cache
@require_POST
def signin_passkey_view(request: HttpRequest) -> HttpResponse:
    """A passkey chosen in the browser's autofill, without username or password: only a
    passkey its citizen turned on for this, whose account may sign in; its failures count
    against the account's lockout."""
    refused = check_limits(request, [("signin:ip", audit.client_ip(request))])
    if refused:
        return refused
    code = request.POST.get("code", "")[: passkeys.MAX_RESPONSE_LENGTH + 1]
    challenge = passkeys.take_challenge(request, passkeys.DISCOVER, None)
    credential = passkeys.find_discoverable(code) if challenge else None
    user = credential.key.user if credential else None
    if credential is None or not user.is_active or user.is_staff or not hasattr(user, "citizen"):
        audit.record(AuditEvent.Action.SIGNIN_FAILED, request=request, reason="passkey_unknown")
        messages.error(
            request,
            _(
                "This passkey cannot be used to sign in here. Sign in with "
                "your username and password."
            ),
        )
        return _back_to_signin()
    attempt, minutes = signin._reserve(request, user.username)
    if attempt is None:
        messages.error(
            request,
            _(
                "Too many failed attempts. For your safety, signing in with this "
                "username is paused for %(minutes)d minutes."
            )
            % {"minutes": minutes},
        )
        return _back_to_signin()
    result = (
        passkeys.check_assertion(credential, code, challenge, request=request)
        if passkeys.user_handle_matches(credential, code)
        else None
    )
    if result is None or not result.ok:
        signin._audit_failure(request, user.username, user, "key:refused")
        messages.error(
            request,
            _(
                "Your passkey could not be checked. Try again, or sign in with your username and "
                "password."
            ),
        )
        return _back_to_signin()
    signin.SignInAttempt.objects.filter(pk=attempt.pk).update(succeeded=True)
    DigitalKey.objects.filter(pk=credential.key_id).update(last_used_at=timezone.now())
    return _finish_signin(
        request,
        user,
        methods=list(USERNAMELESS_AMR),
        level=level_of(DigitalKey.Kind.PASSKEY),
        detail={"kind": DigitalKey.Kind.PASSKEY, "usernameless": True},
    )


# --- turning sign-in with the passkey alone on or off ---------------------------------------


@citizen_required
@sensitive_post_parameters("current_password")
def passkey_usernameless_view(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(
        DigitalKey.objects.select_related("passkey"),
        pk=key_id,
        user=request.user,
        kind=DigitalKey.Kind.PASSKEY,
        state=DigitalKey.State.ACTIVE,
        passkey__isnull=False,
    )
    credential = key.passkey
    form = CurrentPasswordForm(request.POST or None, user=request.user)
    if request.method == "POST":
        refused = check_limits(request, [("reauth:user", request.user.pk)])
        if refused:
            return refused
    if request.method == "POST" and form.is_valid():
        credential.usernameless = not credential.usernameless
        credential.save(update_fields=["usernameless"])
        audit.record(
            AuditEvent.Action.PASSKEY_SETTING_CHANGED,
            request=request,
            actor=request.user,
            citizen=request.user.citizen,
            kind=key.kind,
            usernameless=credential.usernameless,
        )
        notice = (
            "passkey_usernameless_on" if credential.usernameless else "passkey_usernameless_off"
        )
        signin.send_security_notice(request.user, notice, name=credential.name)
        if credential.usernameless:
            messages.success(
                request,
                _("You can now sign in with the passkey “%(name)s” alone.")
                % {"name": credential.name},
            )
        else:
            messages.success(
                request,
                _("The passkey “%(name)s” now asks for your username and password first.")
                % {"name": credential.name},
            )
        return redirect("keys:my-keys")
    return render(
        request,
        "keys/account/passkey_usernameless.html",
        {"form": form, "key": key, "credential": credential, "kind": get_kind(key.kind)},
    )


# --- recovery codes -------------------------------------------------------------------------


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
                response = _finish_signin(
                    request,
                    user,
                    methods=["pwd", recovery.AMR],
                    level=recovery.LEVEL,
                    detail={"method": "recovery_code"},
                )
                messages.warning(
                    request,
                    ngettext(
                        "You signed in with a recovery code. You have %(count)d code left: "
                        "activate a new digital key, and make new recovery codes.",
                        "You signed in with a recovery code. You have %(count)d codes left: "
                        "activate a new digital key, and make new recovery codes.",
                        result.remaining,
                    )
                    % {"count": result.remaining},
                )
                return response
            if result.outcome == recovery.RecoveryOutcome.LOCKED:
                request.session.pop(PENDING, None)
                form.add_error(
                    "code",
                    _(
                        "Too many failed attempts. For your safety, signing in with this "
                        "username is paused for %(minutes)d minutes."
                    )
                    % {"minutes": result.retry_after_minutes},
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
    form = CurrentPasswordForm(request.POST or None, user=request.user)
    if request.method == "POST":
        refused = check_limits(request, [("reauth:user", request.user.pk)])
        if refused:
            return refused
        if form.is_valid():
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
