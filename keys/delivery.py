"""Deliveries through an outbox and Django's tasks framework.

``queue_email`` and ``queue_sms`` store the message (encrypted) and enqueue the ``deliver`` task.
In development the task runs at once (``ImmediateBackend``); in production the
``django-tasks-db`` backend stores it and ``manage.py db_worker`` runs it. A failed attempt is
retried with exponential backoff (30 s, 1 min, 2 min, ... up to an hour, 10 attempts) while the
message is still useful: an expired registration code or a closed activation is not sent late.
``manage.py retry_deliveries`` re-enqueues what is due, for backends that cannot defer a task.

When the task runs inline (the ``deliver`` task's backend is ``ImmediateBackend``: development,
the benchmark, a single-process deployment), the first attempt takes a fast path: the row is
inserted already claimed (``sending``, ``claimed_at`` now, one attempt counted), and the
in-memory instance is handed to the attempt that ``deliver.enqueue`` runs at once (``_handoff``,
keyed by the row's id), which sends it and records the outcome on that same instance. That
saves the claim's transaction (SELECT ... FOR UPDATE, UPDATE) and the read-back after enqueue;
the usefulness check is made on the objects the caller passed, with no query. The task still
goes through ``deliver.enqueue``, so its ``task_finished`` signal (the delivery metrics) fires.
Nothing else changes: a failed attempt is retried as above (by ``attempt`` claiming the row), a
crash mid-send leaves a ``sending`` row that ``retry_due`` takes back after
``DELIVERY_CLAIM_TIMEOUT``, and with any other backend (``db_worker``) the row is inserted
``pending`` and the worker claims it.
"""

from __future__ import annotations

import json
import logging
import smtplib
from contextvars import ContextVar
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.tasks import task
from django.tasks.backends.immediate import ImmediateBackend
from django.tasks.base import TaskResultStatus
from django.utils import timezone

from keys import audit, crypto
from keys.conf import limits
from keys.mail import Email
from keys.models import Activation, AuditEvent, OneTimeCode, OutboundMessage
from keys.prepared import update_row, update_where
from keys.sms import SmsDeliveryError, send_sms

logger = logging.getLogger(__name__)
Status = OutboundMessage.Status

# The message that ``_queue`` just inserted already claimed, by id, for the inline attempt that
# ``deliver.enqueue`` runs at once to take instead of claiming it again (see the module's doc).
_handoff: ContextVar[dict[int, OutboundMessage] | None] = ContextVar(
    "csam_outbox_handoff", default=None
)


def queue_email(
    message: EmailMultiAlternatives,
    *,
    purpose: str,
    activation: Activation | None = None,
    one_time_code: OneTimeCode | None = None,
) -> OutboundMessage:
    """Store an e-mail in the outbox and enqueue its delivery."""
    payload = {
        "subject": message.subject,
        "body": message.body,
        "from": message.from_email,
        "to": list(message.to),
        "html": next(
            (content for content, kind in message.alternatives if kind == "text/html"), ""
        ),
        "headers": dict(message.extra_headers),
    }
    return _queue(
        OutboundMessage.Channel.EMAIL,
        ", ".join(message.to),
        payload,
        purpose=purpose,
        activation=activation,
        one_time_code=one_time_code,
    )


def queue_sms(
    to: str, body: str, *, purpose: str, one_time_code: OneTimeCode | None = None
) -> OutboundMessage:
    """Store a text message in the outbox and enqueue its delivery."""
    return _queue(
        OutboundMessage.Channel.SMS,
        to,
        {"to": to, "body": body},
        purpose=purpose,
        one_time_code=one_time_code,
    )


def _queue(channel: str, recipient: str, payload: dict, **fields: object) -> OutboundMessage:
    now = timezone.now()
    outbound = OutboundMessage(
        channel=channel,
        recipient=recipient[:254],
        payload_encrypted=crypto.encrypt(json.dumps(payload)),
        next_attempt_at=now,
        **fields,
    )
    # A message no longer useful takes the ordinary path, whose claim cancels it.
    inline = isinstance(deliver.get_backend(), ImmediateBackend) and _still_useful(outbound)
    if inline:  # claimed in the INSERT itself: no other attempt takes it while this one sends
        outbound.status = Status.SENDING
        outbound.claimed_at = now
        outbound.attempts = 1
    outbound.save(force_insert=True)
    if not inline:
        deliver.enqueue(outbound.pk)
        outbound.refresh_from_db()
        return outbound
    token = _handoff.set({outbound.pk: outbound})
    try:
        result = deliver.enqueue(outbound.pk)
    finally:
        _handoff.reset(token)
    # "sent" and "failed" recorded their outcome on this very instance; anything else (an
    # unexpected error, a claim taken over) is read back from the row.
    if result.status != TaskResultStatus.SUCCESSFUL or result.return_value not in (
        "sent",
        "failed",
    ):
        outbound.refresh_from_db()
    return outbound


def _backoff(attempts: int) -> timedelta:
    delay = limits.DELIVERY_BACKOFF_BASE * (2 ** max(0, attempts - 1))
    return min(delay, limits.DELIVERY_BACKOFF_MAX)


def _still_useful(outbound: OutboundMessage) -> bool:
    if outbound.one_time_code_id is not None:
        code = outbound.one_time_code
        return code.consumed_at is None and code.expires_at > timezone.now()
    if outbound.activation_id is not None and outbound.purpose == "activation_link":
        return outbound.activation.is_open
    return True


def _message_id(outbound: OutboundMessage) -> str:
    """One Message-ID per outbox row, the same on every attempt: should a worker die after the
    mail server accepted a message and before the outbox heard of it, the second copy carries
    the same id, which mail stores recognise as the same message."""
    host = settings.SITE_URL.split("://")[-1].split("/")[0].split(":")[0]
    domain = host or "csam-activation.localhost"
    return f"<csam.outbox.{outbound.pk}.{int(outbound.created_at.timestamp())}@{domain}>"


def _send(outbound: OutboundMessage, payload: dict) -> None:
    if outbound.channel == OutboundMessage.Channel.SMS:
        send_sms(payload["to"], payload["body"])
        return
    headers = {**payload["headers"], "Message-ID": _message_id(outbound)}
    message = Email(
        subject=payload["subject"],
        body=payload["body"],
        from_email=payload["from"],
        to=payload["to"],
        headers=headers,
    )
    if payload["html"]:
        message.attach_alternative(payload["html"], "text/html")
    message.send()


def _claim(outbound_id: int) -> tuple[OutboundMessage | None, str]:
    """Take one message for sending, under its row lock, and commit at once.

    Returns the message (now ``sending``, one more attempt counted) or ``None`` with why not:
    already done, cancelled because it is no longer useful, or in flight at another worker.
    """
    now = timezone.now()
    with transaction.atomic():
        outbound = (
            OutboundMessage.objects.select_for_update(of=("self",))
            .select_related("activation", "one_time_code")
            .filter(pk=outbound_id)
            .first()
        )
        if outbound is None or outbound.status in (Status.SENT, Status.FAILED, Status.CANCELLED):
            return None, "nothing to do"
        if (
            outbound.status == Status.SENDING
            and outbound.claimed_at is not None
            and outbound.claimed_at > now - limits.DELIVERY_CLAIM_TIMEOUT
        ):
            return None, "in flight"
        if not _still_useful(outbound):
            outbound.status = Status.CANCELLED
            outbound.payload_encrypted = ""
            outbound.claimed_at = None
            outbound.save(update_fields=["status", "payload_encrypted", "claimed_at"])
            return None, "cancelled"
        outbound.status = Status.SENDING
        outbound.claimed_at = now
        outbound.attempts += 1
        outbound.save(update_fields=["status", "claimed_at", "attempts"])
    return outbound, "claimed"


def attempt(outbound_id: int) -> str:
    """Try to send one message now. Safe to call any number of times, from any number of
    workers: a message is claimed under its row lock, sent with no lock held (a slow mail server
    or SMS gateway never holds up the database), then its outcome is recorded.

    The inline attempt of a message ``_queue`` inserted already claimed takes that instance
    from ``_handoff`` instead of claiming the row again."""
    handoff = _handoff.get()
    outbound = handoff.pop(outbound_id, None) if handoff else None
    if outbound is None:
        outbound, why = _claim(outbound_id)
        if outbound is None:
            return why
    claimed_at = outbound.claimed_at
    try:
        _send(outbound, json.loads(crypto.decrypt(outbound.payload_encrypted)))
    except (smtplib.SMTPException, SmsDeliveryError, OSError) as error:
        outbound.last_error = type(error).__name__
        if outbound.attempts >= limits.DELIVERY_MAX_ATTEMPTS:
            outbound.status = Status.FAILED
            outbound.payload_encrypted = ""
            outbound.next_attempt_at = None
        else:
            outbound.status = Status.RETRYING
            outbound.next_attempt_at = timezone.now() + _backoff(outbound.attempts)
        if not _finish(outbound, claimed_at):
            return "taken over"
        logger.warning(
            "Delivery %s (%s) failed, attempt %d: %s",
            outbound.pk,
            outbound.purpose,
            outbound.attempts,
            outbound.last_error,
        )
        _record_failure(outbound)
        if outbound.status == Status.RETRYING:
            _schedule_retry(outbound)
        return "failed"
    outbound.status = Status.SENT
    outbound.sent_at = timezone.now()
    outbound.payload_encrypted = ""
    outbound.next_attempt_at = None
    if not _finish(outbound, claimed_at):
        return "taken over"
    _record_success(outbound)
    return "sent"


def _finish(outbound: OutboundMessage, claimed_at: object) -> bool:
    """Record the outcome of this worker's claim; False when the claim was no longer ours.

    The instance then matches its row (the inline path returns it to the caller unread)."""
    finished = update_where(
        OutboundMessage,
        {"pk": outbound.pk, "status": Status.SENDING, "claimed_at": claimed_at},
        status=outbound.status,
        sent_at=outbound.sent_at,
        payload_encrypted=outbound.payload_encrypted,
        next_attempt_at=outbound.next_attempt_at,
        last_error=outbound.last_error,
        claimed_at=None,
    )
    if finished:
        outbound.claimed_at = None
    return bool(finished)


def _schedule_retry(outbound: OutboundMessage) -> None:
    """Enqueue the next attempt when the backend can defer; otherwise ``retry_deliveries`` does."""
    if deliver.get_backend().supports_defer:
        deliver.using(run_after=outbound.next_attempt_at).enqueue(outbound.pk)


def _record_failure(outbound: OutboundMessage) -> None:
    if outbound.purpose == "activation_link" and outbound.activation_id:
        Activation.objects.filter(pk=outbound.activation_id).update(
            email_status=Activation.EmailStatus.FAILED
        )
        if outbound.attempts == 1 or outbound.status == Status.FAILED:
            audit.record(
                AuditEvent.Action.EMAIL_FAILED,
                activation=outbound.activation,
                error=outbound.last_error,
                attempt=outbound.attempts,
                gave_up=outbound.status == Status.FAILED,
            )


def _record_success(outbound: OutboundMessage) -> None:
    if outbound.one_time_code_id:
        update_row(OneTimeCode, outbound.one_time_code_id, delivered=True)
    if outbound.purpose == "activation_link" and outbound.activation_id:
        update_row(
            Activation,
            outbound.activation_id,
            email_status=Activation.EmailStatus.SENT,
            email_sent_at=outbound.sent_at,
        )
        audit.record(
            AuditEvent.Action.EMAIL_SENT,
            activation=outbound.activation,
            to=outbound.recipient,
            attempt=outbound.attempts,
        )


def cancel_pending(activation: Activation, purpose: str) -> int:
    """Stop queued messages that a newer one replaces (a resent link, say)."""
    return OutboundMessage.objects.filter(
        activation=activation, purpose=purpose, status__in=(Status.PENDING, Status.RETRYING)
    ).update(status=Status.CANCELLED, payload_encrypted="", claimed_at=None)


def retry_due() -> int:
    """Enqueue every message whose next attempt is due, and every message whose worker died
    while sending it (a claim older than ``DELIVERY_CLAIM_TIMEOUT``); returns how many.

    Enqueuing a message twice is harmless: an attempt claims it first.
    """
    now = timezone.now()
    due = list(
        OutboundMessage.objects.filter(
            Q(status__in=(Status.PENDING, Status.RETRYING), next_attempt_at__lte=now)
            | Q(status=Status.SENDING, claimed_at__lte=now - limits.DELIVERY_CLAIM_TIMEOUT)
        ).values_list("pk", flat=True)
    )
    for pk in due:
        deliver.enqueue(pk)
    return len(due)


@task()
def deliver(outbound_id: int) -> str:
    """The delivery task: one attempt at one message."""
    return attempt(outbound_id)
