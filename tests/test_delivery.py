"""Deliveries survive outages: a real SMTP server is stopped, then started again."""

from datetime import timedelta
from io import StringIO

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from keys import crypto, delivery
from keys.conf import limits
from keys.models import Activation, AuditEvent, OutboundMessage
from keys.services import issuance
from tests.smtp import Sink, free_port, smtp_mailers, text_of
from tests.test_issuance import FAILING_MAILERS

DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def run_worker() -> None:
    call_command(
        "db_worker",
        batch=True,
        startup_delay=False,
        interval=0,
        stdout=StringIO(),
        stderr=StringIO(),
    )


@pytest.mark.django_db(transaction=True)
def test_smtp_outage_then_recovery_delivers_exactly_once(settings, citizen, clerk, time_machine):
    settings.TASKS = DATABASE_TASKS
    port = free_port()  # nothing listens here yet: the mail server is down
    settings.MAILERS = smtp_mailers(port)
    start = timezone.now()
    time_machine.move_to(start, tick=False)

    issued = issuance.issue_activation(citizen, issued_by=clerk)
    activation = Activation.objects.get(pk=issued.activation.pk)
    assert activation.email_status == Activation.EmailStatus.PENDING  # queued, not sent yet
    outbound = OutboundMessage.objects.get()
    assert issued.activation_link not in outbound.payload_encrypted  # encrypted at rest
    assert issued.activation_link in crypto.decrypt(outbound.payload_encrypted)

    run_worker()  # first attempt: connection refused
    outbound.refresh_from_db()
    assert outbound.status == OutboundMessage.Status.RETRYING
    assert outbound.attempts == 1
    assert outbound.next_attempt_at == start + timedelta(seconds=30)
    assert Activation.objects.get(pk=activation.pk).email_status == Activation.EmailStatus.FAILED
    retry = DBTaskResult.objects.filter(status="READY").get()
    assert retry.run_after == outbound.next_attempt_at

    run_worker()  # not due yet: nothing happens
    outbound.refresh_from_db()
    assert outbound.attempts == 1

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()  # the mail server is back
    try:
        time_machine.move_to(start + timedelta(seconds=31), tick=False)
        run_worker()
        run_worker()
        delivery.attempt(outbound.pk)  # a stray extra attempt sends nothing either
        message = sink.wait_for(lambda m: "/activeren/" in text_of(m))
        assert issued.activation_link in text_of(message)
        assert len(sink.messages) == 1
    finally:
        controller.stop()
    outbound.refresh_from_db()
    assert outbound.status == OutboundMessage.Status.SENT
    assert outbound.payload_encrypted == ""
    assert Activation.objects.get(pk=activation.pk).email_status == Activation.EmailStatus.SENT
    assert AuditEvent.objects.filter(action="email_sent").count() == 1


def test_backoff_grows_and_gives_up(settings, citizen, clerk, time_machine):
    settings.MAILERS = FAILING_MAILERS
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    issuance.issue_activation(citizen, issued_by=clerk)
    outbound = OutboundMessage.objects.get()
    delays = []
    for _ in range(9):
        outbound.refresh_from_db()
        delays.append(outbound.next_attempt_at - timezone.now())
        time_machine.move_to(outbound.next_attempt_at, tick=False)
        assert delivery.retry_due() == 1
    outbound.refresh_from_db()
    assert [int(d.total_seconds()) for d in delays] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]
    assert outbound.status == OutboundMessage.Status.FAILED
    assert outbound.attempts == 10
    assert outbound.payload_encrypted == ""
    assert delivery.retry_due() == 0


def test_a_late_code_is_not_sent(settings, citizen, clerk, time_machine):
    from keys.digital_keys import get_kind
    from keys.models import User
    from keys.services import activation as flow

    user = User.objects.create_user("jan.peeters", "Correct-Horse-9x")
    citizen.account = user
    citizen.save()
    key = flow.enrol_key(user, "email", None)
    settings.MAILERS = FAILING_MAILERS
    assert not get_kind("email").send_challenge(key).sent
    outbound = OutboundMessage.objects.get(purpose="registration_code")
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    time_machine.move_to(timezone.now() + timedelta(minutes=11))
    assert delivery.attempt(outbound.pk) == "cancelled"
    assert not [m for m in mail.outbox if "registratiecode" in m.subject.lower()]


def test_resend_cancels_the_queued_old_link(settings, citizen, clerk):
    settings.MAILERS = FAILING_MAILERS
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    assert issuance.resend_activation_email(issued.activation, by=clerk)
    statuses = sorted(OutboundMessage.objects.values_list("status", flat=True))
    assert statuses == ["cancelled", "sent"]
    assert len(mail.outbox) == 1


def test_retry_deliveries_command(settings, citizen, clerk, time_machine):
    settings.MAILERS = FAILING_MAILERS
    issuance.issue_activation(citizen, issued_by=clerk)
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    time_machine.move_to(timezone.now() + timedelta(minutes=1))
    out = StringIO()
    call_command("retry_deliveries", stdout=out)
    assert "Enqueued 1" in out.getvalue()
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("closing", ["revoke", "reissue"])
def test_a_closed_activation_is_not_mailed_late(settings, citizen, clerk, closing):
    settings.MAILERS = FAILING_MAILERS
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    first = OutboundMessage.objects.get()
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    if closing == "revoke":
        issuance.revoke_activation(issued.activation, by=clerk)
    else:
        issuance.issue_activation(citizen, issued_by=clerk)
    mail.outbox.clear()
    assert delivery.attempt(first.pk) == "cancelled"
    assert not mail.outbox


@pytest.mark.django_db(transaction=True)
def test_the_mail_server_is_talked_to_with_no_transaction_open(
    settings, citizen, clerk, monkeypatch
):
    """A slow mail server must never hold a row (on SQLite: the database) locked."""
    from django.db import connection

    settings.TASKS = DATABASE_TASKS
    issuance.issue_activation(citizen, issued_by=clerk)
    outbound = OutboundMessage.objects.get()
    seen = []

    def send(message, payload):
        seen.append(connection.in_atomic_block)
        # meanwhile, another worker finds the message in flight and leaves it alone
        seen.append(delivery.attempt(message.pk))

    monkeypatch.setattr(delivery, "_send", send)
    assert delivery.attempt(outbound.pk) == "sent"
    assert seen == [False, "in flight"]
    outbound.refresh_from_db()
    assert outbound.status == OutboundMessage.Status.SENT
    assert outbound.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_a_claim_left_by_a_dead_worker_is_taken_back(settings, citizen, clerk, time_machine):
    settings.TASKS = DATABASE_TASKS
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    issuance.issue_activation(citizen, issued_by=clerk)
    outbound = OutboundMessage.objects.get()
    OutboundMessage.objects.filter(pk=outbound.pk).update(
        status=OutboundMessage.Status.SENDING, claimed_at=start, attempts=1
    )
    assert delivery.attempt(outbound.pk) == "in flight"
    assert delivery.retry_due() == 0
    time_machine.move_to(start + limits.DELIVERY_CLAIM_TIMEOUT + timedelta(seconds=1), tick=False)
    assert delivery.retry_due() == 1
    run_worker()
    outbound.refresh_from_db()
    assert outbound.status == OutboundMessage.Status.SENT
    assert len(mail.outbox) == 1
    assert mail.outbox[0].extra_headers["Message-ID"].startswith(f"<csam.outbox.{outbound.pk}.")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fails", [False, True], ids=["sent", "failed"])
def test_an_attempt_whose_claim_was_taken_over_records_nothing(
    settings, citizen, clerk, monkeypatch, fails
):
    """A slow attempt whose claim another worker took back meanwhile (``retry_due`` after
    ``DELIVERY_CLAIM_TIMEOUT``) leaves the row to that worker: no outcome, no success."""
    settings.TASKS = DATABASE_TASKS
    settings.MAILERS = (
        FAILING_MAILERS
        if fails
        else {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    )
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    outbound = OutboundMessage.objects.get()
    other_claim = timezone.now() + timedelta(seconds=5)
    real_send = delivery._send

    def send_while_taken_over(message, payload):
        OutboundMessage.objects.filter(pk=message.pk).update(claimed_at=other_claim, attempts=2)
        real_send(message, payload)

    monkeypatch.setattr(delivery, "_send", send_while_taken_over)
    assert delivery.attempt(outbound.pk) == "taken over"
    outbound.refresh_from_db()
    assert outbound.status == OutboundMessage.Status.SENDING
    assert (outbound.claimed_at, outbound.attempts) == (other_claim, 2)
    assert outbound.payload_encrypted and outbound.sent_at is None and not outbound.last_error
    issued.activation.refresh_from_db()
    assert issued.activation.email_status != Activation.EmailStatus.SENT
