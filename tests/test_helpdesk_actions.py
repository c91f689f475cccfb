"""The helpdesk's actions: resend the activation e-mail, revoke an activation, block a digital
key, lift a sign-in lockout. Each is POSTed, confirmed, needs a reason typed by the agent, and
leaves an audit event with that reason; what the helpdesk still cannot do; clerks refused."""

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from keys import tokens
from keys.digital_keys import Outcome
from keys.models import Activation, AuditEvent, DigitalKey, User
from keys.services import activation as flow
from keys.services import issuance, signin
from tests.conftest import make_staff, staff_login
from tests.test_signin import PASSWORD, add_key, sign_in

Action = AuditEvent.Action
REASON = "Caller checked: date of birth and document number; phone stolen on Monday"


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def helpdesk_client(client, helpdesk):
    staff_login(client, helpdesk)
    return client


@pytest.fixture
def account(citizen, clerk, rf):
    """A citizen who finished the activation with the e-mail key (as in test_signin)."""
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    request = rf.post("/", REMOTE_ADDR="127.0.0.1")
    flow.redeem_activation_code(issued.activation.pk, issued.activation_code, request)
    user = flow.create_account(issued.activation, "jan.peeters", PASSWORD, request)
    key = flow.enrol_key(user, "email", issued.activation)
    DigitalKey.objects.filter(pk=key.pk).update(state="active", activated_at=timezone.now())
    Activation.objects.filter(pk=issued.activation.pk).update(
        state="completed", completed_at=timezone.now()
    )
    mail.outbox.clear()
    return user


@pytest.fixture
def issued(citizen, clerk):
    result = issuance.issue_activation(citizen, issued_by=clerk)
    mail.outbox.clear()
    return result


def confirm(client, url, reason=REASON, **extra):
    """The two POSTs: the confirmation page, then the action with the reason."""
    page = client.post(url)
    assert page.status_code == 200
    assert 'name="reason"' in page.content.decode()
    return client.post(url, {"confirm": "yes", "reason": reason, **extra})


def citizen_page(citizen):
    return reverse("helpdesk:citizen", args=[citizen.pk])


class TestResend:
    def url(self, issued):
        activation = issued.activation
        return reverse("helpdesk:resend", args=[activation.citizen_id, activation.pk])

    def test_sends_a_new_link_with_the_reason_in_the_audit(self, helpdesk_client, helpdesk, issued):
        old_hash = issued.activation.link_token_hash
        page = helpdesk_client.post(self.url(issued))
        assert "A new activation link goes to jan.peeters@example.be." in page.content.decode()
        assert not mail.outbox  # nothing yet: the first POST only asks
        response = helpdesk_client.post(self.url(issued), {"confirm": "yes", "reason": REASON})
        assert response.status_code == 302
        assert response["Location"] == citizen_page(issued.activation.citizen)
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == ["jan.peeters@example.be"]
        issued.activation.refresh_from_db()
        assert issued.activation.link_token_hash != old_hash
        assert tokens.check_activation_code(issued.activation_code, issued.activation.code_hash)
        event = AuditEvent.objects.get(action=Action.ACTIVATION_LINK_RENEWED)
        assert event.actor == helpdesk
        assert event.detail == {"reason": REASON, "via": "helpdesk"}
        followed = helpdesk_client.get(response["Location"])
        assert "was sent to jan.peeters@example.be" in followed.content.decode()

    def test_a_reason_is_required(self, helpdesk_client, issued):
        for reason in ["", "   ", "ok"]:
            response = helpdesk_client.post(self.url(issued), {"confirm": "yes", "reason": reason})
            assert response.status_code == 200
            assert "errorlist" in response.content.decode()
        assert not mail.outbox
        assert not AuditEvent.objects.filter(action=Action.ACTIVATION_LINK_RENEWED).exists()

    def test_a_closed_activation_is_not_resent(self, helpdesk_client, issued):
        issuance.revoke_activation(issued.activation, by=None)
        response = helpdesk_client.post(self.url(issued), {"confirm": "yes", "reason": REASON})
        assert response.status_code == 302
        assert not mail.outbox


class TestRevoke:
    def test_revokes_with_the_reason_and_keeps_the_office(
        self, helpdesk_client, helpdesk, issued, office
    ):
        activation = issued.activation
        url = reverse("helpdesk:revoke", args=[activation.citizen_id, activation.pk])
        response = confirm(helpdesk_client, url)
        assert response.status_code == 302
        activation.refresh_from_db()
        assert activation.state == Activation.State.REVOKED
        assert activation.citizen.office == office  # the helpdesk takes nothing over
        event = AuditEvent.objects.get(action=Action.ACTIVATION_REVOKED)
        assert event.actor == helpdesk
        assert event.detail["reason"] == REASON
        assert "office" not in event.detail

    def test_another_citizens_activation_is_not_found(
        self, helpdesk_client, issued, other_office, clerk
    ):
        from keys.models import Citizen

        stranger = Citizen.objects.create(
            first_name="Els",
            last_name="Maes",
            national_number="90010112395",
            email="els@example.be",
            id_document_type="passport",
            id_document_number="X1",
            office=other_office,
        )
        url = reverse("helpdesk:revoke", args=[stranger.pk, issued.activation.pk])
        assert helpdesk_client.post(url, {"confirm": "yes", "reason": REASON}).status_code == 404
        issued.activation.refresh_from_db()
        assert issued.activation.is_open


class TestBlockKey:
    def test_a_blocked_key_cannot_sign_in_and_the_citizen_is_told(
        self, helpdesk_client, helpdesk, citizen, account
    ):
        app = add_key(account, "totp")
        browser = Client()
        sign_in(browser, account, kind="email")
        assert browser.get("/nl/mijn-sleutels/").status_code == 200
        mail.outbox.clear()
        url = reverse("helpdesk:block", args=[citizen.pk, app.pk])
        page = helpdesk_client.post(url)
        assert "Every session of the citizen&#x27;s account ends." in page.content.decode()
        response = helpdesk_client.post(url, {"confirm": "yes", "reason": REASON})
        assert response.status_code == 302
        app.refresh_from_db()
        assert app.state == DigitalKey.State.BLOCKED
        event = AuditEvent.objects.get(action=Action.KEY_BLOCKED)
        assert event.actor == helpdesk
        assert event.citizen == citizen
        assert event.detail["reason"] == REASON
        assert event.detail["kind"] == "totp"
        # the citizen's sessions ended
        assert browser.get("/nl/mijn-sleutels/").status_code != 200
        # a security notice, in the citizen's language (Dutch)
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == ["jan.peeters@example.be"]
        assert "Mobiele app" in mail.outbox[0].body
        # the key is no longer offered nor accepted at sign-in
        response = browser.post("/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD})
        choice = browser.get(response["Location"]).content.decode()
        assert f'value="{app.pk}"' not in choice
        result = signin.check_key(_request(), account, app, "123456")
        assert result.outcome == Outcome.NO_CODE
        # "Mijn digitale sleutels" shows it as blocked
        sign_in(browser, account, kind="email")
        my_keys = browser.get("/nl/mijn-sleutels/").content.decode()
        assert "Geblokkeerd" in my_keys

    def test_with_its_only_key_blocked_the_citizen_cannot_sign_in(
        self, helpdesk_client, citizen, account
    ):
        key = account.digital_keys.get()
        url = reverse("helpdesk:block", args=[citizen.pk, key.pk])
        assert "only active key" in helpdesk_client.post(url).content.decode()
        confirm(helpdesk_client, url)
        response = Client().post(
            "/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD}
        )
        assert response.status_code == 200  # refused, as any wrong sign-in

    def test_a_key_that_is_not_active_cannot_be_blocked(self, helpdesk_client, citizen, account):
        key = account.digital_keys.get()
        DigitalKey.objects.filter(pk=key.pk).update(state="removed")
        url = reverse("helpdesk:block", args=[citizen.pk, key.pk])
        helpdesk_client.post(url, {"confirm": "yes", "reason": REASON})
        key.refresh_from_db()
        assert key.state == "removed"
        assert not AuditEvent.objects.filter(action=Action.KEY_BLOCKED).exists()


def _request():
    from django.test import RequestFactory

    return RequestFactory().post("/", REMOTE_ADDR="192.0.2.7")


class TestUnlock:
    def lock(self, username="jan.peeters"):
        browser = Client()
        for _ in range(5):
            browser.post("/nl/aanmelden/", {"username": username, "password": "wrong"})
        assert signin.lockout_remaining(username) == 15

    def test_lifts_the_lockout_with_the_reason(self, helpdesk_client, helpdesk, citizen, account):
        self.lock()
        mail.outbox.clear()
        response = confirm(helpdesk_client, reverse("helpdesk:unlock", args=[citizen.pk]))
        assert response.status_code == 302
        assert signin.lockout_remaining("jan.peeters") == 0
        event = AuditEvent.objects.get(action=Action.SIGNIN_UNLOCKED)
        assert event.actor == helpdesk
        assert event.citizen == citizen
        assert event.detail["reason"] == REASON
        assert event.detail["minutes_left"] == 15
        assert len(mail.outbox) == 1  # the citizen is told
        # the citizen signs in again at once
        response = Client().post(
            "/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD}
        )
        assert response["Location"] == "/nl/aanmelden/sleutel/"
        # and the count starts again: five new failures lock again
        self.lock()

    def test_a_paused_app_key_is_released_too(self, helpdesk_client, citizen, account):
        app = add_key(account, "totp")
        DigitalKey.objects.filter(pk=app.pk).update(
            failed_attempts=5, locked_until=timezone.now() + timezone.timedelta(minutes=10)
        )
        confirm(helpdesk_client, reverse("helpdesk:unlock", args=[citizen.pk]))
        app.refresh_from_db()
        assert app.failed_attempts == 0
        assert app.locked_until is None
        assert AuditEvent.objects.get(action=Action.SIGNIN_UNLOCKED).detail["paused_keys"] == [
            "totp"
        ]

    def test_nothing_to_unlock(self, helpdesk_client, citizen, account):
        response = confirm(helpdesk_client, reverse("helpdesk:unlock", args=[citizen.pk]))
        assert response.status_code == 302
        assert not AuditEvent.objects.filter(action=Action.SIGNIN_UNLOCKED).exists()
        assert "Nothing was done" in helpdesk_client.get(response["Location"]).content.decode()


class TestPermissions:
    @pytest.fixture
    def urls(self, citizen, account, issued):
        key = account.digital_keys.get()
        return [
            reverse("helpdesk:resend", args=[citizen.pk, issued.activation.pk]),
            reverse("helpdesk:revoke", args=[citizen.pk, issued.activation.pk]),
            reverse("helpdesk:block", args=[citizen.pk, key.pk]),
            reverse("helpdesk:unlock", args=[citizen.pk]),
        ]

    def test_clerks_are_refused(self, client, clerk, urls):
        staff_login(client, clerk)
        for url in urls:
            assert client.post(url, {"confirm": "yes", "reason": REASON}).status_code == 403
        assert not AuditEvent.objects.filter(
            action__in=[
                Action.ACTIVATION_LINK_RENEWED,
                Action.ACTIVATION_REVOKED,
                Action.KEY_BLOCKED,
                Action.SIGNIN_UNLOCKED,
            ]
        ).exists()

    def test_staff_without_a_group_are_refused(self, client, office, urls):
        staff_login(client, make_staff("staff.nogroup", None, office))
        for url in urls:
            assert client.post(url, {"confirm": "yes", "reason": REASON}).status_code == 403

    def test_post_only(self, helpdesk_client, urls):
        for url in urls:
            assert helpdesk_client.get(url).status_code == 405

    def test_csrf_is_checked(self, helpdesk, urls):
        browser = Client(enforce_csrf_checks=True)
        staff_login(browser, helpdesk)
        for url in urls:
            assert browser.post(url, {"confirm": "yes", "reason": REASON}).status_code == 403
        assert not AuditEvent.objects.filter(actor=helpdesk).exists()

    def test_without_the_block_permission(self, client, citizen, account, urls):
        agent = make_staff("helpdesk.trainee", "Helpdesk", None)
        from django.contrib.auth.models import Permission

        agent.user_permissions.clear()
        agent.groups.clear()
        agent.user_permissions.add(
            *Permission.objects.filter(
                codename__in=["use_helpdesk", "view_citizen", "view_all_offices"]
            )
        )
        agent = User.objects.get(pk=agent.pk)
        staff_login(client, agent)
        html = client.get(reverse("helpdesk:citizen", args=[citizen.pk])).content.decode()
        assert urls[2] not in html
        assert client.post(urls[2], {"confirm": "yes", "reason": REASON}).status_code == 403

    def test_the_helpdesk_still_cannot_register_issue_or_change(
        self, helpdesk_client, helpdesk, citizen, issued
    ):
        assert helpdesk_client.get(reverse("admin:keys_citizen_add")).status_code == 403
        change = reverse("admin:keys_citizen_change", args=[citizen.pk])
        helpdesk_client.post(change, {"first_name": "Changed", "last_name": "X"})
        citizen.refresh_from_db()
        assert citizen.first_name == "Jan"
        response = helpdesk_client.post(
            reverse("admin:keys_citizen_changelist"),
            {"action": "reissue_activation", "_selected_action": [citizen.pk]},
        )
        assert "Letter" not in response.content.decode()
        assert Activation.objects.count() == 1
        assert not helpdesk.has_perm("keys.issue_activation")
        page = helpdesk_client.get(reverse("helpdesk:citizen", args=[citizen.pk]))
        assert "Reissue" not in page.content.decode()
