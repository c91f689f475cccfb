"""What the helpdesk may do for a citizen, each with the agent's reason in the audit trail.

Resending and revoking go through ``keys.services.issuance`` (the same code as the clerks'
actions); the reason reaches the events those write through :func:`keys.audit.extra_detail`.
Blocking a key and lifting a sign-in lockout are the helpdesk's own. None of them shows, makes
or needs a secret.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from keys import audit
from keys.digital_keys import get_kind
from keys.models import (
    Activation,
    AuditEvent,
    Citizen,
    DigitalKey,
    SignInAttempt,
    SignInGuard,
    User,
)
from keys.services import issuance
from keys.services.signin import lockout_remaining, send_security_notice

Action = AuditEvent.Action


class NotPossible(Exception):
    """The action no longer applies (the activation closed, the key is not active, ...)."""


def resend_activation_email(
    activation: Activation, *, by: User, reason: str, request: HttpRequest | None = None
) -> bool:
    """Mail a new link for the open activation (the paper code stays valid). Returns whether
    the e-mail went out at once (otherwise it is queued or retried)."""
    with audit.extra_detail(reason=reason, via="helpdesk"):
        try:
            return issuance.resend_activation_email(activation, by=by, request=request)
        except ValueError as error:
            raise NotPossible(str(error)) from error


def revoke_activation(
    activation: Activation, *, by: User, reason: str, request: HttpRequest | None = None
) -> None:
    """Cancel the open activation: its link and code stop working. The record stays at its
    office (the helpdesk takes nothing over)."""
    with audit.extra_detail(reason=reason, via="helpdesk"):
        if not issuance.revoke_activation(activation, by=by, request=request):
            raise NotPossible("The activation is not open.")


def block_key(
    key: DigitalKey, *, by: User, reason: str, request: HttpRequest | None = None
) -> None:
    """Block an active key (a phone reported stolen): it can no longer sign in or be chosen,
    every session of the account ends, and the citizen gets a security notice by e-mail.

    The citizen keeps their other keys; with none left, a clerk's reissue gives a new start.
    """
    with transaction.atomic():
        updated = DigitalKey.objects.filter(pk=key.pk, state=DigitalKey.State.ACTIVE).update(
            state=DigitalKey.State.BLOCKED
        )
        if not updated:
            raise NotPossible("The key is not active.")
        # Bumping the version ends every session of the account (User.get_session_auth_hash).
        User.objects.filter(pk=key.user_id).update(session_version=F("session_version") + 1)
        key.state = DigitalKey.State.BLOCKED
        citizen = Citizen.objects.filter(account_id=key.user_id).first()
        audit.record(
            Action.KEY_BLOCKED,
            request=request,
            actor=by,
            citizen=citizen,
            activation=key.activation if key.activation_id else None,
            kind=key.kind,
            key=key.pk,
            reason=reason,
        )
    send_security_notice(key.user, "key_blocked", kind=get_kind(key.kind).label)


def is_paused(key: DigitalKey) -> bool:
    return key.locked_until is not None and key.locked_until > timezone.now()


def unlock_signin(
    citizen: Citizen, *, by: User, reason: str, request: HttpRequest | None = None
) -> None:
    """Lift the sign-in lockout of the citizen's account (``keys.services.signin``) and any
    key paused after wrong app codes; the citizen gets a security notice by e-mail.

    The lockout counts failures since the last success, so a success recorded now (from no
    address) starts the count again; the failures themselves stay on record.
    """
    user = citizen.account
    if user is None:
        raise NotPossible("The citizen has no account.")
    canonical = user.username_canonical
    SignInGuard.objects.get_or_create(username_canonical=canonical)
    with transaction.atomic():
        # The same lock as a sign-in try: a try counted at this moment is before or after.
        SignInGuard.objects.select_for_update().filter(username_canonical=canonical).first()
        minutes = lockout_remaining(user.username)
        paused = list(
            DigitalKey.objects.filter(
                user=user, state=DigitalKey.State.ACTIVE, locked_until__gt=timezone.now()
            ).values_list("kind", flat=True)
        )
        if not minutes and not paused:
            raise NotPossible("Signing in is not locked.")
        if minutes:
            SignInAttempt.objects.create(username_canonical=canonical, succeeded=True)
        DigitalKey.objects.filter(user=user).update(failed_attempts=0, locked_until=None)
        audit.record(
            Action.SIGNIN_UNLOCKED,
            request=request,
            actor=by,
            citizen=citizen,
            minutes_left=minutes,
            paused_keys=paused,
            reason=reason,
        )
    send_security_notice(user, "signin_unlocked")
