"""System checks of the deployment (``manage.py check --deploy``).

``keys.W001``: the rate limits of ``RATE_LIMITS`` (``keys/conf.py``, ``keys/ratelimit.py``:
per address, per activation, per key) are counted in the default cache. In process memory
(``REDIS_URL`` unset) every gunicorn worker counts on its own, so with N workers a citizen or an
attacker gets N times each of them. (The sign-in lockout per account, SPEC §3, is counted in the
database and is not affected.) Only a site served by one single process may leave it so.
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
