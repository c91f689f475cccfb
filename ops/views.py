"""Probes and metrics: no authentication, no session, nothing secret, never cached.

None of these views touches ``request.session`` or ``request.user``, so no session is read or
created and no cookie is set; they live outside the language prefix (``csam_activation/urls.py``)
and are exempt from the HTTPS redirect (``SECURE_REDIRECT_EXEMPT``), so a probe can ask a
gunicorn instance directly over plain HTTP. The host it names must still be in ALLOWED_HOSTS.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from keys import network
from ops import metrics as prometheus

logger = logging.getLogger(__name__)


@require_safe
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and answers (nothing else is asked: no database, no cache)."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


def _database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache() -> None:
    cache = caches["default"]
    key, value = f"csam:readyz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not give back what was written")
    cache.delete(key)


CHECKS = {"database": _database, "cache": _cache}


@require_safe
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """The database and the cache answer: 200; otherwise 503 naming what failed (only its name:
    the error, which may name hosts, goes to the log)."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:
            logger.warning("Readiness: the %s does not answer (%s)", name, type(error).__name__)
            results[name] = "failed"
        else:
            results[name] = "ok"
    failed = [name for name, result in results.items() if result != "ok"]
    return JsonResponse(
        {"status": "unavailable" if failed else "ok", "failed": failed, "checks": results},
        status=503 if failed else 200,
    )


def metrics_allowed(request: HttpRequest) -> bool:
    """The client's address (``keys.network.client_ip``: the peer, or the address a trusted
    proxy forwarded) is in ``METRICS_ALLOWED``."""
    address = network.parse_address(network.client_ip(request) or "")
    allowed = network.parse_networks(getattr(settings, "METRICS_ALLOWED", ()))
    return address is not None and network.in_networks(address, allowed)


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape, for the addresses of ``METRICS_ALLOWED`` only: to anybody else this
    path does not exist (404, like any unknown path)."""
    if not metrics_allowed(request):
        raise Http404
    return HttpResponse(prometheus.render(), content_type=prometheus.CONTENT_TYPE)
