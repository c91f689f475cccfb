"""One rate limiter for every endpoint that checks a secret, configured in one table.

Fixed windows counted in the cache (Redis through ``REDIS_URL`` in production, so every
worker process shares the counts; process memory in development). The table is
``limits.RATE_LIMITS``: ``name -> (requests, window)``.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.core.cache import cache

from keys.conf import limits


@dataclass(frozen=True)
class RateResult:
    allowed: bool
    retry_after_seconds: int = 0


def hit(name: str, identity: object) -> RateResult:
    """Count one request of ``identity`` (an IP, an activation id) against limit ``name``."""
    maximum, window = limits.RATE_LIMITS[name]
    seconds = int(window.total_seconds())
    now = time.time()
    window_index = int(now // seconds)
    digest = hashlib.sha256(str(identity).encode()).hexdigest()[:32]
    key = f"csam:rl:{name}:{digest}:{window_index}"
    cache.add(key, 0, timeout=seconds + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=seconds + 5)
        count = 1
    if count <= maximum:
        return RateResult(True)
    retry_after = math.ceil((window_index + 1) * seconds - now)
    return RateResult(False, max(1, retry_after))
