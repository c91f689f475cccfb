"""The registry of digital key kinds: the three of SPEC §1, strongest first (app, SMS, e-mail),
then passkeys (issue 13), offered only where the browser can make one.

Each kind is one module (or package) implementing ``base.KeyKind``, its templates, and one line
here. The passkey kind is the package ``passkey/`` (the kind, its views and URLs, its model),
the templates ``templates/keys/digital_keys/passkey*.html`` and its line below; what it still
has outside these is listed in docs/architecture.md (a migration, the constraint
that lets a citizen have several, two audit actions, its settings and its rate limit).
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from keys.digital_keys.base import ChallengeResult, KeyKind, Outcome, VerifyResult
from keys.digital_keys.email import EmailKind
from keys.digital_keys.passkey import PasskeyKind
from keys.digital_keys.sms import SmsKind
from keys.digital_keys.totp import TotpKind

KINDS: dict[str, KeyKind] = {
    kind.kind: kind for kind in (TotpKind(), SmsKind(), EmailKind(), PasskeyKind())
}


#: Assurance levels, weakest first (eIDAS: low, substantial, high).
LEVELS: tuple[str, ...] = ("low", "substantial", "high")
#: The levels a sign-in on this site can reach. "high" is FAS's eID card (Level500) and itsme
#: (Level450), neither issued here: services may ask for it (and are refused), no key gives it,
#: and ``DIGITAL_KEY_LEVELS`` may not say otherwise (system check ``keys.E001``).
SITE_LEVELS: tuple[str, ...] = ("low", "substantial")


def get_kind(kind: str) -> KeyKind:
    """The implementation of a kind; KeyError for an unknown one."""
    return KINDS[kind]


def addable_kinds(active_kinds: set[str] | tuple[str, ...]) -> list[str]:
    """The kinds a citizen with these active kinds may still add: those not active yet, and
    those of which an account may have several (passkeys)."""
    return [
        name for name, kind in KINDS.items() if kind.several_per_account or name not in active_kinds
    ]


def key_relations() -> list[str]:
    """The relations of ``DigitalKey`` every kind asks to be joined when keys are listed."""
    return [name for kind in KINDS.values() for name in kind.related]


def level_of(kind: str) -> str:
    """The assurance level of a sign-in with password and a key of ``kind``: the setting
    ``DIGITAL_KEY_LEVELS`` (``{"sms": "low", ...}``) where it names the kind, else the kind's
    ``default_level``. Only a level of ``SITE_LEVELS``: ImproperlyConfigured otherwise (the
    system check ``keys.E001`` says so before any request)."""
    configured = getattr(settings, "DIGITAL_KEY_LEVELS", {}) or {}
    level = configured.get(kind) or get_kind(kind).default_level
    if level not in SITE_LEVELS:
        raise ImproperlyConfigured(
            f"DIGITAL_KEY_LEVELS[{kind!r}] = {level!r}: not one of {SITE_LEVELS}"
        )
    return level


__all__ = [
    "KINDS",
    "LEVELS",
    "SITE_LEVELS",
    "ChallengeResult",
    "KeyKind",
    "Outcome",
    "VerifyResult",
    "addable_kinds",
    "get_kind",
    "key_relations",
    "level_of",
]
