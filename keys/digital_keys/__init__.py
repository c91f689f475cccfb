"""The registry of digital key kinds, strongest first (SPEC §1: app, SMS, e-mail)."""

from keys.digital_keys.base import ChallengeResult, KeyKind, Outcome, VerifyResult
from keys.digital_keys.email import EmailKind
from keys.digital_keys.sms import SmsKind
from keys.digital_keys.totp import TotpKind

KINDS: dict[str, KeyKind] = {kind.kind: kind for kind in (TotpKind(), SmsKind(), EmailKind())}


def get_kind(kind: str) -> KeyKind:
    """The implementation of a kind; KeyError for an unknown one."""
    return KINDS[kind]


__all__ = ["KINDS", "ChallengeResult", "KeyKind", "Outcome", "VerifyResult", "get_kind"]
