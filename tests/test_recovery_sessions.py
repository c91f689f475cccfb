"""Issue 25 §1: a password and one paper code must not become a strong key.

A sign-in with password and recovery code is weak: it may add one digital key and change
nothing else. That key is on probation for 72 hours (level "low" at most, never alone, its
sessions weak), announced before it works to every address on record with a link that cancels
it from a session signed in with another key. Every other change of keys, password or phone
needs a sign-in with an active key. Removing a key ends the sessions signed in with it.
Tried as an attacker who knows the password and holds one recovery code would."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from keys import crypto, sms
from keys.digital_keys import level_of
from keys.digital_keys.passkey.models import PasskeyCredential
from keys.models import AuditEvent, DigitalKey, OutboundMessage, RecoveryCode
from keys.services import recovery
from keys.services.signin import AUTH_SESSION_KEY
from tests.soft_authenticator import SoftAuthenticator
from tests.test_oidc import Flow, query_of
from tests.test_oidc import service as oidc_service  # noqa: F401 - fixture
from tests.test_passkeys import ORIGIN, add_passkey, options_in, usernameless
from tests.test_signin import PASSWORD, add_key, sign_in
from tests.test_signin import account as signed_up_account

account = pytest.fixture(signed_up_account.__wrapped__, name="account")
Action = AuditEvent.Action
NEW_PASSWORD = "Another-Horse-7y"
HOURS_72 = timedelta(hours=72)


@pytest.fixture
def codes(account):
    """The account has an e-mail key, an SMS key, a number on the citizen's record, and a set
    of recovery codes."""
    add_key(account, "sms")
    account.citizen.phone = "0476 11 22 33"
    account.citizen.save()
    made = recovery.create_set(None, account)
    mail.outbox.clear()
    sms.outbox.clear()
    return made


def strong_client(user, kind="email") -> Client:
    client = Client()
    assert sign_in(client, user, kind)["Location"] == "/nl/mijn-sleutels/"
    return client


def recovery_client(user, code: str) -> Client:
    client = Client()
    client.post("/nl/aanmelden/", {"username": user.username, "password": PASSWORD})
    response = client.post("/nl/aanmelden/herstelcode/", {"code": code})
    assert response["Location"] == "/nl/mijn-sleutels/"
    return client


def start_adding(client, kind="totp", phone=""):
    return client.post(
        "/nl/mijn-sleutels/toevoegen/",
        {"kind": kind, "accept_terms": "on", "current_password": PASSWORD, "phone": phone},
    )


def add_app_key(client, user) -> DigitalKey:
    response = start_adding(client)
    assert response["Location"] == "/nl/mijn-sleutels/toevoegen/code/", response.status_code
    key = DigitalKey.objects.get(user=user, kind="totp", state="pending")
    # The previous step's code (accepted, one step of drift): a sign-in may use the current one.
    code = pyotp.TOTP(crypto.decrypt(key.secret_encrypted)).at(timezone.now().timestamp() - 30)
    response = client.post("/nl/mijn-sleutels/toevoegen/code/", {"code": code})
    assert response["Location"] == "/nl/mijn-sleutels/"
    key.refresh_from_db()
    assert key.state == "active"
    return key


def refused(response, reason="weak") -> bool:
    return (
        response.status_code == 403
        and "keys/account/key_signin_required.html" in [t.name for t in response.templates]
        and response.context["reason"] == reason
    )


def test_the_session_records_its_key_and_strength(account, codes):
    client = strong_client(account)
    auth = client.session[AUTH_SESSION_KEY]
    assert auth["strong"] is True
    assert auth["key_id"] == account.digital_keys.get(kind="email").pk
    weak = recovery_client(account, codes[0])
    auth = weak.session[AUTH_SESSION_KEY]
    assert auth["strong"] is False and auth["key_id"] is None and auth["acr"] == "low"


def test_a_recovery_session_changes_nothing_but_may_add_one_key(account, codes):
    authenticator = SoftAuthenticator(ORIGIN, "testserver")
    passkey = add_passkey(strong_client(account), account, authenticator)
    sms_key = account.digital_keys.get(kind="sms", state="active")
    password_hash = account.password
    client = recovery_client(account, codes[0])
    attempts = [
        ("get", f"/nl/mijn-sleutels/{sms_key.pk}/verwijderen/", None),
        ("post", f"/nl/mijn-sleutels/{sms_key.pk}/verwijderen/", {"current_password": PASSWORD}),
        ("post", f"/nl/mijn-sleutels/{passkey.pk}/verwijderen/", {"current_password": PASSWORD}),
        ("get", f"/nl/mijn-sleutels/{passkey.pk}/passkey-alleen/", None),
        ("post", f"/nl/mijn-sleutels/{passkey.pk}/passkey-alleen/", {"current_password": PASSWORD}),
        ("get", "/nl/mijn-sleutels/herstelcodes/", None),
        ("post", "/nl/mijn-sleutels/herstelcodes/", {"current_password": PASSWORD}),
        ("get", "/nl/mijn-sleutels/wachtwoord/", None),
        (
            "post",
            "/nl/mijn-sleutels/wachtwoord/",
            {
                "current_password": PASSWORD,
                "password": NEW_PASSWORD,
                "password_confirm": NEW_PASSWORD,
            },
        ),
        ("get", "/nl/mijn-sleutels/gsm-nummer/", None),
        (
            "post",
            "/nl/mijn-sleutels/gsm-nummer/",
            {"current_password": PASSWORD, "phone": "0470 99 88 77"},
        ),
    ]
    for method, url, data in attempts:
        response = getattr(client, method)(url, data) if data else getattr(client, method)(url)
        assert refused(response), (method, url, response.status_code)
        # The way out: a sign-in with a key, which comes back here.
        assert response.context["signin_next"].startswith("/nl/aanmelden/?next=")
        assert "aanmelden/?next=" in response.content.decode()
    account.refresh_from_db()
    assert account.password == password_hash
    assert DigitalKey.objects.filter(user=account, state="active").count() == 3
    assert not DigitalKey.objects.filter(user=account, kind="sms", state="pending").exists()
    assert PasskeyCredential.objects.get(key=passkey).usernameless is False
    assert RecoveryCode.objects.filter(user=account, used_at__isnull=True).count() == 9
    assert AuditEvent.objects.filter(action=Action.CHANGE_REFUSED).count() == len(attempts)

    # One key: allowed, on probation. A second: refused, in this session and in another one.
    key = add_app_key(client, account)
    assert key.in_probation()
    assert abs(key.probation_until - (key.activated_at + HOURS_72)) < timedelta(seconds=1)
    assert refused(client.get("/nl/mijn-sleutels/toevoegen/"), "one_key")
    other = recovery_client(account, codes[1])
    assert refused(other.get("/nl/mijn-sleutels/toevoegen/"), "one_key")
    assert refused(start_adding(other, "passkey"), "one_key")
    assert not DigitalKey.objects.filter(user=account, state="pending").exists()


def test_the_probation_notice_is_queued_before_the_key_works_to_every_address(account, codes):
    client = recovery_client(account, codes[0])
    OutboundMessage.objects.all().delete()
    key = add_app_key(client, account)
    notices = list(OutboundMessage.objects.filter(purpose="notice:key_probation").order_by("pk"))
    recipients = {(m.channel, m.recipient) for m in notices}
    assert recipients == {
        ("email", account.citizen.email),
        ("sms", "+32470123456"),  # the SMS key's number
        ("sms", "+32476112233"),  # the number on the citizen's record
    }
    activated = OutboundMessage.objects.get(purpose="key_activated")
    assert all(m.pk < activated.pk and m.created_at <= key.activated_at for m in notices)
    notice = next(m for m in mail.outbox if "herstelcode" in m.body and "/annuleren/" in m.body)
    link = f"http://testserver/nl/mijn-sleutels/{key.pk}/annuleren/"
    assert link in notice.body
    texts = [m.body for m in sms.outbox]
    assert sum(link in text for text in texts) == 2
    # The date it counts fully, in Brussels time, on screen and in the notice.
    page = client.get("/nl/mijn-sleutels/").content.decode()
    local = timezone.localtime(key.probation_until).strftime("%H:%M")
    assert local in page and "Brussel" in page
    assert local in notice.body


def test_the_key_on_probation_signs_in_low_and_weak_then_counts_fully(account, codes, client):
    key = add_app_key(recovery_client(account, codes[0]), account)
    response = sign_in(client, account, "totp")
    assert response["Location"] == "/nl/mijn-sleutels/"
    auth = client.session[AUTH_SESSION_KEY]
    assert auth["acr"] == "low" and auth["strong"] is False and auth["key_id"] == key.pk
    sms_key = account.digital_keys.get(kind="sms", state="active")
    assert refused(client.get(f"/nl/mijn-sleutels/{sms_key.pk}/verwijderen/"))
    assert refused(client.get("/nl/mijn-sleutels/toevoegen/"), "one_key")
    with time_machine.travel(timezone.now() + HOURS_72 + timedelta(minutes=1), tick=False):
        later = Client()
        assert sign_in(later, account, "totp")["Location"] == "/nl/mijn-sleutels/"
        auth = later.session[AUTH_SESSION_KEY]
        assert auth["acr"] == level_of("totp") and auth["strong"] is True
        response = later.post(
            f"/nl/mijn-sleutels/{sms_key.pk}/verwijderen/", {"current_password": PASSWORD}
        )
        assert response["Location"] == "/nl/mijn-sleutels/"
    sms_key.refresh_from_db()
    assert sms_key.state == "removed"


def test_a_service_gets_low_from_the_key_on_probation(account, codes, client, oidc_service):  # noqa: F811
    add_app_key(recovery_client(account, codes[0]), account)
    flow = Flow(oidc_service, acr_values="urn:be:fedict:iam:fas:citizen:Level400")
    client.get(client.get(flow.url)["Location"])
    response = client.get(sign_in(client, account, "totp")["Location"])
    assert response.status_code == 403
    assert "oidc/level_refused.html" in [t.name for t in response.templates]


def test_the_level_page_offers_no_sign_in_with_a_key_on_probation(
    account,
    codes,
    client,
    oidc_service,  # noqa: F811
):
    """When the key on probation is the only key left that could reach the level, the refusal
    does not suggest signing in again with "another key": that sign-in would give "low" too."""
    add_app_key(recovery_client(account, codes[0]), account)
    account.digital_keys.exclude(kind="totp").update(state="removed", removed_at=timezone.now())
    flow = Flow(oidc_service, acr_values="urn:be:fedict:iam:fas:citizen:Level400")
    client.get(client.get(flow.url)["Location"])
    response = client.get(sign_in(client, account, "totp")["Location"])
    assert response.status_code == 403
    assert response.context["again"] == ""


def test_a_passkey_added_after_a_recovery_is_never_alone_during_probation(account, codes):
    authenticator = SoftAuthenticator(ORIGIN, "testserver")
    client = recovery_client(account, codes[0])
    start_adding(client, "passkey")
    page = client.get("/nl/mijn-sleutels/toevoegen/code/").content.decode()
    assert "passkey_usernameless" not in page  # not offered
    # Asked for anyway, by a forged form: not granted.
    response = client.post(
        "/nl/mijn-sleutels/toevoegen/code/",
        {
            "code": authenticator.register(options_in(page)),
            "passkey_name": "Aanvaller",
            "passkey_usernameless": "on",
        },
    )
    assert response["Location"] == "/nl/mijn-sleutels/"
    key = DigitalKey.objects.get(passkey__credential_id=authenticator.id)
    assert key.in_probation() and key.passkey.usernameless is False
    anonymous = Client()
    assert usernameless(anonymous, authenticator)["Location"] == "/nl/aanmelden/?passkey=0"
    # Even were it turned on (an older row, a forged one): refused with its reason.
    PasskeyCredential.objects.filter(key=key).update(usernameless=True)
    anonymous = Client()
    response = usernameless(anonymous, authenticator)
    assert response["Location"] == "/nl/aanmelden/?passkey=0"
    assert "_auth_user_id" not in anonymous.session
    page = anonymous.get(response["Location"]).content.decode()
    assert "herstelcode" in page and "Brussel" in page
    PasskeyCredential.objects.filter(key=key).update(usernameless=False)
    # The owner, signed in with the e-mail key, may not turn it on either before the end.
    owner = strong_client(account)
    url = f"/nl/mijn-sleutels/{key.pk}/passkey-alleen/"
    assert refused(owner.get(url), "probation")
    assert refused(owner.post(url, {"current_password": PASSWORD}), "probation")
    assert PasskeyCredential.objects.get(key=key).usernameless is False
    with time_machine.travel(timezone.now() + HOURS_72 + timedelta(minutes=1), tick=False):
        owner = strong_client(account)
        assert owner.post(url, {"current_password": PASSWORD})["Location"] == "/nl/mijn-sleutels/"
        later = Client()
        assert usernameless(later, authenticator)["Location"] == "/nl/mijn-sleutels/"
        assert later.session[AUTH_SESSION_KEY]["strong"] is True


def test_cancel_needs_a_sign_in_with_another_key(account, codes):
    key = add_app_key(recovery_client(account, codes[0]), account)
    url = f"/nl/mijn-sleutels/{key.pk}/annuleren/"
    # Not signed in: the sign-in first, which comes back here.
    response = Client().get(url)
    assert response["Location"] == f"/nl/aanmelden/?next=%2Fnl{url[3:].replace('/', '%2F')}"
    # Signed in with the key on probation itself, or with another recovery code: refused.
    with_it = Client()
    sign_in(with_it, account, "totp")
    assert refused(with_it.get(url), "other_key")
    assert refused(with_it.post(url), "other_key")
    assert refused(recovery_client(account, codes[1]).post(url), "other_key")
    key.refresh_from_db()
    assert key.state == "active"
    # With the e-mail key: the page, then the key is gone, its session ends, a notice says so.
    owner = strong_client(account)
    assert owner.get(url).status_code == 200
    mail.outbox.clear()
    assert owner.post(url)["Location"] == "/nl/mijn-sleutels/"
    key.refresh_from_db()
    assert key.state == "removed"
    event = AuditEvent.objects.get(action=Action.KEY_CANCELLED)
    assert event.detail["key_id"] == key.pk
    assert any("geannuleerd" in m.body for m in mail.outbox)
    response = with_it.get("/nl/mijn-sleutels/")
    assert response.status_code == 403 and response.context["key_gone"]
    assert "_auth_user_id" not in with_it.session
    # Once cancelled, the recovery may add a key again (a new session, a new code).
    assert start_adding(recovery_client(account, codes[2])).status_code == 302


def test_removing_a_key_ends_the_sessions_signed_in_with_it(account, codes, oidc_service):  # noqa: F811
    authenticator = SoftAuthenticator(ORIGIN, "testserver")
    owner = strong_client(account)
    passkey = add_passkey(owner, account, authenticator, usernameless=True)
    alone = Client()
    assert usernameless(alone, authenticator)["Location"] == "/nl/mijn-sleutels/"
    with_sms = strong_client(account, "sms")
    # A service's sign-in in the SMS key's session: consented once.
    flow = Flow(oidc_service)
    response = with_sms.get(flow.url)
    if response.status_code == 200:
        response = with_sms.post(flow.url, {"answer": "allow"})
    assert "code" in query_of(response["Location"])
    owner.post(f"/nl/mijn-sleutels/{passkey.pk}/verwijderen/", {"current_password": PASSWORD})
    sms_key = account.digital_keys.get(kind="sms", state="active")
    owner.post(f"/nl/mijn-sleutels/{sms_key.pk}/verwijderen/", {"current_password": PASSWORD})
    response = alone.get("/nl/mijn-sleutels/")
    assert response.status_code == 403 and response.context["key_gone"]
    assert "_auth_user_id" not in alone.session
    # The provider's path reads the session too: no code, a sign-in instead.
    response = with_sms.get(Flow(oidc_service).url)
    assert response["Location"].startswith("/nl/aanmelden/?next=")
    assert "_auth_user_id" not in with_sms.session
    # The session that removed them goes on.
    assert owner.get("/nl/mijn-sleutels/").status_code == 200


def test_a_strong_session_still_changes_everything(account, codes):
    authenticator = SoftAuthenticator(ORIGIN, "testserver")
    client = strong_client(account)
    passkey = add_passkey(client, account, authenticator)
    assert passkey.probation_until is None
    url = f"/nl/mijn-sleutels/{passkey.pk}/passkey-alleen/"
    assert client.post(url, {"current_password": PASSWORD})["Location"] == "/nl/mijn-sleutels/"
    response = client.post("/nl/mijn-sleutels/herstelcodes/", {"current_password": PASSWORD})
    assert response.status_code == 200 and re.search(
        r"<code>[2-9A-Z]{5}-", response.content.decode()
    )
    response = client.post(
        "/nl/mijn-sleutels/gsm-nummer/", {"current_password": PASSWORD, "phone": "0470 99 88 77"}
    )
    assert response["Location"] == "/nl/mijn-sleutels/gsm-nummer/code/"
    response = client.post(
        f"/nl/mijn-sleutels/{passkey.pk}/verwijderen/", {"current_password": PASSWORD}
    )
    assert response["Location"] == "/nl/mijn-sleutels/"
    data = {
        "current_password": PASSWORD,
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
    }
    assert client.post("/nl/mijn-sleutels/wachtwoord/", data)["Location"] == "/nl/mijn-sleutels/"
