"""The registry of digital key kinds, strongest first (SPEC §1: app, SMS, e-mail)."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from keys.digital_keys.base import ChallengeResult, KeyKind, Outcome, VerifyResult
from keys.digital_keys.email import EmailKind
from keys.digital_keys.sms import SmsKind
from keys.digital_keys.totp import TotpKind

KINDS: dict[str, KeyKind] = {kind.kind: kind for kind in (TotpKind(), SmsKind(), EmailKind())}


#: Assurance levels, weakest first (eIDAS: low, substantial, high).
LEVELS: tuple[str, ...] = ("low", "substantial", "high")


def get_kind(kind: str) -> KeyKind:
    """The implementation of a kind; KeyError for an unknown one."""
    return KINDS[kind]


def level_of(kind: str) -> str:
    """The assurance level of a sign-in with password and a key of ``kind``: the setting
    ``DIGITAL_KEY_LEVELS`` (``{"sms": "low", ...}``) where it names the kind, else the kind's
    ``default_level``."""
    configured = getattr(settings, "DIGITAL_KEY_LEVELS", {}) or {}
    level = configured.get(kind) or get_kind(kind).default_level
    if level not in LEVELS:
        raise ImproperlyConfigured(f"DIGITAL_KEY_LEVELS[{kind!r}] = {level!r}: not one of {LEVELS}")
    return level


__all__ = [
    "KINDS",
    "LEVELS",
    "ChallengeResult",
    "KeyKind",
    "Outcome",
    "VerifyResult",
    "get_kind",
    "level_of",
]
