"""What a signed-in citizen changes themselves ("Mijn digitale sleutels").

Every change is audited and announced by a security notification e-mail.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from keys import audit
from keys.digital_keys import Outcome, VerifyResult, get_kind
from keys.models import Activation, AuditEvent, DigitalKey, User
from keys.phones import format_mobile_number
from keys.services.signin import send_security_notice

Action = AuditEvent.Action


class LastKeyError(Exception):
    """The last active key cannot be removed: the account could no longer be used."""


def remove_key(request: HttpRequest, user: User, key: DigitalKey) -> None:
    """Remove an active key, never the last one (checked with the rows locked)."""
    with transaction.atomic():
        active = list(
            DigitalKey.objects.select_for_update()
            .filter(user=user, state=DigitalKey.State.ACTIVE)
            .order_by("pk")
        )
        if key.pk not in {k.pk for k in active}:
            return
        if len(active) <= 1:
            raise LastKeyError
        DigitalKey.objects.filter(pk=key.pk).update(
            state=DigitalKey.State.REMOVED, removed_at=timezone.now()
        )
        audit.record(
            Action.KEY_REMOVED, request=request, actor=user, citizen=user.citizen, kind=key.kind
        )
    send_security_notice(user, "key_removed", kind=str(get_kind(key.kind).label))


@sensitive_variables("password")
def change_password(request: HttpRequest, user: User, password: str) -> None:
    """Set a new password (argon2id). Other sessions end: they were bound to the old hash."""
    user.set_password(password)
    user.save(update_fields=["password"])
    audit.record(Action.PASSWORD_CHANGED, request=request, actor=user, citizen=user.citizen)
    send_security_notice(user, "password_changed")


@sensitive_variables("password")
def reset_password_with_activation(
    request: HttpRequest, activation: Activation, password: str
) -> None:
    """A citizen who forgot their password got a new activation at the counter: they keep their
    username and choose a new password; every session of the account ends."""
    user = activation.citizen.account
    user.set_password(password)  # argon2: slow, so before the transaction
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(
            password=user.password, session_version=F("session_version") + 1
        )
        audit.record(Action.PASSWORD_RESET, request=request, actor=user, activation=activation)
    user.refresh_from_db(fields=["session_version"])
    send_security_notice(user, "password_changed")


def sign_out_everywhere(request: HttpRequest, user: User) -> None:
    """End every session of the account, this one included."""
    User.objects.filter(pk=user.pk).update(session_version=F("session_version") + 1)
    audit.record(Action.SIGNED_OUT_EVERYWHERE, request=request, actor=user, citizen=user.citizen)


def start_phone_change(user: User, phone: str) -> DigitalKey:
    """A pending SMS key for the new number; the active one stays until the code is confirmed."""
    with transaction.atomic():
        pending = DigitalKey.objects.filter(
            user=user, kind=DigitalKey.Kind.SMS, state=DigitalKey.State.PENDING
        ).first()
        if pending is None:
            pending = DigitalKey.objects.create(user=user, kind=DigitalKey.Kind.SMS, phone=phone)
        elif pending.phone != phone:
            pending.phone = phone
            pending.save(update_fields=["phone"])
            pending.codes.filter(consumed_at__isnull=True).update(consumed_at=timezone.now())
    return pending


@sensitive_variables("code")
def confirm_phone_change(
    request: HttpRequest, user: User, pending: DigitalKey, code: str
) -> VerifyResult:
    """Check the code sent to the new number; then the new number replaces the old one."""
    result = get_kind("sms").verify(pending, code, request=request)
    if not result.ok:
        return result
    now = timezone.now()
    with transaction.atomic():
        # The new key first: if it is no longer pending (confirmed or dropped meanwhile), nothing
        # changes, and the number that works today keeps working.
        still_pending = (
            DigitalKey.objects.select_for_update()
            .filter(pk=pending.pk, user=user, state=DigitalKey.State.PENDING)
            .exists()
        )
        if not still_pending:
            return VerifyResult(Outcome.NO_CODE)
        old = (
            DigitalKey.objects.select_for_update()
            .filter(user=user, kind=DigitalKey.Kind.SMS, state=DigitalKey.State.ACTIVE)
            .first()
        )
        if old is not None:
            DigitalKey.objects.filter(pk=old.pk).update(
                state=DigitalKey.State.REMOVED, removed_at=now
            )
        # Never on probation: a new number needs a sign-in with an active key.
        DigitalKey.objects.filter(pk=pending.pk).update(
            state=DigitalKey.State.ACTIVE, activated_at=now, probation_until=None
        )
        audit.record(
            Action.PHONE_CHANGED,
            request=request,
            actor=user,
            citizen=user.citizen,
            old=old.phone[-2:] if old else "",
            new=pending.phone[-2:],
        )
    send_security_notice(user, "phone_changed", phone=format_mobile_number(pending.phone))
    return VerifyResult(Outcome.OK)
