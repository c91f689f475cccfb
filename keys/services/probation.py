"""A key added after a recovery is on probation (issue 25 §1).

A session signed in with password and a recovery code (or with a key that is itself on
probation) is *weak*: it may add one digital key and change nothing else. That key is on
probation for ``RECOVERY_KEY_PROBATION`` (72 hours) from its activation: a sign-in with it
reaches level "low" at most and is weak itself, it cannot be used alone (a passkey), and the
citizen may cancel it from a session signed in with any other active key. The notice, with the
cancel link, is queued before the key is activated, to every contact address on record: the
citizen's e-mail address, an e-mail key's address where it differs, every active SMS key's
number and the number on the citizen's record (by SMS). An account has at most one key on
probation at a time. Past its end the key is an ordinary key: nothing runs then, the end is
compared with the time of each use.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext

from keys import audit, delivery
from keys.conf import limits
from keys.digital_keys import get_kind
from keys.locking import lock_row
from keys.mail import build_email
from keys.models import AuditEvent, DigitalKey, User
from keys.phones import normalize_mobile_number
from keys.services.signin import send_security_notice

Action = AuditEvent.Action
#: The zone the citizen is told the end of a probation in.
BRUSSELS = ZoneInfo("Europe/Brussels")


def probation_end(now: datetime | None = None) -> datetime:
    """When a key activated ``now`` stops being on probation."""
    return (now or timezone.now()) + limits.RECOVERY_KEY_PROBATION


def key_on_probation(user: User, *, exclude: int | None = None) -> DigitalKey | None:
    """The account's active key on probation, if any (``exclude``: not this key)."""
    keys = DigitalKey.objects.filter(
        user=user, state=DigitalKey.State.ACTIVE, probation_until__gt=timezone.now()
    )
    if exclude is not None:
        keys = keys.exclude(pk=exclude)
    return keys.first()


def local_time(moment: datetime) -> str:
    """``moment`` as the citizen reads it: date and time in Brussels, in the active language."""
    return formats.date_format(timezone.localtime(moment, BRUSSELS), "DATETIME_FORMAT")


def cancel_link(key: DigitalKey, language: str) -> str:
    """The absolute link that cancels ``key`` (it asks for a sign-in with another key)."""
    with translation.override(language):
        path = reverse("keys:cancel-key", kwargs={"key_id": key.pk})
    return f"{settings.SITE_URL}{path}"


def _phones(user: User, key: DigitalKey) -> list[str]:
    """The mobile numbers on record: the active SMS keys', the citizen's (when it is one)."""
    sms_keys = DigitalKey.objects.filter(
        user=user, kind=DigitalKey.Kind.SMS, state=DigitalKey.State.ACTIVE
    ).exclude(pk=key.pk)
    numbers = list(sms_keys.values_list("phone", flat=True))
    citizen = getattr(user, "citizen", None)
    if citizen is not None and citizen.phone:
        with contextlib.suppress(ValidationError):
            numbers.append(normalize_mobile_number(citizen.phone))
    return list(dict.fromkeys(n for n in numbers if n))


def _emails(user: User, key: DigitalKey) -> list[str]:
    """The e-mail addresses on record: the citizen's, then the active e-mail keys' own."""
    citizen = getattr(user, "citizen", None)
    addresses = [citizen.email] if citizen is not None and citizen.email else []
    addresses += (
        DigitalKey.objects.filter(
            user=user, kind=DigitalKey.Kind.EMAIL, state=DigitalKey.State.ACTIVE
        )
        .exclude(pk=key.pk)
        .values_list("email", flat=True)
    )
    seen: dict[str, str] = {}
    for address in addresses:
        if address:
            seen.setdefault(address.strip().lower(), address.strip())
    return list(seen.values())


def announce(user: User, key: DigitalKey, until: datetime) -> int:
    """Tell the citizen, at every address on record, that ``key`` was added after a recovery,
    when it will count fully, and how to cancel it. Queued before the key is activated (the
    caller's order); never inside a transaction (a delivery may run inline). The number of
    messages queued."""
    citizen = getattr(user, "citizen", None)
    if citizen is None:
        return 0
    language = citizen.language
    link = cancel_link(key, language)
    with translation.override(language):
        kind = str(get_kind(key.kind).label)
        when = local_time(until)
    queued = 0
    for address in _emails(user, key):
        message = build_email(
            "security_notice",
            {
                "notice": "key_probation",
                "citizen": citizen,
                "when": timezone.now(),
                "kind": kind,
                "until": when,
                "cancel_link": link,
            },
            to=address,
            language=language,
        )
        delivery.queue_email(message, purpose="notice:key_probation")
        queued += 1
    with translation.override(language):
        body = gettext(
            "CSAM My Digital Keys: a new digital key (%(kind)s) was added to your account after "
            "a sign-in with a recovery code. It counts fully from %(until)s. Was this not you? "
            "Cancel it: %(link)s"
        ) % {"kind": kind, "until": when, "link": link}
    for number in _phones(user, key):
        delivery.queue_sms(number, body, purpose="notice:key_probation")
        queued += 1
    return queued


def may_cancel(request: HttpRequest, key: DigitalKey, auth: dict | None) -> bool:
    """A key on probation is cancelled from a session signed in with another active key that
    is not on probation itself (a strong session, not the key's own)."""
    return bool(auth and auth.get("strong") and auth.get("key_id") not in (None, key.pk))


def cancel(request: HttpRequest, user: User, key: DigitalKey) -> bool:
    """Remove a key on probation (checked with the account locked); every session signed in
    with it then ends (``keys.services.signin.end_if_key_gone``). False when it was not (or no
    longer) an active key on probation."""
    now = timezone.now()
    with transaction.atomic():
        lock_row(User, user.pk)
        removed = DigitalKey.objects.filter(
            pk=key.pk, user=user, state=DigitalKey.State.ACTIVE, probation_until__gt=now
        ).update(state=DigitalKey.State.REMOVED, removed_at=now)
        if not removed:
            return False
        audit.record(
            Action.KEY_CANCELLED,
            request=request,
            actor=user,
            citizen=getattr(user, "citizen", None),
            kind=key.kind,
            key_id=key.pk,
        )
    send_security_notice(user, "key_cancelled", kind=str(get_kind(key.kind).label))
    return True
