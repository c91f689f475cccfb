"""One rate limiter for every endpoint that checks a secret, configured in one table.

Fixed windows counted in the cache (Redis through ``REDIS_URL`` in production, so every
worker process shares the counts; process memory in development). The table is
``limits.RATE_LIMITS``: ``name -> (requests, window)``; views call :func:`check_limits` with
the limits that apply and get the refusal page back when one is exceeded.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from keys.conf import limits

if TYPE_CHECKING:
    from keys.models import Activation


@dataclass(frozen=True)
class RateResult:
    allowed: bool
    retry_after_seconds: int = 0


def _window(name: str, identity: object) -> tuple[int, int, int, float, str]:
    """``(maximum, seconds, window index, now, cache key)`` of limit ``name`` for ``identity``."""
    maximum, window = limits.RATE_LIMITS[name]
    seconds = int(window.total_seconds())
    now = time.time()
    window_index = int(now // seconds)
    digest = hashlib.sha256(str(identity).encode()).hexdigest()[:32]
    return maximum, seconds, window_index, now, f"csam:rl:{name}:{digest}:{window_index}"


def _retry_after(seconds: int, window_index: int, now: float) -> int:
    return max(1, math.ceil((window_index + 1) * seconds - now))


def peek(name: str, identity: object) -> tuple[int, RateResult]:
    """How many requests of ``identity`` limit ``name`` has counted in this window, and whether
    one more may go on, without counting one (for limits counted after the fact, on failures:
    the token endpoint's, oidc/views.py)."""
    maximum, seconds, window_index, now, key = _window(name, identity)
    count = int(cache.get(key) or 0)
    if count < maximum:
        return count, RateResult(True)
    return count, RateResult(False, _retry_after(seconds, window_index, now))


def hit(name: str, identity: object) -> RateResult:
    """Count one request of ``identity`` (an IP, an activation id) against limit ``name``."""
    maximum, seconds, window_index, now, key = _window(name, identity)
    cache.add(key, 0, timeout=seconds + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=seconds + 5)
        count = 1
    if count <= maximum:
        return RateResult(True)
    return RateResult(False, _retry_after(seconds, window_index, now))


def _refuse(
    request: HttpRequest, result: RateResult, scope: str, activation: Activation | None
) -> HttpResponse:
    from keys import audit
    from keys.models import AuditEvent

    audit.record(
        AuditEvent.Action.RATE_LIMITED,
        request=request,
        activation=activation,
        scope=scope,
    )
    minutes = max(1, (result.retry_after_seconds + 59) // 60)
    response = render(request, "keys/rate_limited.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(result.retry_after_seconds)
    return response


def check_limits(
    request: HttpRequest,
    checks: list[tuple[str, object]],
    activation: Activation | None = None,
) -> HttpResponse | None:
    """Count this request against each ``(limit, identity)``; a 429 page (audited, with
    ``Retry-After``) when one is exceeded, ``None`` when the request may go on."""
    for name, identity in checks:
        result = hit(name, identity)
        if not result.allowed:
            return _refuse(request, result, name, activation)
    return None


def reauth_refused(request: HttpRequest) -> HttpResponse | None:
    """For a page that asks a signed-in citizen's password again (remove a key, a new phone,
    recovery codes...): a POST counts against ``reauth:user``; the 429 page when over it."""
    if request.method != "POST":
        return None
    return check_limits(request, [("reauth:user", request.user.pk)])
