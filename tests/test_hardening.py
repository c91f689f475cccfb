"""The holes a review of the key contract found (issue 9 §2–§3), each pinned by a test."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from keys import crypto, sms
from keys.conf import limits
from keys.digital_keys import Outcome, get_kind
from keys.models import Activation, AuditEvent, DigitalKey, OneTimeCode, OutboundMessage, User
from keys.services import activation as flow
from keys.services import issuance, selfservice
from tests.test_signin import PASSWORD, add_key, code_for, sign_in
from tests.test_signin import account as account
from tests.wizard_helpers import last_email_code, open_link, post_step, step_url

Action = AuditEvent.Action


@pytest.fixture
def issued(citizen, clerk):
    result = issuance.issue_activation(citizen, issued_by=clerk)
    mail.outbox.clear()
    return result


def to_email_verify(client, issued) -> None:
    open_link(client, issued.activation_link)
    post_step(client, "code", {"activation_code": issued.formatted_code})
    post_step(client, "key", {"kind": "email", "accept_terms": "on"})
    response = post_step(
        client,
        "account",
        {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    assert response["Location"] == step_url("verify")


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


class TestCancelAsksForANewCode:
    """Seed: "Indien u geen e-mail ontvangt, druk op 'Annuleren' en vraag een nieuwe code aan."""

    def test_choosing_email_again_after_cancel_sends_a_fresh_code(
        self, client, issued, time_machine
    ):
        time_machine.move_to(timezone.now(), tick=False)
        to_email_verify(client, issued)
        first = last_email_code()
        assert len(mail.outbox) == 1
        post_step(client, "verify", {"wizard_goto_step": "key"})
        time_machine.shift(timedelta(seconds=61))
        response = post_step(client, "key", {"kind": "email", "accept_terms": "on"}, follow=True)
        assert response.redirect_chain[-1][0] == step_url("verify")
        assert len(mail.outbox) == 2
        second = last_email_code()
        assert "Er is een nieuwe code onderweg." in page_messages(response)
        if first != second:
            response = post_step(client, "verify", {"code": first})
            assert response.status_code == 200  # the old code died with the new one
        response = post_step(client, "verify", {"code": second})
        assert response["Location"] == step_url("activated")

    def test_within_the_cooldown_it_says_how_long_to_wait_then_sends(
        self, client, issued, time_machine
    ):
        time_machine.move_to(timezone.now(), tick=False)
        to_email_verify(client, issued)
        post_step(client, "verify", {"wizard_goto_step": "key"})
        time_machine.shift(timedelta(seconds=20))
        response = post_step(client, "key", {"kind": "email", "accept_terms": "on"}, follow=True)
        assert len(mail.outbox) == 1
        assert any("40 seconden" in m for m in page_messages(response)), page_messages(response)
        time_machine.shift(timedelta(seconds=41))
        post_step(client, "verify", {"wizard_goto_step": "key"})
        post_step(client, "key", {"kind": "email", "accept_terms": "on"})
        assert len(mail.outbox) == 2


class TestCompletedActivation:
    def complete(self, client, issued):
        to_email_verify(client, issued)
        response = post_step(client, "verify", {"code": last_email_code()})
        assert response["Location"] == step_url("activated")
        assert Activation.objects.get(pk=issued.activation.pk).state == "completed"

    def test_its_paper_code_is_dead(self, client, issued, rf):
        self.complete(client, issued)
        result = flow.redeem_activation_code(
            issued.activation.pk, issued.activation_code, rf.post("/")
        )
        assert result.outcome == flow.CodeOutcome.CLOSED

    def test_a_session_bound_before_completion_cannot_add_keys(self, client, issued):
        other = Client()
        open_link(other, issued.activation_link)
        post_step(other, "code", {"activation_code": issued.formatted_code})
        self.complete(client, issued)
        # A POST straight away is refused (the page says the activation is completed) ...
        response = post_step(
            other, "key", {"kind": "sms", "phone": "0470123456", "accept_terms": "on"}
        )
        assert response.status_code == 410
        assert response.context["status"] == "completed"
        # ... and the session is no longer bound to the activation at all.
        assert other.get(step_url("key")).status_code == 403
        assert not DigitalKey.objects.filter(kind="sms").exists()

    def test_the_completing_session_may_add_another_key_then_is_signed_out(self, client, issued):
        self.complete(client, issued)
        response = post_step(client, "activated", {"next_action": "another"})
        assert response["Location"] == step_url("key")
        response = post_step(client, "key", {"kind": "totp", "accept_terms": "on"})
        assert response["Location"] == step_url("verify")
        key = DigitalKey.objects.get(kind="totp")
        secret = crypto.decrypt(key.secret_encrypted)
        response = post_step(client, "verify", {"code": pyotp.TOTP(secret).now()})
        assert response["Location"] == step_url("activated")
        post_step(client, "activated", {"next_action": "done"})
        assert client.get(step_url("key")).status_code == 403
        assert client.get("/nl/mijn-sleutels/")["Location"] == "/nl/aanmelden/"

    def test_its_link_is_dead(self, client, issued):
        self.complete(client, issued)
        assert (
            Client().get(issued.activation_link.replace("http://testserver", "")).status_code == 410
        )


class TestAppCodesAreThrottled:
    def test_wrong_app_codes_count_and_pause_the_key(self, account, time_machine):
        time_machine.move_to(timezone.now(), tick=False)
        key = add_key(account, "totp")
        DigitalKey.objects.filter(pk=key.pk).update(state="pending")
        implementation = get_kind("totp")
        right = code_for(key)
        wrong = next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" != right)
        totp = pyotp.TOTP(crypto.decrypt(key.secret_encrypted))
        window = {totp.at(timezone.now().timestamp() + 30 * i) for i in (-1, 0, 1)}
        wrong = next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in window)
        outcomes = [implementation.verify(key, wrong) for _ in range(limits.OTP_MAX_ATTEMPTS)]
        assert [r.remaining_attempts for r in outcomes] == [4, 3, 2, 1, 0]
        assert outcomes[-1].outcome == Outcome.LOCKED
        assert implementation.verify(key, right).outcome == Outcome.LOCKED
        time_machine.shift(limits.TOTP_LOCKOUT + timedelta(seconds=31))
        assert implementation.verify(key, code_for(key)).ok

    def test_the_pause_is_said_in_the_wizard(self, client, issued, time_machine):
        time_machine.move_to(timezone.now(), tick=False)
        open_link(client, issued.activation_link)
        post_step(client, "code", {"activation_code": issued.formatted_code})
        post_step(client, "key", {"kind": "totp", "accept_terms": "on"})
        post_step(
            client,
            "account",
            {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
        )
        key = DigitalKey.objects.get(kind="totp")
        totp = pyotp.TOTP(crypto.decrypt(key.secret_encrypted))
        window = {totp.at(timezone.now().timestamp() + 30 * i) for i in (-1, 0, 1)}
        wrong = next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in window)
        for _ in range(limits.OTP_MAX_ATTEMPTS):
            response = post_step(client, "verify", {"code": wrong})
        response = post_step(client, "verify", {"code": totp.now()})
        assert response.status_code == 200
        assert "15 minuten" in response.content.decode()

    def test_totp_form_takes_the_totp_length(self, client, issued, settings):
        settings.CSAM = {"TOTP_DIGITS": 8}
        open_link(client, issued.activation_link)
        post_step(client, "code", {"activation_code": issued.formatted_code})
        post_step(client, "key", {"kind": "totp", "accept_terms": "on"})
        post_step(
            client,
            "account",
            {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
        )
        key = DigitalKey.objects.get(kind="totp")
        code = pyotp.TOTP(crypto.decrypt(key.secret_encrypted), digits=8).now()
        response = post_step(client, "verify", {"code": code})
        assert response["Location"] == step_url("activated")


class TestPhoneChange:
    def test_the_old_number_survives_a_new_key_that_is_no_longer_pending(
        self,
        account,
        rf,
    ):
        old = add_key(account, "sms")
        pending = selfservice.start_phone_change(account, "+32476112233")
        assert get_kind("sms").send_challenge(pending).sent
        code = code_for(pending)
        # Between the check of the code and the switch, the new key was dropped elsewhere.
        DigitalKey.objects.filter(pk=pending.pk).update(state="removed")
        result = selfservice.confirm_phone_change(rf.post("/"), account, pending, code)
        assert not result.ok
        old.refresh_from_db()
        assert old.state == "active"

    def test_changing_the_number_needs_the_password(self, client, account):
        add_key(account, "sms")
        sign_in(client, account)
        response = client.post("/nl/mijn-sleutels/gsm-nummer/", {"phone": "0476 11 22 33"})
        assert response.status_code == 200
        assert "current_password" in response.context["form"].errors
        response = client.post(
            "/nl/mijn-sleutels/gsm-nummer/",
            {"phone": "0476 11 22 33", "current_password": "wrong"},
        )
        assert response.status_code == 200
        assert not DigitalKey.objects.filter(state="pending", kind="sms").exists()
        assert not [m for m in sms.outbox if m.to == "+32476112233"]


class TestAddKeyInSelfService:
    def test_adding_a_key_needs_the_password(self, client, account):
        sign_in(client, account)
        response = client.post(
            "/nl/mijn-sleutels/toevoegen/", {"kind": "totp", "accept_terms": "on"}
        )
        assert response.status_code == 200
        assert "current_password" in response.context["form"].errors
        assert not DigitalKey.objects.filter(kind="totp").exists()

    def test_resend_on_the_add_key_page_is_rate_limited(self, client, account, settings):
        sign_in(client, account)
        client.post(
            "/nl/mijn-sleutels/toevoegen/",
            {
                "kind": "sms",
                "phone": "0470123456",
                "accept_terms": "on",
                "current_password": PASSWORD,
            },
        )
        maximum = limits.RATE_LIMITS["resend:ip"][0]
        statuses = [
            client.post("/nl/mijn-sleutels/toevoegen/code/", {"resend": "1"}).status_code
            for _ in range(maximum + 1)
        ]
        # "resend:key" counted the first code too: the 429 comes at the latest after the
        # per-address maximum, and no code is sent for the refused request.
        assert statuses[0] == 302
        assert statuses[-1] == 429


class TestSignIn:
    def test_a_key_removed_between_the_steps_is_no_500(self, client, account):
        response = client.post("/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD})
        assert response["Location"] == "/nl/aanmelden/sleutel/"
        account.digital_keys.update(state="removed")
        response = client.get("/nl/aanmelden/sleutel/")
        assert response.status_code == 302
        assert response["Location"] == "/nl/aanmelden/"

    def test_active_keys_are_listed_before_removed_ones(self, client, account):
        sms_key = add_key(account, "sms")
        totp_key = add_key(account, "totp")
        DigitalKey.objects.filter(pk=sms_key.pk).update(state="removed", removed_at=timezone.now())
        sign_in(client, account)
        states = [
            key.state for key, _kind, _target in client.get("/nl/mijn-sleutels/").context["keys"]
        ]
        assert states == ["active", "active", "removed"]
        assert totp_key.pk in [k.pk for k, *_ in client.get("/nl/mijn-sleutels/").context["keys"]]

    def test_session_version_is_bumped_atomically(self, account, rf):
        first = User.objects.get(pk=account.pk)
        second = User.objects.get(pk=account.pk)  # a stale copy, as a parallel request holds
        request = rf.post("/")
        selfservice.sign_out_everywhere(request, first)
        selfservice.sign_out_everywhere(request, second)
        account.refresh_from_db()
        assert account.session_version == 2

    def test_rotating_the_secret_key_does_not_reannounce_known_browsers(
        self,
        client,
        account,
        settings,
    ):
        def notices():
            return OutboundMessage.objects.filter(purpose="notice:new_browser").count()

        sign_in(client, account)
        assert notices() == 1
        client.post("/nl/afmelden/")
        settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
        settings.SECRET_KEY = "a-brand-new-secret-key-" + "x" * 40
        sign_in(client, account)
        assert notices() == 1


def test_resending_the_activation_email_checks_the_state_under_lock(issued, clerk):
    stale = Activation.objects.get(pk=issued.activation.pk)  # loaded while open
    Activation.objects.filter(pk=stale.pk).update(state=Activation.State.COMPLETED)
    before = Activation.objects.get(pk=stale.pk).link_token_hash
    with pytest.raises(ValueError):
        issuance.resend_activation_email(stale, by=clerk)
    assert Activation.objects.get(pk=stale.pk).link_token_hash == before
    assert not mail.outbox


def test_rotation_re_encrypts_queued_messages(issued, settings):
    from cryptography.fernet import Fernet

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    issuance.resend_activation_email(issued.activation, by=None)
    queued = OutboundMessage.objects.get(purpose="activation_link", status="pending")
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    queued.refresh_from_db()
    payload = crypto.decrypt(queued.payload_encrypted)
    assert "jan.peeters@example.be" in payload


def test_the_language_redirect_carries_the_security_headers(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in response
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_newer_code_voids_every_older_one_at_once(account, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    key = flow.enrol_key(account, "email", None)
    kind = get_kind("email")
    for _ in range(3):
        assert kind.send_challenge(key).sent
        time_machine.shift(timedelta(seconds=61))
    assert OneTimeCode.objects.filter(key=key, consumed_at__isnull=True).count() == 1
