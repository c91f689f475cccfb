"""Writing the audit trail: who did what, when, from where.

"From where" is :func:`keys.network.client_ip`, the one derivation of the client's address:
the socket peer (``REMOTE_ADDR``), or, when that peer is one of ``TRUSTED_PROXIES``, the first
address in ``X-Forwarded-For`` (read right to left) that is not a trusted proxy. A client that
writes its own ``X-Forwarded-For`` to a server it reaches directly changes nothing. Rate limits,
sign-in records and notices, and the helpdesk's timeline read the same address
(``audit.client_ip`` is that function).

Every event is also counted for Prometheus (``ops.metrics.count_event``): this one call covers
activations issued, opened and completed, codes sent, undelivered, refused and rejected,
rate-limit refusals, and every other action by name.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest

from keys.models import Activation, AuditEvent, Citizen, User
from keys.network import client_ip
from keys.prepared import insert
from ops.metrics import count_event

__all__ = ["client_ip", "extra_detail", "record"]

_extra_detail: ContextVar[dict[str, Any]] = ContextVar("audit_extra_detail")


@contextmanager
def extra_detail(**detail: Any) -> Iterator[None]:
    """Add ``detail`` to every event recorded inside the block: the helpdesk's reason reaches
    the events the services it calls write (``helpdesk/services.py``)."""
    token = _extra_detail.set({**_extra_detail.get({}), **detail})
    try:
        yield
    finally:
        _extra_detail.reset(token)


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    actor: User | None = None,
    actor_label: str = "",
    citizen: Citizen | None = None,
    activation: Activation | None = None,
    activation_id: int | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append one event. ``detail`` must never carry a secret. ``activation_id`` names the
    activation without reading it (``activation`` and ``citizen`` are objects already read)."""
    detail = {**_extra_detail.get({}), **detail}
    user = getattr(request, "user", None)
    if actor is None and user is not None and user.is_authenticated:
        actor = user
    if citizen is None and activation is not None:
        citizen = activation.citizen
    if not actor_label:
        actor_label = (
            actor.get_username() if actor is not None else "citizen" if request else "system"
        )
    # One prepared INSERT (keys/prepared.py): the trail's rows are the most frequent write.
    event = insert(
        AuditEvent(
            action=action,
            actor=actor,
            actor_label=actor_label[:150],
            citizen=citizen,
            activation=activation,
            **({"activation_id": activation_id} if activation is None and activation_id else {}),
            ip_address=client_ip(request),
            user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:300],
            detail=detail,
        )
    )
    count_event(action, detail)
    return event
