"""Registration clerks and the helpdesk, through the admin."""

import re

import pytest
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from keys import tokens
from keys.models import Activation, AuditEvent, Citizen
from keys.services import issuance
from tests.conftest import VALID_NATIONAL_NUMBER, staff_login
from tests.test_issuance import FAILING_MAILERS

ADD_URL = reverse("admin:keys_citizen_add")
CITIZENS_URL = reverse("admin:keys_citizen_changelist")
ACTIVATIONS_URL = reverse("admin:keys_activation_changelist")
CODE = re.compile(r'<p class="code">([0-9A-Z]{5}-[0-9A-Z]{5})</p>')


def registration(**overrides):
    data = {
        "first_name": "Marie",
        "last_name": "Dubois",
        "national_number": "90.01.01-123.95",
        "email": "Marie.Dubois@Example.be",
        "phone": "0470 12 34 56",
        "language": "fr",
        "id_document_type": "passport",
        "id_document_number": "EM 123456",
    }
    data.update(overrides)
    return data


@pytest.fixture
def client(client):
    """Staff read the admin in English in these tests (it follows the browser's language)."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def clerk_client(client, clerk):
    staff_login(client, clerk)
    return client


@pytest.fixture
def helpdesk_client(client, helpdesk):
    staff_login(client, helpdesk)
    return client


class TestRegistration:
    def test_register_issues_and_shows_the_code_once(self, clerk_client, clerk):
        response = clerk_client.post(ADD_URL, registration())
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        html = response.content.decode()
        code = CODE.search(html).group(1)
        citizen = Citizen.objects.get()
        assert citizen.national_number == "90010112395"
        assert citizen.email == "marie.dubois@example.be"
        assert citizen.phone == "+32470123456"
        assert citizen.office == clerk.office
        assert citizen.registered_by == clerk
        assert str(citizen.birth_date) == "1990-01-01"
        activation = Activation.objects.get()
        assert tokens.check_activation_code(code, activation.code_hash)
        assert code.replace("-", "") not in str(Activation.objects.values().get())
        # the letter is in the citizen's language (French)
        assert "Votre code d'activation" in html
        # the mail went out, in French, with the link and without the code
        assert len(mail.outbox) == 1
        assert "activation" in mail.outbox[0].subject
        assert code not in mail.outbox[0].body
        # the code cannot be displayed again: no admin page shows it
        for url in [
            reverse("admin:keys_citizen_change", args=[citizen.pk]),
            reverse("admin:keys_activation_change", args=[activation.pk]),
            CITIZENS_URL,
            ACTIVATIONS_URL,
        ]:
            page = clerk_client.get(url).content.decode()
            assert code not in page
            assert code.replace("-", "") not in page
            assert activation.code_hash not in page
            assert activation.link_token_hash not in page
        actions = set(AuditEvent.objects.values_list("action", flat=True))
        assert {
            AuditEvent.Action.CITIZEN_REGISTERED,
            AuditEvent.Action.ACTIVATION_ISSUED,
            AuditEvent.Action.EMAIL_SENT,
            AuditEvent.Action.LETTER_SHOWN,
        } <= actions
        event = AuditEvent.objects.get(action=AuditEvent.Action.CITIZEN_REGISTERED)
        assert event.actor == clerk
        assert event.ip_address == "127.0.0.1"

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("national_number", "90.01.01-123.96", "check digits do not match"),
            ("national_number", "1234", "11 digits"),
            ("email", "marie.dubois@", "Enter a valid email address"),
            ("phone", "12345", "mobile number"),
            ("phone", "+32 2 740 79 91", "not a mobile number"),
            ("first_name", "", "This field is required"),
        ],
    )
    def test_bad_input_gets_a_clear_message_and_saves_nothing(
        self, clerk_client, field, value, message
    ):
        with override_settings(LANGUAGE_CODE="en"):
            response = clerk_client.post(
                ADD_URL, registration(**{field: value}), HTTP_ACCEPT_LANGUAGE="en"
            )
        assert response.status_code == 200
        assert message in response.content.decode()
        assert not Citizen.objects.exists()
        assert not Activation.objects.exists()
        assert not mail.outbox

    def test_too_young(self, clerk_client):
        from datetime import date

        from tests.test_validators import check_digits

        year = date.today().year - 2000 - 11  # eleven years old this year
        first_nine = f"{year:02d}0101123"
        number = first_nine + check_digits(first_nine, born_2000s=True)
        response = clerk_client.post(ADD_URL, registration(national_number=number))
        assert "age of 12" in response.content.decode()
        assert not Citizen.objects.exists()

    def test_duplicate_with_an_open_activation(self, clerk_client, citizen, clerk):
        issuance.issue_activation(citizen, issued_by=clerk)
        mail.outbox.clear()
        response = clerk_client.post(ADD_URL, registration(national_number=VALID_NATIONAL_NUMBER))
        html = response.content.decode()
        assert "already has an open activation" in html
        assert Citizen.objects.count() == 1
        assert Activation.objects.count() == 1
        assert not mail.outbox

    def test_duplicate_without_open_activation(self, clerk_client, citizen):
        response = clerk_client.post(ADD_URL, registration(national_number=VALID_NATIONAL_NUMBER))
        assert "already registered" in response.content.decode()
        assert Citizen.objects.count() == 1

    def test_email_failure_is_said_and_resend_offered(self, clerk_client):
        with override_settings(MAILERS=FAILING_MAILERS):
            response = clerk_client.post(ADD_URL, registration(), follow=False)
        html = response.content.decode()
        assert "could NOT be sent" in html
        activation = Activation.objects.get()
        assert activation.email_status == Activation.EmailStatus.FAILED
        # the record says so too
        page = clerk_client.get(reverse("admin:keys_citizen_change", args=[activation.citizen_id]))
        assert "Sending failed" in page.content.decode()
        # resend from the record
        response = clerk_client.post(
            reverse("admin:keys_citizen_change", args=[activation.citizen_id]),
            {
                "CHANGE_FORM-action": "resend_activation_email",
                "_selected_action": activation.citizen_id,
            },
            follow=True,
        )
        assert "was sent to marie.dubois@example.be" in response.content.decode()
        activation.refresh_from_db()
        assert activation.email_status == Activation.EmailStatus.SENT
        assert len(mail.outbox) == 1


class TestReissueAndRevoke:
    def test_reissue_from_the_list_prints_a_new_letter(self, clerk_client, citizen, clerk):
        first = issuance.issue_activation(citizen, issued_by=clerk)
        response = clerk_client.post(
            CITIZENS_URL, {"action": "reissue_activation", "_selected_action": [citizen.pk]}
        )
        code = CODE.search(response.content.decode()).group(1)
        assert code != first.formatted_code
        first.activation.refresh_from_db()
        assert first.activation.state == Activation.State.SUPERSEDED
        new = Activation.objects.get(state=Activation.State.ISSUED)
        assert tokens.check_activation_code(code, new.code_hash)

    def test_reissue_unlocks_a_locked_activation(self, clerk_client, citizen, clerk):
        first = issuance.issue_activation(citizen, issued_by=clerk)
        Activation.objects.filter(pk=first.activation.pk).update(state=Activation.State.LOCKED)
        clerk_client.post(
            reverse("admin:keys_citizen_change", args=[citizen.pk]),
            {"CHANGE_FORM-action": "reissue_activation", "_selected_action": citizen.pk},
        )
        assert Activation.objects.get(pk=first.activation.pk).state == Activation.State.LOCKED
        assert Activation.objects.open().count() == 1

    def test_revoke_asks_for_confirmation(self, clerk_client, citizen, clerk):
        issued = issuance.issue_activation(citizen, issued_by=clerk)
        data = {"action": "revoke_activation", "_selected_action": [citizen.pk]}
        response = clerk_client.post(CITIZENS_URL, data)
        assert "Yes, revoke" in response.content.decode()
        issued.activation.refresh_from_db()
        assert issued.activation.state == Activation.State.ISSUED
        response = clerk_client.post(CITIZENS_URL, {**data, "post": "yes"}, follow=True)
        issued.activation.refresh_from_db()
        assert issued.activation.state == Activation.State.REVOKED
        assert AuditEvent.objects.filter(action=AuditEvent.Action.ACTIVATION_REVOKED).exists()


class TestClerkPermissions:
    def test_clerk_sees_only_their_office(self, client, citizen, clerk, other_clerk):
        issuance.issue_activation(citizen, issued_by=clerk)
        staff_login(client, other_clerk)
        assert "Peeters" not in client.get(CITIZENS_URL).content.decode()
        assert (
            client.get(reverse("admin:keys_citizen_change", args=[citizen.pk])).status_code == 302
        )
        assert "Peeters" not in client.get(ACTIVATIONS_URL).content.decode()
        staff_login(client, clerk)
        assert "Peeters" in client.get(CITIZENS_URL).content.decode()

    def test_clerk_registers_into_their_own_office_only(self, clerk_client, clerk, other_office):
        response = clerk_client.post(ADD_URL, registration(office=other_office.pk))
        assert response.status_code == 200
        assert Citizen.objects.get().office == clerk.office

    def test_clerk_cannot_manage_accounts_or_offices(self, clerk_client):
        assert clerk_client.get(reverse("admin:keys_user_changelist")).status_code == 403
        assert (
            clerk_client.get(reverse("admin:keys_registrationoffice_changelist")).status_code == 403
        )


class TestHelpdesk:
    def test_sees_every_office_and_searches(self, helpdesk_client, citizen, clerk, other_clerk):
        issuance.issue_activation(citizen, issued_by=clerk)
        for term in ["Peeters", "85.07.30-033.28", "85073003328", "jan.peeters@example.be"]:
            page = helpdesk_client.get(CITIZENS_URL, {"q": term}).content.decode()
            assert "Peeters" in page, term
            page = helpdesk_client.get(ACTIVATIONS_URL, {"q": term}).content.decode()
            assert "Peeters" in page, term

    def test_search_by_username(self, helpdesk_client, citizen, clerk, django_user_model):
        citizen.account = django_user_model.objects.create_user("jan.peeters", "Xx-123456789")
        citizen.save()
        page = helpdesk_client.get(CITIZENS_URL, {"q": "jan.peeters"}).content.decode()
        assert "Peeters" in page

    def test_filters_by_state_including_expiry(
        self, helpdesk_client, helpdesk, citizen, clerk, time_machine
    ):
        from datetime import timedelta

        from django.utils import timezone

        issuance.issue_activation(citizen, issued_by=clerk)
        assert (
            "Peeters" in helpdesk_client.get(ACTIVATIONS_URL, {"state": "issued"}).content.decode()
        )
        time_machine.move_to(timezone.now() + timedelta(days=15))
        staff_login(helpdesk_client, helpdesk)
        assert (
            "Peeters"
            not in helpdesk_client.get(ACTIVATIONS_URL, {"state": "issued"}).content.decode()
        )
        assert (
            "Peeters" in helpdesk_client.get(ACTIVATIONS_URL, {"state": "expired"}).content.decode()
        )

    def test_reads_the_audit_timeline(self, helpdesk_client, citizen, clerk):
        issued = issuance.issue_activation(citizen, issued_by=clerk)
        page = helpdesk_client.get(
            reverse("admin:keys_activation_change", args=[issued.activation.pk])
        ).content.decode()
        assert "Activation issued" in page
        assert "Activation e-mail sent" in page
        assert helpdesk_client.get(reverse("admin:keys_auditevent_changelist")).status_code == 200

    def test_cannot_register_change_or_reissue(self, helpdesk_client, citizen, clerk):
        issuance.issue_activation(citizen, issued_by=clerk)
        assert helpdesk_client.get(ADD_URL).status_code == 403
        response = helpdesk_client.post(
            reverse("admin:keys_citizen_change", args=[citizen.pk]),
            registration(national_number=VALID_NATIONAL_NUMBER, email="evil@example.be"),
        )
        assert response.status_code == 403
        citizen.refresh_from_db()
        assert citizen.email == "jan.peeters@example.be"
        # reissuing is not among the helpdesk's actions: it would mint a code
        response = helpdesk_client.post(
            CITIZENS_URL, {"action": "reissue_activation", "_selected_action": [citizen.pk]}
        )
        assert Activation.objects.count() == 1
        assert 'class="code"' not in response.content.decode()

    def test_never_sees_secrets_or_password_hashes(
        self, helpdesk_client, citizen, clerk, django_user_model
    ):
        issued = issuance.issue_activation(citizen, issued_by=clerk)
        account = django_user_model.objects.create_user("jan.peeters", "Xx-123456789")
        citizen.account = account
        citizen.save()
        activation = issued.activation
        pages = [
            CITIZENS_URL,
            ACTIVATIONS_URL,
            reverse("admin:keys_citizen_change", args=[citizen.pk]),
            reverse("admin:keys_activation_change", args=[activation.pk]),
            reverse("admin:keys_auditevent_changelist"),
        ]
        for url in pages:
            page = helpdesk_client.get(url).content.decode()
            for secret in [
                activation.code_hash,
                activation.link_token_hash,
                account.password,
                issued.activation_code,
            ]:
                assert secret not in page, url
        assert (
            helpdesk_client.get(reverse("admin:keys_user_change", args=[account.pk])).status_code
            == 403
        )

    def test_can_resend_and_revoke(self, helpdesk_client, citizen, clerk):
        issued = issuance.issue_activation(citizen, issued_by=clerk)
        url = reverse("admin:keys_activation_change", args=[issued.activation.pk])
        helpdesk_client.post(
            url,
            {
                "CHANGE_FORM-action": "resend_activation_email",
                "_selected_action": issued.activation.pk,
            },
        )
        assert len(mail.outbox) == 2
        helpdesk_client.post(
            url,
            {
                "CHANGE_FORM-action": "revoke_activation",
                "_selected_action": issued.activation.pk,
                "post": "yes",
            },
        )
        issued.activation.refresh_from_db()
        assert issued.activation.state == Activation.State.REVOKED
