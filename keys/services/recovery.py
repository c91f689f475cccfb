"""Recovery codes: a way back in when the phone with the only key is lost (issue 13).

Ten codes of ten characters (from 30 letters and digits that cannot be confused: about 49 bits
each), shown once and never stored in clear: each is kept as an HMAC-SHA256 keyed with
``SECRET_KEY`` (and checked under ``SECRET_KEY_FALLBACKS`` too, so rotating the key does not void
them). A keyed hash is enough for random codes of this length; a slow hash would make every
check cost ten password hashes.

A code is only ever checked for the account whose username and password were right just
before, so one code cannot be tried against many accounts; every try counts against the same
lockout as wrong passwords and key codes (``keys.services.signin``), and the sign-in address
limit applies. A used code is spent; a new set voids the old one. Using a code and making a new
set both e-mail a security notice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.views.decorators.debug import sensitive_variables

from keys import audit
from keys.locking import lock_row
from keys.models import AuditEvent, RecoveryCode, SignInAttempt, User
from keys.prepared import PreparedRead
from keys.services import signin

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10
SET_SIZE = 10
#: What a sign-in with a recovery code proves (RFC 8176 ``otp``: a one-time password) and the
#: level it reaches: the lowest, since the code may have been kept on paper for years.
AMR = "otp"
LEVEL = "low"


def enabled() -> bool:
    """Whether this deployment offers recovery codes (``RECOVERY_CODES_ENABLED``)."""
    return bool(getattr(settings, "RECOVERY_CODES_ENABLED", True))


def normalise(code: str) -> str:
    """What the citizen typed, without spaces or dashes, in capitals."""
    return "".join(ch for ch in (code or "").upper() if ch not in " -\t")


def grouped(code: str) -> str:
    """``ABCDE23456`` -> ``ABCDE-23456``: easier to copy by hand."""
    half = CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def _hashes(user_id: int, code: str) -> list[str]:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [
        salted_hmac(
            "keys.recovery-code", f"{user_id}:{code}", secret=k, algorithm="sha256"
        ).hexdigest()
        for k in keys
    ]


def remaining(user: User) -> int:
    """How many unused codes the account has."""
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


# The account's codes (one set of SET_SIZE at most: a new set replaces the old), read on every
# view of "Mijn digitale sleutels": its SQL built once per connection (keys/prepared.py), where
# the ORM's aggregate built it each time (a fifth of the page's CPU).
_CODES = PreparedRead(RecoveryCode.objects.only("pk", "used_at"), "user_id")


def status(user: User) -> tuple[int, bool]:
    """How many unused codes the account has, and whether it has a set at all (one query): "Mijn
    digitale sleutels" words "none made yet" and "all used" differently."""
    codes = _CODES.all(user_id=user.pk)
    return sum(1 for code in codes if code.used_at is None), bool(codes)


@sensitive_variables("codes")
def create_set(request: HttpRequest | None, user: User) -> list[str]:
    """A new set of codes for ``user`` (the old set is void from now on), to be shown once."""
    codes = [
        "".join(secrets.choice(ALPHABET) for _i in range(CODE_LENGTH)) for _j in range(SET_SIZE)
    ]
    now = timezone.now()
    hashed = [
        RecoveryCode(user=user, code_hash=_hashes(user.pk, c)[0], created_at=now) for c in codes
    ]
    with transaction.atomic():
        lock_row(User, user.pk)
        replaced = RecoveryCode.objects.filter(user=user).delete()[0] > 0
        RecoveryCode.objects.bulk_create(hashed)
        audit.record(
            AuditEvent.Action.RECOVERY_CODES_CREATED,
            request=request,
            actor=user,
            citizen=getattr(user, "citizen", None),
            replaced=replaced,
        )
    signin.send_security_notice(user, "recovery_codes_created")
    return [grouped(c) for c in codes]


class RecoveryOutcome(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"


@dataclass(frozen=True)
class RecoveryResult:
    outcome: RecoveryOutcome
    retry_after_minutes: int = 0
    remaining: int = 0


@sensitive_variables("code")
def use_code(request: HttpRequest, user: User, code: str) -> RecoveryResult:
    """Spend one of ``user``'s codes (the password was right just before). Each try counts
    against the sign-in lockout of the username; a right one is the sign-in's success."""
    attempt, minutes = signin._reserve(request, user.username)
    if attempt is None:
        return RecoveryResult(RecoveryOutcome.LOCKED, retry_after_minutes=minutes)
    normalised = normalise(code)
    used = 0
    if len(normalised) == CODE_LENGTH:
        with transaction.atomic():
            found = (
                RecoveryCode.objects.select_for_update()
                .filter(user=user, used_at__isnull=True, code_hash__in=_hashes(user.pk, normalised))
                .first()
            )
            if found is not None:
                used = RecoveryCode.objects.filter(pk=found.pk, used_at__isnull=True).update(
                    used_at=timezone.now()
                )
    if not used:
        signin._audit_failure(request, user.username, user, "recovery_code")
        minutes = signin.lockout_remaining(user.username)
        if minutes:
            return RecoveryResult(RecoveryOutcome.LOCKED, retry_after_minutes=minutes)
        return RecoveryResult(RecoveryOutcome.WRONG)
    SignInAttempt.objects.filter(pk=attempt.pk).update(succeeded=True)
    left = remaining(user)
    audit.record(
        AuditEvent.Action.RECOVERY_CODE_USED,
        request=request,
        actor=user,
        citizen=getattr(user, "citizen", None),
        remaining=left,
    )
    signin.send_security_notice(user, "recovery_code_used", remaining=str(left))
    return RecoveryResult(RecoveryOutcome.OK, remaining=left)
