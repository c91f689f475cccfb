"""Metrics for Prometheus, with prometheus-client.

Every process counts in its own memory; with ``PROMETHEUS_MULTIPROC_DIR`` set (the stack sets
``var/prometheus`` and empties it before starting anything) each process writes its counts to
files there instead, and ``/metrics``, served by any gunicorn worker, adds up every worker's and
the task worker's. Label values are always from small fixed sets: a view's route name, never a
path (a path may hold a link token); a method outside the usual ones is ``other``.

What is counted and where:

- ``csam_http_requests_total{view,method,status}`` and
  ``csam_http_request_duration_seconds{view,method}``: :class:`ops.middleware.MetricsMiddleware`;
- ``csam_audit_events_total{action}``, ``csam_activations_total{event}`` (issued, opened,
  completed), ``csam_codes_total{kind,outcome}`` (sent, failed to deliver, refused, rejected) and
  ``csam_rate_limited_total{scope}``: :func:`count_event`, called by ``keys.audit.record`` for
  every audit event;
- ``csam_deliveries_total{channel,outcome}`` (queued, sent, retried, dead, cancelled):
  ``ops.signals`` (a message created; the outcome of each ``deliver`` task);
- ``csam_outbox_messages{channel,status}``: messages waiting, being sent or waiting for a retry,
  read from the database at each scrape (the queue's depth, whichever process holds it).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter(
    "csam_http_requests",
    "HTTP requests answered, by view (route name), method and status.",
    ["view", "method", "status"],
)
LATENCY = Histogram(
    "csam_http_request_duration_seconds",
    "Time to answer a request, by view (route name) and method.",
    ["view", "method"],
    # the wizard's steps take 3-20 ms; the account step ~150 ms (argon2id); sending a code waits
    # for SMTP or the SMS gateway when deliveries run in the request
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
AUDIT_EVENTS = Counter("csam_audit_events", "Audit events written, by action.", ["action"])
ACTIVATIONS = Counter(
    "csam_activations", "Activations issued, opened (link) and completed.", ["event"]
)
CODES = Counter(
    "csam_codes",
    "One-time codes of a key: sent, failed (not delivered), refused (asked too often), "
    "rejected (a wrong code typed).",
    ["kind", "outcome"],
)
RATE_LIMITED = Counter(
    "csam_rate_limited", "Requests refused by a rate limit, by limit.", ["scope"]
)
DELIVERIES = Counter(
    "csam_deliveries",
    "Outbox messages queued, sent, retried (an attempt failed, another follows), dead (given "
    "up) and cancelled (no longer useful), by channel.",
    ["channel", "outcome"],
)

_ACTIVATION_EVENTS = {
    "activation_issued": "issued",
    "link_opened": "opened",
    "activation_completed": "completed",
}
_CODE_OUTCOMES = {
    "challenge_sent": "sent",
    "challenge_failed": "failed",
    "challenge_refused": "refused",
    "key_code_rejected": "rejected",
}
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_LABEL = re.compile(r"[A-Za-z0-9_:.\-]{1,60}")


def label(value: object, default: str = "other") -> str:
    """A label value from a fixed vocabulary (a route name, an action, a scope), or ``other``."""
    text = str(value) if value is not None else ""
    return text if _LABEL.fullmatch(text) else default


def method_label(method: str | None) -> str:
    return method if method in _METHODS else "other"


def observe_request(view: str, method: str | None, status: int, seconds: float) -> None:
    """Count and time one request. Never raises."""
    view, method = label(view, "unresolved"), method_label(method)
    try:
        REQUESTS.labels(view=view, method=method, status=str(status)).inc()
        LATENCY.labels(view=view, method=method).observe(seconds)
    except Exception:
        logger.warning("Could not count a request to %s", view, exc_info=True)


def count_event(action: str, detail: Mapping[str, object] | None = None) -> None:
    """Count one audit event (``keys.audit.record``). Never raises: a metric must not cost a
    citizen a request."""
    detail = detail or {}
    try:
        AUDIT_EVENTS.labels(action=label(action)).inc()
        if action in _ACTIVATION_EVENTS:
            ACTIVATIONS.labels(event=_ACTIVATION_EVENTS[action]).inc()
        elif action in _CODE_OUTCOMES:
            CODES.labels(kind=label(detail.get("kind")), outcome=_CODE_OUTCOMES[action]).inc()
        elif action == "rate_limited":
            RATE_LIMITED.labels(scope=label(detail.get("scope"))).inc()
    except Exception:
        logger.warning("Could not count the audit event %s", action, exc_info=True)


def count_delivery(channel: str, outcome: str) -> None:
    """Count one outbox transition: queued, sent, retried, dead or cancelled. Never raises."""
    try:
        DELIVERIES.labels(channel=label(channel), outcome=label(outcome)).inc()
    except Exception:
        logger.warning("Could not count a delivery (%s)", outcome, exc_info=True)


class OutboxCollector(Collector):
    """The outbox's live queue, read from the database when Prometheus scrapes."""

    LIVE = ("pending", "sending", "retrying")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count

        from keys.models import OutboundMessage

        gauge = GaugeMetricFamily(
            "csam_outbox_messages",
            "Messages in the outbox waiting to be sent, being sent, or waiting for a retry.",
            labels=["channel", "status"],
        )
        try:
            rows = (
                OutboundMessage.objects.filter(status__in=self.LIVE)
                .values_list("channel", "status")
                .annotate(n=Count("pk"))
                .order_by()
            )
            counts = {(channel, status): n for channel, status, n in rows}
        except Exception as error:  # the database is down: /readyz says so; the rest serves
            logger.warning("Could not read the outbox for the metrics (%s)", type(error).__name__)
            return
        for channel in OutboundMessage.Channel.values:
            for status in self.LIVE:
                gauge.add_metric([channel, status], counts.get((channel, status), 0))
        yield gauge


_outbox_registry = CollectorRegistry(auto_describe=False)
_outbox_registry.register(OutboxCollector())


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> bytes:
    """The exposition text: this process's counts, or every process's in multiprocess mode, and
    the outbox's queue."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_outbox_registry)
