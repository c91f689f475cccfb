"""The passkey kind's own pages, which the key-module interface does not cover: signing in with
a passkey alone (username-less, the browser's autofill) and turning that on or off for a passkey
(issue 13). Mounted in the ``keys`` namespace by ``PasskeyKind.urlpatterns``.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from keys import audit
from keys.account_views import (
    citizen_required,
    finish_signin,
    key_signin_required,
    refusal_page,
)
from keys.digital_keys import get_kind, level_of
from keys.digital_keys.passkey import kind as passkeys
from keys.forms import CurrentPasswordForm
from keys.models import AuditEvent, DigitalKey
from keys.ratelimit import check_limits, reauth_refused
from keys.services import probation, signin

#: The amr of a sign-in with a passkey alone: the key (``swk``: nothing proves it is bound to
#: hardware, see passkey/kind.py) and the user verification the passkey requires (``user``:
#: RFC 8176's user presence, the nearest value; ``pin`` or ``fpt`` would claim to know which
#: one the device used).
USERNAMELESS_AMR = ["swk", "user"]

#: The security notices of this kind (``keys/email/security_notice.*`` include them).
NOTICE_TEMPLATE = "keys/digital_keys/passkey_notice"


# --- signing in with a passkey alone ------------------------------------------------------


def _back_to_signin() -> HttpResponse:
    """Back to the sign-in page, which then does not offer passkeys in the autofill again at
    once (``?passkey=0``): the citizen reads the message and types username and password."""
    return redirect(reverse("keys:signin") + "?passkey=0")


@never_cache
@require_POST
def signin_passkey_options_view(request: HttpRequest) -> HttpResponse:
    """The options of a username-less sign-in (the static script asks for them when the
    sign-in page loads); the challenge waits in the database, not in the session: this
    response sets no cookie, so it cannot undo the session key that a password sent meanwhile
    has cycled (``DiscoverChallenge``)."""
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
    challenge = passkeys.take_discover_challenge(code)
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
            signin.locked_message(minutes),
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
    if credential.key.in_probation():
        # Added after a recovery: not alone before its probation ends (keys.services.probation).
        signin._release(attempt)
        signin._audit_failure(request, user.username, user, "key:probation")
        messages.error(request, _probation_refusal(credential.key))
        return _back_to_signin()
    signin.SignInAttempt.objects.filter(pk=attempt.pk).update(succeeded=True)
    DigitalKey.objects.filter(pk=credential.key_id).update(last_used_at=timezone.now())
    return finish_signin(
        request,
        user,
        methods=list(USERNAMELESS_AMR),
        level=level_of(passkeys.KIND),
        detail={"kind": passkeys.KIND, "usernameless": True},
        key=credential.key,
        strong=True,
    )


def _probation_refusal(key: DigitalKey) -> str:
    return _(
        "This passkey was added after a sign-in with a recovery code: until %(date)s (Brussels "
        "time) it cannot be used alone. Sign in with your username and password."
    ) % {"date": probation.local_time(key.probation_until)}


# --- turning sign-in with the passkey alone on or off ---------------------------------------


@citizen_required
@sensitive_post_parameters("current_password")
def passkey_usernameless_view(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(
        DigitalKey.objects.select_related("passkey"),
        pk=key_id,
        user=request.user,
        kind=passkeys.KIND,
        state=DigitalKey.State.ACTIVE,
        passkey__isnull=False,
    )
    credential = key.passkey
    refused = key_signin_required(request)
    if refused:
        return refused
    if key.in_probation():
        return refusal_page(request, reason="probation", text=_probation_refusal(key))
    form = CurrentPasswordForm(request.POST or None, user=request.user)
    refused = reauth_refused(request)
    if refused:
        return refused
    if request.method == "POST" and form.is_valid():
        credential.usernameless = not credential.usernameless
        credential.save(update_fields=["usernameless"])
        audit.record(
            passkeys.SETTING_CHANGED,
            request=request,
            actor=request.user,
            citizen=request.user.citizen,
            kind=key.kind,
            usernameless=credential.usernameless,
        )
        notice = (
            "passkey_usernameless_on" if credential.usernameless else "passkey_usernameless_off"
        )
        signin.send_security_notice(
            request.user, notice, name=credential.name, notice_template=NOTICE_TEMPLATE
        )
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
        "keys/digital_keys/passkey_usernameless.html",
        {"form": form, "key": key, "credential": credential, "kind": get_kind(key.kind)},
    )
