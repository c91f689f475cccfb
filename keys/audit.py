"""Writing the audit trail: who did what, when, from where."""

from typing import Any

from django.http import HttpRequest

from keys.models import Activation, AuditEvent, Citizen, User


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address as the WSGI server saw it.

    ``X-Forwarded-For`` is deliberately not trusted here: a reverse proxy in front must set
    ``REMOTE_ADDR`` (gunicorn's ``--forwarded-allow-ips``), otherwise a client could write any
    address into the audit trail.
    """
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    actor: User | None = None,
    actor_label: str = "",
    citizen: Citizen | None = None,
    activation: Activation | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append one event. ``detail`` must never carry a secret."""
    user = getattr(request, "user", None)
    if actor is None and user is not None and user.is_authenticated:
        actor = user
    if citizen is None and activation is not None:
        citizen = activation.citizen
    if not actor_label:
        actor_label = (
            actor.get_username() if actor is not None else "citizen" if request else "system"
        )
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_label=actor_label[:150],
        citizen=citizen,
        activation=activation,
        ip_address=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:300],
        detail=detail,
    )
