import re
import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from keys import tokens
from keys.models import Activation, AuditEvent
from keys.services import issuance

LINK = re.compile(r"http://testserver/(nl|fr|de|en)/activeren/([A-Za-z0-9_-]+)/")


class FailingBackend:
    """A mail backend whose server is down."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise smtplib.SMTPConnectError(421, "Service not available")


FAILING_MAILERS = {"default": {"BACKEND": "tests.test_issuance.FailingBackend"}}


def test_issue_stores_only_hashes_and_mails_the_link(citizen, clerk):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    activation = Activation.objects.get()
    assert activation.state == Activation.State.ISSUED
    assert activation.email_status == Activation.EmailStatus.SENT
    assert activation.issued_by == clerk
    assert activation.office == citizen.office
    # the secrets are nowhere in the row
    row = " ".join(
        str(v) for v in Activation.objects.filter(pk=activation.pk).values().get().values()
    )
    assert issued.activation_code not in row
    token = LINK.search(issued.activation_link).group(2)
    assert token not in row
    assert activation.code_hash == tokens.hash_activation_code(issued.activation_code)
    assert activation.link_token_hash == tokens.hash_link_token(token)
    # 14 days
    assert abs((activation.expires_at - timezone.now()).total_seconds() - 14 * 86400) < 60


def test_activation_email_in_dutch(citizen, clerk):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "CSAM – Mijn digitale sleutels: activatie"
    assert message.to == ["jan.peeters@example.be"]
    assert "CSAM My Digital Keys" in message.from_email
    assert issued.activation_link in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "Uw digitale sleutels activeren" in html
    assert f'href="{issued.activation_link}"' in html
    assert issued.activation_code not in message.body
    assert issued.activation_code not in html
    assert issued.activation_link.startswith("http://testserver/nl/activeren/")


@pytest.mark.parametrize(
    ("language", "subject", "button"),
    [
        ("fr", "CSAM – Mes clés numériques : activation", "Activer vos clés numériques"),
        (
            "de",
            "CSAM – Meine digitalen Schlüssel: Aktivierung",
            "Ihre digitalen Schlüssel aktivieren",
        ),
        ("en", "CSAM – My digital keys: activation", "Activate your digital keys"),
    ],
)
def test_activation_email_in_the_citizens_language(citizen, clerk, language, subject, button):
    citizen.language = language
    citizen.save()
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    message = mail.outbox[0]
    assert message.subject == subject
    assert button in message.alternatives[0][0]
    assert f"/{language}/activeren/" in issued.activation_link


def test_reissue_supersedes_the_open_activation(citizen, clerk):
    first = issuance.issue_activation(citizen, issued_by=clerk)
    second = issuance.issue_activation(citizen, issued_by=clerk)
    old = Activation.objects.get(pk=first.activation.pk)
    assert old.state == Activation.State.SUPERSEDED
    assert old.superseded_by_id == second.activation.pk
    assert second.activation.state == Activation.State.ISSUED
    assert first.activation_code != second.activation_code
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions.count(AuditEvent.Action.ACTIVATION_ISSUED) == 2
    assert AuditEvent.Action.ACTIVATION_SUPERSEDED in actions


def test_revoke_closes_an_open_activation_once(citizen, clerk):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    assert issuance.revoke_activation(issued.activation, by=clerk)
    assert not issuance.revoke_activation(issued.activation, by=clerk)
    activation = Activation.objects.get()
    assert activation.state == Activation.State.REVOKED
    assert activation.closed_at is not None
    assert AuditEvent.objects.filter(action=AuditEvent.Action.ACTIVATION_REVOKED).count() == 1


def test_failed_email_is_recorded_not_hidden(citizen, clerk):
    with override_settings(MAILERS=FAILING_MAILERS):
        issued = issuance.issue_activation(citizen, issued_by=clerk)
    assert not issued.email_sent
    activation = Activation.objects.get()
    assert activation.email_status == Activation.EmailStatus.FAILED
    event = AuditEvent.objects.get(action=AuditEvent.Action.EMAIL_FAILED)
    assert event.detail == {"error": "SMTPConnectError", "attempt": 1, "gave_up": False}


def test_resend_gives_a_new_link_and_keeps_the_code(citizen, clerk):
    with override_settings(MAILERS=FAILING_MAILERS):
        issued = issuance.issue_activation(citizen, issued_by=clerk)
    old_hash = issued.activation.link_token_hash
    assert issuance.resend_activation_email(issued.activation, by=clerk)
    activation = Activation.objects.get()
    assert activation.email_status == Activation.EmailStatus.SENT
    assert activation.link_token_hash != old_hash
    assert activation.code_hash == tokens.hash_activation_code(issued.activation_code)
    new_token = LINK.search(mail.outbox[-1].body).group(2)
    assert activation.link_token_hash == tokens.hash_link_token(new_token)


def test_resend_refuses_a_closed_activation(citizen, clerk):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    issuance.revoke_activation(issued.activation, by=clerk)
    issued.activation.refresh_from_db()
    with pytest.raises(ValueError):
        issuance.resend_activation_email(issued.activation, by=clerk)


def test_effective_state_shows_expiry(citizen, clerk, time_machine):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    time_machine.move_to(timezone.now() + timedelta(days=14, seconds=-1))
    assert issued.activation.effective_state == Activation.State.ISSUED
    time_machine.move_to(timezone.now() + timedelta(seconds=2))
    assert issued.activation.effective_state == Activation.State.EXPIRED
    assert not Activation.objects.open().exists()
