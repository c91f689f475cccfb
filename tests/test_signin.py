"""Signing in with an activated key, and managing the keys yourself."""

import re
from datetime import timedelta

import pyotp
import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from keys import crypto, sms
from keys.models import AuditEvent, DigitalKey, KnownBrowser, OutboundMessage, User
from keys.services import activation as flow
from keys.services import issuance
from tests.wizard_helpers import open_link, post_step, step_url

PASSWORD = "Correct-Horse-9x"
NEW_PASSWORD = "Another-Horse-7y"
Action = AuditEvent.Action


@pytest.fixture
def account(citizen, clerk, rf):
    """A citizen who finished the activation with the e-mail key."""
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    request = rf.post("/", REMOTE_ADDR="127.0.0.1")
    flow.redeem_activation_code(issued.activation.pk, issued.activation_code, request)
    user = flow.create_account(issued.activation, "jan.peeters", PASSWORD, request)
    key = flow.enrol_key(user, "email", issued.activation)
    DigitalKey.objects.filter(pk=key.pk).update(state="active", activated_at=timezone.now())
    mail.outbox.clear()
    return user


def add_key(user, kind):
    key = flow.enrol_key(user, kind, None, phone="+32470123456")
    DigitalKey.objects.filter(pk=key.pk).update(state="active", activated_at=timezone.now())
    key.refresh_from_db()
    return key


def code_for(key) -> str:
    if key.kind == "totp":
        return pyotp.TOTP(crypto.decrypt(key.secret_encrypted)).now()
    text = sms.outbox[-1].body if key.kind == "sms" else mail.outbox[-1].body
    return re.search(r"\b(\d{6})\b", text).group(1)


def sign_in(client, user, kind="email", password=PASSWORD):
    response = client.post("/nl/aanmelden/", {"username": user.username, "password": password})
    assert response["Location"] == "/nl/aanmelden/sleutel/", response.content[:300]
    key = user.digital_keys.get(kind=kind, state="active")
    client.post("/nl/aanmelden/sleutel/", {"key": str(key.pk)})
    return client.post("/nl/aanmelden/code/", {"code": code_for(key)})


def errors_of(response):
    return [str(e) for e in response.context["form"].non_field_errors()]


@pytest.mark.parametrize("kind", ["email", "sms", "totp"])
def test_sign_in_with_each_kind_of_key(client, account, kind):
    if kind != "email":
        add_key(account, kind)
    client.get("/nl/aanmelden/")
    before = client.session.session_key
    response = sign_in(client, account, kind)
    assert response["Location"] == "/nl/mijn-sleutels/"
    assert client.session.session_key != before
    page = client.get("/nl/mijn-sleutels/")
    assert page.status_code == 200
    assert "jan.peeters" in page.content.decode()
    assert AuditEvent.objects.filter(action=Action.SIGNIN_SUCCEEDED, actor=account).exists()
    key = account.digital_keys.get(kind=kind)
    assert key.last_used_at is not None


def test_a_new_browser_is_announced_once(client, account):
    def notices():
        return OutboundMessage.objects.filter(purpose="notice:new_browser").count()

    sign_in(client, account)
    assert notices() == 1
    seen = KnownBrowser.objects.get(user=account).last_seen
    client.post("/nl/afmelden/")
    sign_in(client, account)  # same browser: its cookie is known
    assert notices() == 1
    assert KnownBrowser.objects.get(user=account).last_seen > seen
    other = Client()
    sign_in(other, account)
    assert notices() == 2
    assert KnownBrowser.objects.filter(user=account).count() == 2


def test_a_known_browser_costs_one_update(client, account, rf):
    """The usual sign-in, from a browser seen before: one prepared UPDATE of its row, no
    locked read (issue 10's benchmark: about 0.5 ms of CPU a sign-in)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from keys.services import signin

    sign_in(client, account)
    request = rf.post("/nl/aanmelden/code/")
    request.COOKIES[signin.BROWSER_COOKIE] = client.cookies[signin.BROWSER_COOKIE].value
    before = KnownBrowser.objects.get(user=account).last_seen
    with CaptureQueriesContext(connection) as queries:
        browser_id, new = signin.remember_browser(request, account)
    assert new is False and browser_id
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]
    assert KnownBrowser.objects.get(user=account).last_seen > before


def test_wrong_password_and_unknown_user_look_the_same(client, account):
    wrong = client.post("/nl/aanmelden/", {"username": "jan.peeters", "password": "nope"})
    unknown = client.post("/nl/aanmelden/", {"username": "nobody.here", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 200
    assert errors_of(wrong) == errors_of(unknown)
    assert AuditEvent.objects.filter(action=Action.SIGNIN_FAILED).count() == 2


def test_lockout_after_five_failures_for_15_minutes(client, account, time_machine):
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    for _ in range(4):
        client.post("/nl/aanmelden/", {"username": "jan.peeters", "password": "nope"})
    # the fifth failure locks; even the right password is refused then
    response = client.post("/nl/aanmelden/", {"username": "Jan.Peeters", "password": "nope"})
    assert "15" in errors_of(response)[0]
    response = client.post("/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD})
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action=Action.SIGNIN_LOCKED).exists()
    time_machine.move_to(start + timedelta(minutes=14, seconds=59), tick=False)
    assert (
        client.post("/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD}).status_code
        == 200
    )
    time_machine.move_to(start + timedelta(minutes=15, seconds=1), tick=False)
    response = client.post("/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD})
    assert response["Location"] == "/nl/aanmelden/sleutel/"


def test_four_failures_still_allow_the_right_password(client, account):
    for _ in range(4):
        client.post("/nl/aanmelden/", {"username": "jan.peeters", "password": "nope"})
    response = client.post("/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD})
    assert response["Location"] == "/nl/aanmelden/sleutel/"


def test_unknown_usernames_lock_too(client, db):
    for _ in range(5):
        response = client.post("/nl/aanmelden/", {"username": "ghost.user", "password": "nope"})
    assert "15" in errors_of(response)[0]


def test_wrong_key_codes_count_as_failures(client, account):
    client.post("/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD})
    key = account.digital_keys.get()
    client.post("/nl/aanmelden/sleutel/", {"key": str(key.pk)})
    right = code_for(key)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        response = client.post("/nl/aanmelden/code/", {"code": wrong})
        assert response.status_code == 200
    response = client.post("/nl/aanmelden/code/", {"code": right})
    assert response.status_code == 200  # locked
    assert client.get("/nl/mijn-sleutels/").status_code != 200


def test_staff_and_keyless_accounts_cannot_sign_in_here(client, account, clerk):
    response = client.post(
        "/nl/aanmelden/", {"username": clerk.username, "password": "Staff-password-1!"}
    )
    assert response.status_code == 200
    DigitalKey.objects.update(state="removed")
    response = client.post("/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD})
    assert response.status_code == 200


def test_pages_need_a_signed_in_citizen(client, db):
    for url in [
        "/nl/mijn-sleutels/",
        "/nl/mijn-sleutels/wachtwoord/",
        "/nl/mijn-sleutels/toevoegen/",
    ]:
        assert client.get(url)["Location"] == "/nl/aanmelden/"
    assert client.get("/nl/aanmelden/code/")["Location"] == "/nl/aanmelden/"


def test_idle_timeout_of_15_minutes(client, account, time_machine):
    sign_in(client, account)
    time_machine.move_to(timezone.now() + timedelta(minutes=14))
    assert client.get("/nl/mijn-sleutels/").status_code == 200
    time_machine.move_to(timezone.now() + timedelta(minutes=15, seconds=5))
    response = client.get("/nl/mijn-sleutels/")
    assert response.status_code == 403
    assert response.templates[0].name == "keys/account/session_ended.html"
    assert client.get("/nl/mijn-sleutels/")["Location"] == "/nl/aanmelden/"


def test_sign_out_everywhere(client, account):
    other = Client()
    sign_in(client, account)
    sign_in(other, account)
    assert other.get("/nl/mijn-sleutels/").status_code == 200
    client.post("/nl/afmelden/overal/")
    assert other.get("/nl/mijn-sleutels/")["Location"] == "/nl/aanmelden/"
    assert client.get("/nl/mijn-sleutels/")["Location"] == "/nl/aanmelden/"
    assert AuditEvent.objects.filter(action=Action.SIGNED_OUT_EVERYWHERE).exists()


def test_sign_in_is_rate_limited_per_ip(client, db, settings, time_machine):
    time_machine.move_to(timezone.now(), tick=False)  # all in one window
    from keys.conf import DEFAULTS

    settings.CSAM = {
        "RATE_LIMITS": {**DEFAULTS["RATE_LIMITS"], "signin:ip": (2, timedelta(minutes=10))}
    }
    for _ in range(2):
        client.post("/nl/aanmelden/", {"username": f"x{_}.user", "password": "nope"})
    assert (
        client.post("/nl/aanmelden/", {"username": "y.user", "password": "nope"}).status_code == 429
    )


class TestSelfService:
    @pytest.fixture
    def signed_in(self, client, account):
        sign_in(client, account)
        mail.outbox.clear()
        return client

    def notices(self):
        return list(
            OutboundMessage.objects.filter(purpose__startswith="notice:").exclude(
                purpose="notice:new_browser"
            )
        )

    def test_the_last_key_cannot_be_removed(self, signed_in, account):
        key = account.digital_keys.get()
        page = signed_in.get("/nl/mijn-sleutels/").content.decode()
        assert f"/mijn-sleutels/{key.pk}/verwijderen/" not in page
        signed_in.post(f"/nl/mijn-sleutels/{key.pk}/verwijderen/", {"current_password": PASSWORD})
        key.refresh_from_db()
        assert key.state == "active"

    def test_remove_a_key_needs_the_password(self, signed_in, account):
        sms_key = add_key(account, "sms")
        response = signed_in.post(
            f"/nl/mijn-sleutels/{sms_key.pk}/verwijderen/", {"current_password": "wrong"}
        )
        assert response.status_code == 200
        sms_key.refresh_from_db()
        assert sms_key.state == "active"
        response = signed_in.post(
            f"/nl/mijn-sleutels/{sms_key.pk}/verwijderen/", {"current_password": PASSWORD}
        )
        assert response["Location"] == "/nl/mijn-sleutels/"
        sms_key.refresh_from_db()
        assert sms_key.state == "removed"
        assert len(self.notices()) == 1
        assert AuditEvent.objects.filter(action=Action.KEY_REMOVED).exists()

    def test_cannot_touch_another_citizens_key(self, signed_in, office):
        other = User.objects.create_user("marie.dubois", "Other-Pass-1!")
        key = add_key(other, "totp")
        assert (
            signed_in.post(
                f"/nl/mijn-sleutels/{key.pk}/verwijderen/", {"current_password": PASSWORD}
            ).status_code
            == 404
        )

    def test_change_password(self, signed_in, account):
        other = Client()
        sign_in(other, account)
        data = {
            "current_password": "wrong",
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        }
        assert signed_in.post("/nl/mijn-sleutels/wachtwoord/", data).status_code == 200
        data["current_password"] = PASSWORD
        assert (
            signed_in.post("/nl/mijn-sleutels/wachtwoord/", data)["Location"]
            == "/nl/mijn-sleutels/"
        )
        account.refresh_from_db()
        assert account.check_password(NEW_PASSWORD)
        assert signed_in.get("/nl/mijn-sleutels/").status_code == 200  # this session stays
        assert other.get("/nl/mijn-sleutels/")["Location"] == "/nl/aanmelden/"  # others end
        assert self.notices()

    def test_new_password_follows_the_rules(self, signed_in):
        data = {"current_password": PASSWORD, "password": "short", "password_confirm": "short"}
        response = signed_in.post("/nl/mijn-sleutels/wachtwoord/", data)
        assert response.context["form"].errors["password"]

    def test_activate_another_key_without_the_paper_code(self, signed_in, account):
        response = signed_in.post(
            "/nl/mijn-sleutels/toevoegen/",
            {"kind": "totp", "accept_terms": "on", "current_password": PASSWORD},
        )
        assert response["Location"] == "/nl/mijn-sleutels/toevoegen/code/"
        page = signed_in.get(response["Location"]).content.decode()
        assert "<svg" in page
        key = account.digital_keys.get(kind="totp")
        response = signed_in.post("/nl/mijn-sleutels/toevoegen/code/", {"code": code_for(key)})
        assert response["Location"] == "/nl/mijn-sleutels/"
        key.refresh_from_db()
        assert key.state == "active"
        assert any("geactiveerd" in m.subject for m in mail.outbox)
        form = signed_in.get("/nl/mijn-sleutels/toevoegen/").context["form"]
        assert [c for c, _ in form.fields["kind"].choices] == ["sms", "passkey"]

    def test_change_the_mobile_number_with_a_new_code(self, signed_in, account):
        old = add_key(account, "sms")
        response = signed_in.post(
            "/nl/mijn-sleutels/gsm-nummer/",
            {"phone": "0476 11 22 33", "current_password": PASSWORD},
        )
        assert response["Location"] == "/nl/mijn-sleutels/gsm-nummer/code/"
        assert sms.outbox[-1].to == "+32476112233"
        old.refresh_from_db()
        assert old.state == "active"  # until the new number is confirmed
        pending = DigitalKey.objects.get(state="pending", kind="sms")
        wrong = f"{(int(code_for(pending)) + 1) % 1_000_000:06d}"
        assert (
            signed_in.post("/nl/mijn-sleutels/gsm-nummer/code/", {"code": wrong}).status_code == 200
        )
        response = signed_in.post("/nl/mijn-sleutels/gsm-nummer/code/", {"code": code_for(pending)})
        assert response["Location"] == "/nl/mijn-sleutels/"
        active = account.digital_keys.get(kind="sms", state="active")
        assert active.phone == "+32476112233"
        old.refresh_from_db()
        assert old.state == "removed"
        assert self.notices()
        assert AuditEvent.objects.filter(action=Action.PHONE_CHANGED).exists()

    def test_recent_activity_is_listed(self, signed_in):
        page = signed_in.get("/nl/mijn-sleutels/")
        actions = [event.action for event in page.context["events"]]
        assert Action.SIGNIN_SUCCEEDED in actions


def test_forgotten_password_page(client, db):
    page = client.get("/nl/wachtwoord-vergeten/")
    assert page.status_code == 200
    assert "02 740 79 91" in page.content.decode()


def test_reissue_sets_a_new_password_and_keeps_the_username(
    client, account, citizen, clerk, time_machine
):
    time_machine.move_to(timezone.now() + timedelta(minutes=1))
    other = Client()
    sign_in(other, account)
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    open_link(client, issued.activation_link)
    post_step(client, "code", {"activation_code": issued.formatted_code})
    response = post_step(
        client, "key", {"kind": "sms", "phone": "0475998877", "accept_terms": "on"}
    )
    assert response["Location"] == step_url("account")
    page = client.get(step_url("account"))
    assert "username" not in page.context["form"].fields
    assert "jan.peeters" in page.content.decode()
    response = post_step(
        client, "account", {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    )
    assert response["Location"] == step_url("verify")
    account.refresh_from_db()
    assert account.username == "jan.peeters"
    assert account.check_password(NEW_PASSWORD)
    assert not account.check_password(PASSWORD)
    assert other.get("/nl/mijn-sleutels/")["Location"] == "/nl/aanmelden/"
    assert AuditEvent.objects.filter(action=Action.PASSWORD_RESET).exists()
    assert User.objects.filter(is_staff=False).count() == 1


def test_sign_in_codes_and_notices_are_worded_for_sign_in_in_the_citizens_language(client, account):
    add_key(account, "sms")
    client.post("/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD})
    client.post("/nl/aanmelden/sleutel/", {"key": str(account.digital_keys.get(kind="email").pk)})
    assert mail.outbox[-1].subject == "CSAM – Mijn digitale sleutels: uw beveiligingscode"
    client.post("/nl/aanmelden/sleutel/", {"key": str(account.digital_keys.get(kind="sms").pk)})
    assert "beveiligingscode om aan te melden" in sms.outbox[-1].body
    client.post("/nl/aanmelden/code/", {"code": code_for(account.digital_keys.get(kind="sms"))})
    notice = mail.outbox[-1]
    assert notice.subject == "CSAM – Mijn digitale sleutels: beveiligingsmelding"
    assert "browser" in notice.body.lower()


def test_password_checks_in_self_service_are_rate_limited(client, account, settings, time_machine):
    from keys.conf import DEFAULTS

    sign_in(client, account)
    time_machine.move_to(timezone.now(), tick=False)  # all in one window
    settings.CSAM = {
        "RATE_LIMITS": {**DEFAULTS["RATE_LIMITS"], "reauth:user": (2, timedelta(minutes=10))}
    }
    data = {"current_password": "guess", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    assert client.post("/nl/mijn-sleutels/wachtwoord/", data).status_code == 200
    assert client.post("/nl/mijn-sleutels/wachtwoord/", data).status_code == 200
    assert client.post("/nl/mijn-sleutels/wachtwoord/", data).status_code == 429


def test_every_page_that_asks_the_password_again_counts_against_one_limit(
    client, account, settings, time_machine
):
    """Removing a key, adding one, a new phone number and new recovery codes share the
    password-check limit with the password change (``keys.ratelimit.reauth_refused``)."""
    from keys.conf import DEFAULTS

    add_key(account, "sms")
    sign_in(client, account)
    time_machine.move_to(timezone.now(), tick=False)
    settings.CSAM = {
        "RATE_LIMITS": {**DEFAULTS["RATE_LIMITS"], "reauth:user": (4, timedelta(minutes=10))}
    }
    key = account.digital_keys.get(kind="email", state="active")
    guesses = [
        (f"/nl/mijn-sleutels/{key.pk}/verwijderen/", {"current_password": "guess"}),
        ("/nl/mijn-sleutels/toevoegen/", {"current_password": "guess", "kind": "totp"}),
        ("/nl/mijn-sleutels/gsm-nummer/", {"current_password": "guess", "phone": "0470998877"}),
        ("/nl/mijn-sleutels/herstelcodes/", {"current_password": "guess"}),
    ]
    for path, data in guesses:
        assert client.post(path, data).status_code == 200, path
    for path, data in guesses:
        assert client.post(path, data).status_code == 429, path
    assert account.digital_keys.filter(state="active").count() == 2


def test_account_deactivated_between_password_and_code_starts_over(client, account):
    """The pending sign-in reads its user with ``get()``: a deactivated account ends it."""
    response = client.post("/nl/aanmelden/", {"username": account.username, "password": PASSWORD})
    assert response["Location"] == "/nl/aanmelden/sleutel/"
    User.objects.filter(pk=account.pk).update(is_active=False)
    response = client.get("/nl/aanmelden/sleutel/")
    assert response.status_code == 302
    assert response["Location"] == "/nl/aanmelden/"


def test_signing_in_records_the_time_with_one_update_and_no_save(client, account):
    """``last_login`` is set on each sign-in, as Django's receiver sets it, but with one
    prepared UPDATE instead of ``user.save()`` (no save signals: issue 10's CPU per request)."""
    from django.db.models.signals import pre_save

    saved = []

    def receiver(sender, instance, **kwargs):
        saved.append(kwargs.get("update_fields"))

    assert account.last_login is None
    pre_save.connect(receiver, sender=User)
    try:
        sign_in(client, account)
    finally:
        pre_save.disconnect(receiver, sender=User)
    account.refresh_from_db()
    assert timezone.now() - account.last_login < timedelta(seconds=30)
    assert saved == []
    first = account.last_login
    client.post("/nl/afmelden/")
    sign_in(client, account)
    account.refresh_from_db()
    assert account.last_login > first
