"""Making and checking the two halves of an activation: the link token and the paper code.

Both are stored only as keyed hashes (HMAC-SHA256 under a server key), never in clear: a copy of
the database alone does not let anybody open a link or guess a code offline. The paper code
carries only 50 bits, which is why it is keyed (an unkeyed hash of 50 bits could be brute-forced
from a stolen database) and why the number of tries per activation is limited.

Several keys may be configured (``ACTIVATION_HASH_KEYS``); the first hashes new secrets and all
are tried on check, so a key can be rotated without cutting off the activations in flight.
"""

import hmac
import secrets

from django.conf import settings
from django.utils.crypto import salted_hmac

from keys.conf import limits

# Crockford's base32: no I, L, O, U, so a printed code cannot be misread.
CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})

_PURPOSE_LINK = "keys.activation-link-token"
_PURPOSE_CODE = "keys.activation-code"


def _hash_keys() -> list[str]:
    configured = list(getattr(settings, "ACTIVATION_HASH_KEYS", []) or [])
    if configured:
        return configured
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def _keyed_hash(purpose: str, value: str, key: str) -> str:
    return salted_hmac(purpose, value, secret=key, algorithm="sha256").hexdigest()


def generate_link_token() -> str:
    """A fresh URL-safe link token of ``ACTIVATION_LINK_TOKEN_BYTES`` random bytes (256 bits)."""
    return secrets.token_urlsafe(limits.ACTIVATION_LINK_TOKEN_BYTES)


def hash_link_token(token: str) -> str:
    """The hash under which a new link token is stored."""
    return _keyed_hash(_PURPOSE_LINK, token, _hash_keys()[0])


def link_token_candidates(token: str) -> list[str]:
    """Every hash the token may be stored under (one per configured key), for look-up."""
    return [_keyed_hash(_PURPOSE_LINK, token, key) for key in _hash_keys()]


def generate_activation_code() -> str:
    """A fresh paper code: ``ACTIVATION_CODE_LENGTH`` Crockford characters, without the dash."""
    return "".join(secrets.choice(CROCKFORD_ALPHABET) for _ in range(limits.ACTIVATION_CODE_LENGTH))


def format_activation_code(code: str) -> str:
    """Group a code for print: ``ABCDE-FGHJK``."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_activation_code(typed: str) -> str:
    """What the citizen typed, as the code it stands for.

    Case, spaces and dashes are ignored; O reads as 0, I and L as 1 (SPEC §3).
    """
    cleaned = "".join(ch for ch in (typed or "").upper() if ch not in " -\t\u00a0")
    return cleaned.translate(_CROCKFORD_ALIASES)


def is_well_formed_activation_code(code: str) -> bool:
    """True when ``code`` (normalized) has the length and alphabet of a paper code."""
    return len(code) == limits.ACTIVATION_CODE_LENGTH and all(
        ch in CROCKFORD_ALPHABET for ch in code
    )


def hash_activation_code(code: str) -> str:
    """The hash under which a new paper code is stored (``code`` already normalized)."""
    return _keyed_hash(_PURPOSE_CODE, code, _hash_keys()[0])


def check_activation_code(typed: str, stored_hash: str) -> bool:
    """Constant-time check of a typed code against a stored hash, under every key."""
    code = normalize_activation_code(typed)
    matched = False
    for key in _hash_keys():
        matched |= hmac.compare_digest(_keyed_hash(_PURPOSE_CODE, code, key), stored_hash)
    return matched
