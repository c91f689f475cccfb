"""The outbox's inline fast path: with the immediate task backend a message is inserted already
claimed and the attempt that ``deliver.enqueue`` runs at once takes that instance (no second
claim, no read-back); failures, retries, crashes and the database backend behave as before."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.forms.models import model_to_dict
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from keys import delivery, sms
from keys.conf import limits
from keys.models import OneTimeCode, OutboundMessage, User
from keys.services import activation as flow
from tests.test_delivery import DATABASE_TASKS
from tests.test_issuance import FAILING_MAILERS
from tests.test_ops import sample

Status = OutboundMessage.Status
LOCMEM_MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def notice() -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject="A notice", body="Something happened.", to=["jan@example.be"]
    )
    message.attach_alternative("<p>Something happened.</p>", "text/html")
    return message


@pytest.fixture
def code(citizen) -> OneTimeCode:
    user = User.objects.create_user("jan.peeters", "Correct-Horse-9x")
    citizen.account = user
    citizen.save()
    key = flow.enrol_key(user, "email", None)
    now = timezone.now()
    return OneTimeCode.objects.create(
        key=key, code_hash="x", created_at=now, expires_at=now + limits.OTP_TTL
    )


def same_as_row(outbound: OutboundMessage) -> None:
    """The instance handed back without a read-back says what the row says."""
    assert model_to_dict(outbound) == model_to_dict(OutboundMessage.objects.get(pk=outbound.pk))


def test_inline_delivery_is_one_insert_and_one_update(db, settings, django_assert_num_queries):
    """Before the fast path: INSERT, the claim (savepoint, SELECT ... FOR UPDATE, UPDATE,
    release), the outcome's UPDATE and a read-back; now the INSERT claims and one UPDATE ends."""
    settings.MAILERS = LOCMEM_MAILERS
    with django_assert_num_queries(2):
        outbound = delivery.queue_email(notice(), purpose="notice:test")
    assert outbound.status == Status.SENT
    assert len(mail.outbox) == 1


def test_inline_code_delivery_marks_the_code_delivered(code, django_assert_num_queries):
    with django_assert_num_queries(3):  # INSERT claimed, UPDATE sent, UPDATE code delivered
        outbound = delivery.queue_sms(
            "+32470123456", "Your code", purpose="registration_code", one_time_code=code
        )
    assert outbound.status == Status.SENT
    assert [m.body for m in sms.outbox] == ["Your code"]
    code.refresh_from_db()
    assert code.delivered


def test_status_after_queue_email_is_sent_without_a_read_back(db, settings, monkeypatch):
    settings.MAILERS = LOCMEM_MAILERS

    def no_read_back(*args, **kwargs):
        raise AssertionError("the inline path reads the row back")

    monkeypatch.setattr(OutboundMessage, "refresh_from_db", no_read_back)
    outbound = delivery.queue_email(notice(), purpose="notice:test")
    monkeypatch.undo()
    assert outbound.status == Status.SENT
    assert outbound.attempts == 1
    assert outbound.claimed_at is None
    assert outbound.sent_at is not None
    assert outbound.payload_encrypted == ""
    assert outbound.next_attempt_at is None
    same_as_row(outbound)
    assert delivery._handoff.get() is None  # nothing left behind for a later attempt
    assert delivery.attempt(outbound.pk) == "nothing to do"
    assert len(mail.outbox) == 1


def test_the_row_is_claimed_while_the_inline_attempt_sends(db, settings, monkeypatch):
    """Claimed in the INSERT: another attempt meanwhile (a retry_deliveries run, say) finds the
    message in flight and sends nothing."""
    settings.MAILERS = LOCMEM_MAILERS
    send, seen = delivery._send, []

    def watched(outbound, payload):
        row = OutboundMessage.objects.get(pk=outbound.pk)
        seen.append((row.status, row.attempts, row.claimed_at is not None))
        seen.append(delivery.attempt(outbound.pk))
        send(outbound, payload)

    monkeypatch.setattr(delivery, "_send", watched)
    outbound = delivery.queue_email(notice(), purpose="notice:test")
    assert seen == [(Status.SENDING, 1, True), "in flight"]
    assert outbound.status == Status.SENT
    assert len(mail.outbox) == 1


def test_an_inline_smtp_failure_is_retried_later_and_sent_once(db, settings, time_machine):
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    settings.MAILERS = FAILING_MAILERS
    outbound = delivery.queue_email(notice(), purpose="notice:test")
    assert outbound.status == Status.RETRYING
    assert outbound.attempts == 1
    assert outbound.last_error == "SMTPConnectError"
    assert outbound.next_attempt_at == start + timedelta(seconds=30)
    assert outbound.claimed_at is None
    assert outbound.payload_encrypted  # kept for the retry
    same_as_row(outbound)

    settings.MAILERS = LOCMEM_MAILERS
    time_machine.move_to(start + timedelta(seconds=31), tick=False)
    assert delivery.attempt(outbound.pk) == "sent"  # the ordinary claim path
    assert delivery.attempt(outbound.pk) == "nothing to do"
    assert delivery.retry_due() == 0
    assert len(mail.outbox) == 1
    outbound.refresh_from_db()
    assert outbound.status == Status.SENT
    assert outbound.attempts == 2


def test_a_crash_mid_send_leaves_a_claim_that_is_taken_back(
    db, settings, time_machine, monkeypatch
):
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    settings.MAILERS = LOCMEM_MAILERS

    def crash(outbound, payload):
        raise RuntimeError("killed mid-send")

    monkeypatch.setattr(delivery, "_send", crash)
    outbound = delivery.queue_email(notice(), purpose="notice:test")
    monkeypatch.undo()
    assert outbound.status == Status.SENDING  # read back: the attempt recorded nothing
    assert outbound.claimed_at == start
    assert delivery.retry_due() == 0
    time_machine.move_to(start + limits.DELIVERY_CLAIM_TIMEOUT + timedelta(seconds=1), tick=False)
    assert delivery.retry_due() == 1
    outbound.refresh_from_db()
    assert outbound.status == Status.SENT
    assert outbound.attempts == 2
    assert len(mail.outbox) == 1


def test_a_message_no_longer_useful_takes_the_ordinary_path(code, monkeypatch):
    OneTimeCode.objects.filter(pk=code.pk).update(consumed_at=timezone.now())
    code.refresh_from_db()
    outbound = delivery.queue_sms(
        "+32470123456", "Your code", purpose="registration_code", one_time_code=code
    )
    assert outbound.status == Status.CANCELLED
    assert outbound.attempts == 0
    assert not sms.outbox


def test_the_database_backend_still_inserts_pending(db, settings):
    settings.TASKS = DATABASE_TASKS
    settings.MAILERS = LOCMEM_MAILERS
    outbound = delivery.queue_email(notice(), purpose="notice:test")
    assert outbound.status == Status.PENDING
    assert outbound.attempts == 0
    assert outbound.claimed_at is None
    same_as_row(outbound)
    assert DBTaskResult.objects.filter(status="READY").count() == 1
    assert not mail.outbox
    assert delivery.attempt(outbound.pk) == "sent"  # what the worker does
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("fails", [False, True], ids=["sent", "retried"])
def test_inline_delivery_metrics_count_once(db, settings, fails):
    settings.MAILERS = FAILING_MAILERS if fails else LOCMEM_MAILERS
    outcomes = ("queued", "sent", "retried", "dead")
    before = {o: sample("csam_deliveries_total", channel="email", outcome=o) for o in outcomes}
    delivery.queue_email(notice(), purpose="notice:test")
    after = {o: sample("csam_deliveries_total", channel="email", outcome=o) for o in outcomes}
    assert {o: after[o] - before[o] for o in outcomes} == {
        "queued": 1,
        "sent": 0 if fails else 1,
        "retried": 1 if fails else 0,
        "dead": 0,
    }
