"""Request ids and request metrics, both near the top of ``MIDDLEWARE``."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from ops import metrics
from ops.logging import request_id_var

# nginx's $request_id is 32 hex characters; other proxies send UUIDs. Anything else (too long,
# spaces, quotes, newlines that would forge log lines) is replaced by an id of our own.
REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{8,64}")
HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """Give each request an id: the proxy's ``X-Request-ID`` when well-formed, else a new one.

    The id is ``request.request_id``, the response's ``X-Request-ID`` header, and the
    ``request_id`` of every log line written while the request is served (a context variable that
    :class:`ops.logging.JsonFormatter` reads, also for Django's own "Not Found: ..." lines, which
    are written after the middleware; ``ops.signals`` clears it when the request is finished).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        request_id_var.set(request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


class MetricsMiddleware:
    """Count each request by view (its route name, never its path) and status, and time it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None else "unresolved"
        metrics.observe_request(
            view, request.method, response.status_code, time.perf_counter() - start
        )
        return response
