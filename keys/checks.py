"""System checks of the deployment (``manage.py check --deploy``).

``keys.W001``: the rate limits of ``RATE_LIMITS`` (``keys/conf.py``, ``keys/ratelimit.py``:
per address, per activation, per key) are counted in the default cache. In process memory
(``REDIS_URL`` unset) every gunicorn worker counts on its own, so with N workers a citizen or an
attacker gets N times each of them. (The sign-in lockout per account, SPEC §3, is counted in the
database and is not affected.) Only a site served by one single process may leave it so.

``keys.W002``: e-mail goes to the console without ``DEBUG`` (``MAILER=console``): every
activation link and security code is printed on standard output, where the log redaction of
``keys.logging`` does not reach. The settings refuse to start so unless it is asked for by name.

``keys.W003``: ``FIELD_ENCRYPTION_KEYS`` unset: the key encrypting TOTP seeds and queued
messages at rest is derived from ``SECRET_KEY`` (``keys.crypto``), so rotating ``SECRET_KEY``
makes them unreadable, and one leaked secret opens both.

``keys.E001`` (every ``check``, not only ``--deploy``): ``DIGITAL_KEY_LEVELS`` may give a kind
of key only a level this site can give (``keys.digital_keys.SITE_LEVELS``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register(checks.Tags.security, deploy=True)
def rate_limits_shared(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        checks.Warning(
            "Rate limits are counted in process memory: each worker process counts on its own, "
            "so several gunicorn workers multiply every limit.",
            hint="Set REDIS_URL (a Redis shared by every worker and instance), unless a single "
            "process serves the site.",
            id="keys.W001",
        )
    ]


@checks.register(checks.Tags.security, deploy=True)
def mail_not_on_the_console(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.DEBUG or getattr(settings, "MAILER", "") != "console":
        return []
    return [
        checks.Warning(
            "E-mails are printed on standard output (MAILER=console): activation links and "
            "security codes go to the process's output, past the log redaction.",
            hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_USE_TLS, ...) to an SMTP relay.",
            id="keys.W002",
        )
    ]


@checks.register(checks.Tags.security, deploy=True)
def field_encryption_keys_set(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if getattr(settings, "FIELD_ENCRYPTION_KEYS", None):
        return []
    return [
        checks.Warning(
            "FIELD_ENCRYPTION_KEYS is not set: the key that encrypts TOTP seeds and queued "
            "messages at rest is derived from SECRET_KEY.",
            hint="Set FIELD_ENCRYPTION_KEYS to a Fernet key of its own (python -c 'from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'); "
            "rotating SECRET_KEY then leaves the encrypted fields readable.",
            id="keys.W003",
        )
    ]


@checks.register()
def digital_key_levels(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``keys.E001``: ``DIGITAL_KEY_LEVELS`` gives a kind of key a level this site cannot give
    ("high" is FAS's eID card and itsme, issued elsewhere) or names no kind of key. An error:
    ``migrate``, ``runserver`` and ``check`` refuse to go on (``level_of`` would refuse each
    sign-in with that key anyway)."""
    from keys.digital_keys import KINDS, SITE_LEVELS

    configured = getattr(settings, "DIGITAL_KEY_LEVELS", {}) or {}
    errors: list[checks.CheckMessage] = []
    for kind, level in configured.items():
        if kind not in KINDS:
            errors.append(
                checks.Error(
                    f"DIGITAL_KEY_LEVELS names {kind!r}, which is no kind of key.",
                    hint=f"The kinds are {', '.join(KINDS)}.",
                    id="keys.E001",
                )
            )
        elif level not in SITE_LEVELS:
            errors.append(
                checks.Error(
                    f"DIGITAL_KEY_LEVELS[{kind!r}] = {level!r}: a key of this site gives at most "
                    f"{SITE_LEVELS[-1]!r} (FAS Level400); 'high' (Level450 itsme, Level500 eID "
                    "card) is not given here.",
                    hint=f"Use one of {', '.join(SITE_LEVELS)}.",
                    id="keys.E001",
                )
            )
    return errors
