"""The citizen's wizard, step by step, with its error paths and the known traps."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from keys import sms
from keys.models import Activation, AuditEvent, DigitalKey, User
from keys.services import issuance
from tests.test_issuance import FAILING_MAILERS
from tests.wizard_helpers import (
    last_email_code,
    last_sms_code,
    open_link,
    post_step,
    secret_from_page,
    step_url,
    totp_code,
)

PASSWORD = "Correct-Horse-9x"
Action = AuditEvent.Action


@pytest.fixture
def issued(citizen, clerk):
    result = issuance.issue_activation(citizen, issued_by=clerk)
    mail.outbox.clear()
    return result


@pytest.fixture
def at_code(client, issued):
    response = open_link(client, issued.activation_link)
    assert response.status_code == 302
    return issued


@pytest.fixture
def at_key(client, at_code):
    response = post_step(client, "code", {"activation_code": at_code.formatted_code})
    assert response["Location"] == step_url("key")
    return at_code


@pytest.fixture
def at_account(client, at_key):
    response = post_step(client, "key", {"kind": "email", "accept_terms": "on"})
    assert response["Location"] == step_url("account")
    return at_key


@pytest.fixture
def at_verify_email(client, at_account):
    response = post_step(
        client,
        "account",
        {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    assert response["Location"] == step_url("verify")
    return at_account


def form_error_codes(response, field):
    form = response.context["form"]
    return [error.code for error in form.errors.as_data().get(field, [])]


def activation(issued_activation) -> Activation:
    return Activation.objects.get(pk=issued_activation.activation.pk)


class TestLink:
    def test_valid_link_binds_a_fresh_session_and_drops_the_token(self, client, issued):
        client.get("/nl/")
        before = client.session.session_key
        response = open_link(client, issued.activation_link)
        assert response.status_code == 302
        assert response["Location"] == step_url("code")
        assert client.session.session_key != before
        assert activation(issued).state == Activation.State.OPENED
        assert AuditEvent.objects.filter(action=Action.LINK_OPENED).exists()
        assert response["Cache-Control"].count("no-store") == 1

    def test_language_of_the_link_is_kept(self, client, issued):
        response = client.get(
            issued.activation_link.replace("/nl/", "/fr/").replace("http://testserver", "")
        )
        assert response["Location"] == step_url("code", "fr")

    def test_unknown_link(self, client, db):
        response = client.get("/nl/activeren/not-a-real-token/")
        assert response.status_code == 404
        assert b"02 740 79 91" in response.content
        assert response.templates[0].name == "keys/link_error.html"

    def test_expired_link(self, client, issued, time_machine):
        time_machine.move_to(timezone.now() + timedelta(days=14, seconds=1))
        response = open_link(client, issued.activation_link)
        assert response.status_code == 410
        assert response.context["status"] == "expired"
        assert activation(issued).state == Activation.State.EXPIRED
        assert AuditEvent.objects.filter(action=Action.ACTIVATION_EXPIRED).count() == 1

    def test_link_valid_until_the_last_second(self, client, issued, time_machine):
        time_machine.move_to(timezone.now() + timedelta(days=14, seconds=-5))
        assert open_link(client, issued.activation_link).status_code == 302

    @pytest.mark.parametrize(
        ("state", "status", "http"),
        [
            (Activation.State.LOCKED, "locked", 403),
            (Activation.State.REVOKED, "revoked", 410),
            (Activation.State.SUPERSEDED, "superseded", 410),
            (Activation.State.COMPLETED, "completed", 410),
        ],
    )
    def test_closed_links_say_why(self, client, issued, state, status, http):
        Activation.objects.filter(pk=issued.activation.pk).update(state=state)
        response = open_link(client, issued.activation_link)
        assert response.status_code == http
        assert response.context["status"] == status
        assert AuditEvent.objects.filter(action=Action.LINK_REFUSED).exists()

    def test_resent_link_replaces_the_old_one(self, client, issued, clerk):
        issuance.resend_activation_email(issued.activation, by=clerk)
        assert open_link(client, issued.activation_link).status_code == 404

    def test_wizard_refuses_to_run_without_a_bound_activation(self, client, db):
        for step in ["code", "key", "account", "verify", "activated"]:
            response = client.get(step_url(step))
            assert response.status_code == 403
            assert response.templates[0].name == "keys/no_activation.html"

    def test_a_revoked_activation_stops_the_running_wizard(self, client, at_code, clerk):
        issuance.revoke_activation(at_code.activation, by=clerk)
        response = client.get(step_url("code"))
        assert response.status_code == 410
        assert response.context["status"] == "revoked"


class TestActivationCode:
    def test_code_step_shows_the_seed_fields(self, client, at_code):
        response = client.get(step_url("code"))
        html = response.content.decode()
        assert 'name="code-activation_code"' in html
        assert 'aria-current="step"' in html
        assert response.context["stage_number"] == 1

    @pytest.mark.parametrize(
        "transform", [str.lower, lambda c: c.replace("-", ""), lambda c: f" {c} "]
    )
    def test_code_is_forgiving_about_case_spaces_and_dashes(self, client, at_code, transform):
        response = post_step(client, "code", {"activation_code": transform(at_code.formatted_code)})
        assert response["Location"] == step_url("key")
        assert activation(at_code).state == Activation.State.CODE_VERIFIED

    def test_malformed_code_is_explained_and_not_counted(self, client, at_code):
        response = post_step(client, "code", {"activation_code": "ABC"})
        assert response.status_code == 200
        assert form_error_codes(response, "activation_code") == ["format"]
        assert activation(at_code).failed_code_attempts == 0

    def test_wrong_code_counts_and_fifth_locks(self, client, at_code):
        wrong = "ZZZZZ-ZZZZZ" if at_code.formatted_code != "ZZZZZ-ZZZZZ" else "YYYYY-YYYYY"
        for attempt in range(1, 5):
            response = post_step(client, "code", {"activation_code": wrong})
            assert form_error_codes(response, "activation_code") == ["wrong"]
            assert response.context["form"].errors["activation_code"]
            assert activation(at_code).failed_code_attempts == attempt
        # the last allowed try still works with the right code
        response = post_step(client, "code", {"activation_code": at_code.formatted_code})
        assert response["Location"] == step_url("key")

    def test_fifth_wrong_code_locks_the_activation(self, client, at_code):
        for _ in range(4):
            post_step(client, "code", {"activation_code": "ZZZZZ-ZZZZY"})
        response = post_step(client, "code", {"activation_code": "ZZZZZ-ZZZZY"})
        assert form_error_codes(response, "activation_code") == ["locked"]
        assert activation(at_code).state == Activation.State.LOCKED
        assert AuditEvent.objects.filter(action=Action.ACTIVATION_LOCKED).count() == 1
        # even the right code is refused now, and the link says why
        response = post_step(client, "code", {"activation_code": at_code.formatted_code})
        assert response.status_code == 403
        assert open_link(client, at_code.activation_link).status_code == 403

    def test_error_summary_and_field_are_tied(self, client, at_code):
        response = post_step(client, "code", {"activation_code": "ZZZZZ-ZZZZY"})
        html = response.content.decode()
        assert 'class="error-summary"' in html
        assert 'href="#id_code-activation_code"' in html
        assert (
            'aria-describedby="id_code-activation_code_helptext id_code-activation_code_error"'
            in html
        )
        assert 'aria-invalid="true"' in html

    def test_back_to_the_code_step_after_success_needs_no_code(self, client, at_key):
        response = client.get(step_url("code"))
        assert response.context["code_verified"]
        response = post_step(client, "code", {})
        assert response["Location"] == step_url("key")


class TestSkippingSteps:
    @pytest.mark.parametrize("step", ["key", "account", "verify", "activated", "done", "nonsense"])
    def test_get_of_a_later_step_goes_back(self, client, at_code, step):
        response = client.get(step_url(step))
        assert response["Location"] == step_url("code")

    def test_forged_goto_step(self, client, at_code):
        response = client.post(
            step_url("code"),
            {"activation_wizard-current_step": "code", "wizard_goto_step": "verify"},
        )
        assert response["Location"] == step_url("code")

    def test_forged_current_step(self, client, at_code):
        response = client.post(
            step_url("key"),
            {
                "activation_wizard-current_step": "key",
                "key-kind": "email",
                "key-accept_terms": "on",
            },
        )
        assert response["Location"] == step_url("code")
        assert client.session["csam_wizard"]["kind"] == ""

    def test_current_step_that_disagrees_with_the_url(self, client, at_key):
        response = client.post(
            step_url("key"),
            {"activation_wizard-current_step": "account", "account-username": "x"},
        )
        assert response["Location"] == step_url("key")
        assert not User.objects.filter(username="x").exists()

    def test_missing_management_form(self, client, at_code):
        response = client.post(step_url("code"), {"code-activation_code": at_code.formatted_code})
        assert response.status_code == 302
        assert activation(at_code).state == Activation.State.OPENED


class TestKeyChoice:
    def test_terms_must_be_accepted(self, client, at_key):
        response = post_step(client, "key", {"kind": "email"})
        assert form_error_codes(response, "accept_terms") == ["required"]

    def test_a_key_must_be_chosen(self, client, at_key):
        response = post_step(client, "key", {"accept_terms": "on"})
        assert form_error_codes(response, "kind") == ["required"]

    def test_unknown_kind(self, client, at_key):
        response = post_step(client, "key", {"kind": "smoke-signal", "accept_terms": "on"})
        assert form_error_codes(response, "kind") == ["invalid_choice"]

    def test_sms_is_prefilled_with_the_recorded_number(self, client, at_key):
        html = client.get(step_url("key")).content.decode()
        assert 'value="+32 470 12 34 56"' in html

    @pytest.mark.parametrize(
        ("phone", "code"), [("", None), ("123", "invalid_phone"), ("02 740 79 91", "not_mobile")]
    )
    def test_sms_needs_a_valid_mobile_number(self, client, at_key, phone, code):
        response = post_step(client, "key", {"kind": "sms", "phone": phone, "accept_terms": "on"})
        assert response.status_code == 200
        assert response.context["form"].errors["phone"]
        if code:
            assert form_error_codes(response, "phone") == [code]

    def test_terms_version_and_time_are_recorded(self, client, at_account):
        record = activation(at_account)
        assert record.terms_version == "4.2"
        assert record.terms_accepted_at is not None
        assert AuditEvent.objects.filter(action=Action.TERMS_ACCEPTED).exists()


class TestAccount:
    def test_account_is_created_with_an_argon2_hash_and_the_password_is_not_kept(
        self, client, at_account, citizen
    ):
        response = post_step(
            client,
            "account",
            {"username": "Jan.Peeters", "password": PASSWORD, "password_confirm": PASSWORD},
        )
        assert response["Location"] == step_url("verify")
        citizen.refresh_from_db()
        user = citizen.account
        assert user.username == "Jan.Peeters"
        assert user.password.startswith("argon2$argon2id$")
        assert "m=65536,t=3,p=2" in user.password
        assert user.check_password(PASSWORD)
        for session in Session.objects.all():
            assert PASSWORD not in str(session.get_decoded())
            assert PASSWORD not in session.session_data

    @pytest.mark.parametrize(
        ("username", "code"),
        [
            ("jan", "min_length"),
            ("jan peeters", "invalid"),
            ("JAN.PEETERS.TAKEN", "taken"),
            ("ｊａｎ.peeters.taken", "taken"),
        ],
    )
    def test_username_rules(self, client, at_account, username, code):
        User.objects.create_user("jan.peeters.taken", "Other-Pass-1!")
        response = post_step(
            client,
            "account",
            {"username": username, "password": PASSWORD, "password_confirm": PASSWORD},
        )
        assert form_error_codes(response, "username") == [code]

    @pytest.mark.parametrize(
        ("password", "confirm", "field", "code"),
        [
            (PASSWORD, PASSWORD + "x", "password_confirm", None),
            ("short1!", "short1!", "password", "password_too_short"),
            ("alllowercase-1", "alllowercase-1", "password", "password_composition"),
            ("Peeters-Jan-1", "Peeters-Jan-1", "password", "password_too_similar"),
            ("A1!" + "a" * 126, "A1!" + "a" * 126, "password", "password_too_long"),
        ],
    )
    def test_password_rules(self, client, at_account, password, confirm, field, code):
        response = post_step(
            client,
            "account",
            {"username": "jan.peeters", "password": password, "password_confirm": confirm},
        )
        assert response.context["form"].errors[field]
        if code:
            assert code in form_error_codes(response, field)
        assert not User.objects.filter(username="jan.peeters").exists()

    @override_settings(
        PASSWORD_POLICY="nist",
        AUTH_PASSWORD_VALIDATORS=[
            {
                "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
                "OPTIONS": {"min_length": 8},
            },
        ],
    )
    def test_nist_policy_drops_composition(self, client, at_account):
        response = post_step(
            client,
            "account",
            {
                "username": "jan.peeters",
                "password": "lowercase only words",
                "password_confirm": "lowercase only words",
            },
        )
        assert response["Location"] == step_url("verify")

    def test_double_submit_creates_one_account(self, client, at_account, citizen):
        data = {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD}
        first = post_step(client, "account", data)
        second = post_step(client, "account", data)
        assert first["Location"] == step_url("verify")
        assert second["Location"] == step_url("verify")
        assert User.objects.filter(username="jan.peeters").count() == 1
        assert AuditEvent.objects.filter(action=Action.ACCOUNT_CREATED).count() == 1
        assert (
            len(
                [
                    m
                    for m in mail.outbox
                    if "registratiecode" in m.subject.lower()
                    or "registration code" in m.subject.lower()
                ]
            )
            == 1
        )

    def test_back_skips_the_account_step_once_made(self, client, at_verify_email):
        response = client.get(step_url("account"))
        assert response["Location"] == step_url("verify")


class TestEmailKey:
    def test_one_code_is_mailed_and_a_reload_sends_no_other(self, client, at_verify_email):
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == ["jan.peeters@example.be"]
        assert "CSAM My Digital Keys" in message.from_email
        for _ in range(3):
            response = client.get(step_url("verify"))
            assert response.status_code == 200
        assert len(mail.outbox) == 1
        assert response.context["stage_number"] == 3
        html = response.content.decode()
        assert 'autocomplete="one-time-code"' in html
        assert 'inputmode="numeric"' in html

    def test_right_code_activates_and_confirms_by_mail(self, client, at_verify_email, citizen):
        response = post_step(client, "verify", {"code": last_email_code()})
        assert response["Location"] == step_url("activated")
        citizen.refresh_from_db()
        key = DigitalKey.objects.get(user=citizen.account)
        assert key.kind == "email"
        assert key.state == DigitalKey.State.ACTIVE
        assert key.email == "jan.peeters@example.be"
        assert activation(at_verify_email).state == Activation.State.COMPLETED
        assert len(mail.outbox) == 2
        assert "activated" in mail.outbox[1].subject or "geactiveerd" in mail.outbox[1].subject

    def test_double_submit_of_the_right_code(self, client, at_verify_email):
        code = last_email_code()
        assert post_step(client, "verify", {"code": code})["Location"] == step_url("activated")
        assert post_step(client, "verify", {"code": code})["Location"] == step_url("activated")
        assert DigitalKey.objects.filter(state=DigitalKey.State.ACTIVE).count() == 1
        assert AuditEvent.objects.filter(action=Action.KEY_ACTIVATED).count() == 1

    def test_wrong_codes_then_exhausted(self, client, at_verify_email):
        right = last_email_code()
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        for remaining in [4, 3, 2, 1]:
            response = post_step(client, "verify", {"code": wrong})
            assert form_error_codes(response, "code") == ["wrong"]
            assert f"{remaining}" in str(response.context["form"].errors["code"])
        response = post_step(client, "verify", {"code": wrong})
        assert form_error_codes(response, "code") == ["exhausted"]
        response = post_step(client, "verify", {"code": right})
        assert form_error_codes(response, "code") == ["exhausted"]
        assert AuditEvent.objects.filter(action=Action.KEY_CODE_REJECTED).count() == 6

    def test_the_fifth_try_may_still_be_right(self, client, at_verify_email):
        right = last_email_code()
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        for _ in range(4):
            post_step(client, "verify", {"code": wrong})
        assert post_step(client, "verify", {"code": right})["Location"] == step_url("activated")

    def test_code_expires_after_ten_minutes(self, client, at_verify_email, time_machine):
        code = last_email_code()
        time_machine.move_to(timezone.now() + timedelta(minutes=10, seconds=1))
        response = post_step(client, "verify", {"code": code})
        assert form_error_codes(response, "code") == ["expired"]

    def test_code_still_valid_just_before_ten_minutes(self, client, at_verify_email, time_machine):
        code = last_email_code()
        time_machine.move_to(timezone.now() + timedelta(minutes=9, seconds=55))
        assert post_step(client, "verify", {"code": code})["Location"] == step_url("activated")

    @pytest.mark.parametrize("typed", ["12345", "1234567", "abcdef", "١٢٣٤٥٦"])
    def test_malformed_codes_are_not_counted(self, client, at_verify_email, typed):
        response = post_step(client, "verify", {"code": typed})
        assert form_error_codes(response, "code") == ["format"]
        assert not AuditEvent.objects.filter(action=Action.KEY_CODE_REJECTED).exists()

    def test_resend_cooldown_and_hourly_cap(self, client, at_verify_email, time_machine):
        from keys.models import OneTimeCode

        start = OneTimeCode.objects.get().created_at
        time_machine.move_to(start + timedelta(seconds=59), tick=False)
        post_step(client, "verify", {"resend": "1"})
        assert len(mail.outbox) == 1  # refused: the last second of the 60 s cooldown
        for minute in range(1, 5):
            time_machine.move_to(start + timedelta(minutes=minute), tick=False)
            post_step(client, "verify", {"resend": "1"})
            assert len(mail.outbox) == 1 + minute  # the first second after the cooldown
        time_machine.move_to(start + timedelta(minutes=10), tick=False)
        post_step(client, "verify", {"resend": "1"})
        assert len(mail.outbox) == 5  # the hourly cap: 5 codes an hour
        assert AuditEvent.objects.filter(action=Action.CHALLENGE_REFUSED).count() == 2

    def test_only_the_newest_code_counts(self, client, at_verify_email, time_machine):
        old = last_email_code()
        time_machine.move_to(timezone.now() + timedelta(seconds=61))
        post_step(client, "verify", {"resend": "1"})
        new = last_email_code()
        if old != new:
            response = post_step(client, "verify", {"code": old})
            assert form_error_codes(response, "code") == ["wrong"]
        assert post_step(client, "verify", {"code": new})["Location"] == step_url("activated")

    def test_cancel_goes_back_to_the_key_choice_and_keeps_the_account(
        self, client, at_verify_email, citizen
    ):
        response = post_step(client, "verify", {"wizard_goto_step": "key"})
        assert response["Location"] == step_url("key")
        response = post_step(client, "key", {"kind": "totp", "accept_terms": "on"})
        assert response["Location"] == step_url("verify")  # no account step again
        citizen.refresh_from_db()
        assert citizen.account is not None

    def test_failing_mail_is_never_a_500(self, client, at_account):
        with override_settings(MAILERS=FAILING_MAILERS):
            response = post_step(
                client,
                "account",
                {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
            )
            assert response["Location"] == step_url("verify")
            page = client.get(step_url("verify"))
        assert page.status_code == 200
        assert page.context["delivery_failed"]
        assert AuditEvent.objects.filter(action=Action.CHALLENGE_FAILED).exists()


class TestSmsKey:
    def test_sms_flow(self, client, at_key, citizen, settings):
        response = post_step(
            client, "key", {"kind": "sms", "phone": "0475 99 88 77", "accept_terms": "on"}
        )
        assert response["Location"] == step_url("account")
        post_step(
            client,
            "account",
            {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
        )
        assert len(sms.outbox) == 1
        assert sms.outbox[0].to == "+32475998877"
        html = client.get(step_url("verify")).content.decode()
        assert "+32 475" in html and "77" in html
        assert post_step(client, "verify", {"code": last_sms_code()})["Location"] == step_url(
            "activated"
        )
        key = DigitalKey.objects.get()
        assert (key.kind, key.phone, key.state) == ("sms", "+32475998877", "active")

    def test_changing_the_number_voids_the_old_code(self, client, at_key, time_machine):
        post_step(client, "key", {"kind": "sms", "phone": "0475 99 88 77", "accept_terms": "on"})
        post_step(
            client,
            "account",
            {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
        )
        old = last_sms_code()
        time_machine.move_to(timezone.now() + timedelta(seconds=61))
        post_step(client, "verify", {"wizard_goto_step": "key"})
        post_step(client, "key", {"kind": "sms", "phone": "0476 11 22 33", "accept_terms": "on"})
        assert sms.outbox[-1].to == "+32476112233"
        if old != last_sms_code():
            response = post_step(client, "verify", {"code": old})
            assert form_error_codes(response, "code") == ["wrong"]

    def test_failing_gateway_is_never_a_500(self, client, at_key, settings):
        settings.SMS_BACKEND = "http"
        settings.SMS_GATEWAY_URL = "http://127.0.0.1:9/unreachable"
        settings.SMS_GATEWAY_TIMEOUT = 1
        post_step(client, "key", {"kind": "sms", "phone": "0475 99 88 77", "accept_terms": "on"})
        response = post_step(
            client,
            "account",
            {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
        )
        page = client.get(response["Location"])
        assert page.status_code == 200
        assert page.context["delivery_failed"]


class TestAppKey:
    def choose_app(self, client):
        post_step(client, "key", {"kind": "totp", "accept_terms": "on"})
        post_step(
            client,
            "account",
            {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
        )
        return client.get(step_url("verify"))

    def test_secret_is_made_once_and_shown_three_ways(self, client, at_key):
        first = self.choose_app(client).content.decode()
        second = client.get(step_url("verify")).content.decode()
        secret = secret_from_page(first)
        assert secret == secret_from_page(second)
        assert len(secret.replace(" ", "")) == 32
        assert "<svg" in first
        assert "otpauth://totp/CSAM:jan.peeters?secret=" in first.replace("%3A", ":")
        assert "issuer=CSAM" in first
        assert "Google Authenticator" in first
        key = DigitalKey.objects.get()
        assert secret.replace(" ", "") not in key.secret_encrypted
        assert not mail.outbox

    def test_app_code_activates(self, client, at_key):
        secret = secret_from_page(self.choose_app(client).content.decode())
        response = post_step(client, "verify", {"code": totp_code(secret)})
        assert response["Location"] == step_url("activated")
        assert DigitalKey.objects.get().state == DigitalKey.State.ACTIVE

    def test_wrong_app_code(self, client, at_key):
        secret = secret_from_page(self.choose_app(client).content.decode())
        wrong = f"{(int(totp_code(secret)) + 1) % 1_000_000:06d}"
        wrong_too = {totp_code(secret, -1), totp_code(secret, 1)}
        if wrong not in wrong_too:
            response = post_step(client, "verify", {"code": wrong})
            assert form_error_codes(response, "code") == ["wrong"]


class TestAnotherKeyAndDone:
    def test_two_keys_in_one_visit_then_signed_out(self, client, at_verify_email, citizen):
        post_step(client, "verify", {"code": last_email_code()})
        response = client.get(step_url("activated"))
        assert response.context["can_add_another"]
        response = post_step(client, "activated", {"next_action": "another"})
        assert response["Location"] == step_url("key")
        html = client.get(step_url("key")).content.decode()
        assert 'value="email"' not in html
        post_step(client, "key", {"kind": "sms", "phone": "+32 470 12 34 56", "accept_terms": "on"})
        assert post_step(client, "verify", {"code": last_sms_code()})["Location"] == step_url(
            "activated"
        )
        response = post_step(client, "activated", {"next_action": "done"})
        assert response["Location"] == "/nl/afgemeld/"
        page = client.get("/nl/afgemeld/")
        assert [k.kind for k in page.context["kinds"]] == ["email", "sms"]
        assert page.context["kind"].kind == "sms"
        # signed out: the wizard is gone
        assert client.get(step_url("key")).status_code == 403
        citizen.refresh_from_db()
        assert sorted(
            citizen.account.digital_keys.filter(state="active").values_list("kind", flat=True)
        ) == ["email", "sms"]

    def test_done_page_without_a_finished_visit(self, client, db):
        assert client.get("/nl/afgemeld/")["Location"] == "/nl/"


class TestIdleSession:
    def test_idle_session_ends_with_a_clear_page_and_keeps_progress(
        self, client, at_verify_email, citizen, time_machine
    ):
        time_machine.move_to(timezone.now() + timedelta(minutes=30, seconds=5))
        response = client.get(step_url("verify"))
        assert response.status_code == 403
        assert response.templates[0].name == "keys/session_expired.html"
        assert client.get(step_url("verify")).templates[0].name == "keys/no_activation.html"
        # open the link again: code again, no account step, the chosen key can be finished
        assert open_link(client, at_verify_email.activation_link)["Location"] == step_url("code")
        post_step(client, "code", {"activation_code": at_verify_email.formatted_code})
        response = post_step(client, "key", {"kind": "email", "accept_terms": "on"})
        assert response["Location"] == step_url("verify")
        citizen.refresh_from_db()
        assert citizen.account.username == "jan.peeters"
        assert User.objects.filter(citizen=citizen).count() == 1

    def test_activity_within_thirty_minutes_keeps_the_session(self, client, at_key, time_machine):
        for _ in range(3):
            time_machine.move_to(timezone.now() + timedelta(minutes=29))
            assert client.get(step_url("key")).status_code == 200


class TestNoSecretsInTheSession:
    def test_full_visit_leaves_no_secret_in_session_or_database(
        self, client, at_verify_email, citizen
    ):
        code = last_email_code()
        post_step(client, "verify", {"code": code})
        session_dump = " ".join(
            s.session_data + str(s.get_decoded()) for s in Session.objects.all()
        )
        token = at_verify_email.activation_link.rstrip("/").rsplit("/", 1)[1]
        for secret in [
            PASSWORD,
            at_verify_email.activation_code,
            at_verify_email.formatted_code,
            token,
            code,
        ]:
            assert secret not in session_dump
        audit_dump = str(list(AuditEvent.objects.values()))
        for secret in [PASSWORD, at_verify_email.activation_code, token, code]:
            assert secret not in audit_dump


class TestErrorReports:
    def test_a_crash_report_shows_no_password_or_code(self, client, at_account, monkeypatch):
        import sys

        from django.core.signals import got_request_exception
        from django.views.debug import ExceptionReporter

        captured = {}

        def boom(*args, **kwargs):
            raise RuntimeError("database went away")

        def keep(sender, request, **kwargs):
            captured["request"] = request
            captured["exc_info"] = sys.exc_info()

        monkeypatch.setattr("keys.services.activation.create_account", boom)
        got_request_exception.connect(keep)
        client.raise_request_exception = False
        try:
            response = post_step(
                client,
                "account",
                {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
            )
        finally:
            got_request_exception.disconnect(keep)
        assert response.status_code == 500
        report = ExceptionReporter(captured["request"], *captured["exc_info"]).get_traceback_text()
        assert "database went away" in report
        assert PASSWORD not in report
        assert "account-password" in report  # the parameter is listed, its value hidden


class TestRowsGoneUnderTheSession:
    """The wizard reads its activation and its key with ``get()``: a row deleted meanwhile (a
    helpdesk purge, a cancelled enrolment) is a clear page or a fresh key, never a 500."""

    def test_activation_deleted_mid_wizard_gives_the_unknown_link_page(self, client, at_key):
        Activation.objects.filter(pk=at_key.activation.pk).delete()
        response = client.get(step_url("key"))
        assert response.status_code == 404
        assert "keys/link_error.html" in [t.name for t in response.templates]
        assert client.session.get("csam_wizard") is None

    def test_enrolled_key_deleted_mid_wizard_is_enrolled_again(self, client, at_verify_email):
        key_id = client.session["csam_wizard"]["key_id"]
        DigitalKey.objects.filter(pk=key_id).delete()
        response = client.get(step_url("verify"))
        assert response.status_code == 200
        new_id = client.session["csam_wizard"]["key_id"]
        assert new_id and new_id != key_id
        assert DigitalKey.objects.get(pk=new_id).state == DigitalKey.State.PENDING


class TestCompletedByAnotherRequest:
    """The verify step signs the session in when the activation is completed: by this request
    (no read-back needed) or by a concurrent one of the same browser (read again)."""

    def test_completed_by_this_request_signs_in_without_reading_the_activation_again(
        self, client, at_verify_email, django_assert_max_num_queries
    ):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            response = post_step(client, "verify", {"code": last_email_code()})
        assert response["Location"] == step_url("activated")
        assert int(client.session["_auth_user_id"]) == User.objects.get(username="jan.peeters").pk
        reads = [q["sql"] for q in queries if q["sql"].startswith('SELECT "keys_activation"')]
        assert len(reads) == 1  # the wizard's own read at the start of the request

    def test_completed_meanwhile_by_a_concurrent_request_still_signs_in(
        self, client, at_verify_email, monkeypatch
    ):
        from keys.services import activation as flow

        original = flow.confirm_key
        key_id = client.session["csam_wizard"]["key_id"]

        def raced(key, code, request, **kwargs):
            # The other tab's request wins the race after this one read the rows.
            now = timezone.now()
            DigitalKey.objects.filter(pk=key_id).update(state="active", activated_at=now)
            Activation.objects.filter(pk=at_verify_email.activation.pk).update(
                state="completed", completed_at=now
            )
            return original(key, code, request, **kwargs)

        monkeypatch.setattr(flow, "confirm_key", raced)
        response = post_step(client, "verify", {"code": last_email_code()})
        assert response["Location"] == step_url("activated")
        assert int(client.session["_auth_user_id"]) == User.objects.get(username="jan.peeters").pk
        assert client.get(step_url("activated")).status_code == 200


class TestManagementForm:
    """The page carries the management form's hidden input(s) alone, as ``{{ management_form }}``
    wrote them (p.html with an error list around them, issue 10)."""

    @pytest.mark.parametrize("fixture", ["at_code", "at_key", "at_account"])
    def test_the_hidden_input_as_the_form_wrote_it(self, client, request, fixture):
        from formtools.wizard.forms import ManagementForm

        request.getfixturevalue(fixture)
        step = {"at_code": "code", "at_key": "key", "at_account": "account"}[fixture]
        page = client.get(step_url(step))
        whole = ManagementForm(prefix="activation_wizard", initial={"current_step": step})
        html = page.content.decode()
        assert str(whole) == (
            f'<input type="hidden" name="activation_wizard-current_step" value="{step}"'
            ' id="id_activation_wizard-current_step">'
        )
        assert html.count(str(whole)) == 1
        assert html.count("activation_wizard-") == 2  # its name and its id, nothing else
