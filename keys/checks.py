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
