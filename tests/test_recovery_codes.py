"""Recovery codes (issue 13): offered after the first key, shown once, single use, kept only
hashed (also tests/test_secrets_at_rest.py), checked only after the account's own password,
counted against the sign-in lockout, a new set voids the old, and each use or new set e-mailed."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from keys.models import AuditEvent, RecoveryCode
from keys.services import issuance, recovery
from keys.services.signin import AUTH_SESSION_KEY, lockout_remaining
from tests.test_signin import PASSWORD, code_for
from tests.test_signin import account as signed_up_account
from tests.wizard_helpers import last_email_code, open_link, post_step, step_url

account = pytest.fixture(signed_up_account.__wrapped__, name="account")
CODES = re.compile(r"<code>([2-9A-Z]{5}-[2-9A-Z]{5})</code>")
Action = AuditEvent.Action


def signed_in_client(user) -> Client:
    client = Client()
    client.post("/nl/aanmelden/", {"username": user.username, "password": PASSWORD})
    key = user.digital_keys.get(kind="email", state="active")
    client.post("/nl/aanmelden/sleutel/", {"key": str(key.pk)})
    assert client.post("/nl/aanmelden/code/", {"code": code_for(key)}).status_code == 302
    return client


def new_set(user) -> list[str]:
    client = signed_in_client(user)
    response = client.post("/nl/mijn-sleutels/herstelcodes/", {"current_password": PASSWORD})
    assert response.status_code == 200
    assert (
        response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]
    )
    return CODES.findall(response.content.decode())


def after_password(user, password: str = PASSWORD) -> Client:
    client = Client()
    response = client.post("/nl/aanmelden/", {"username": user.username, "password": password})
    assert response["Location"] == "/nl/aanmelden/sleutel/"
    return client


def test_offered_in_the_wizard_after_the_first_key_and_shown_once(citizen, clerk):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    client = Client()
    open_link(client, issued.activation_link)
    # Not before a key is active.
    assert client.post("/nl/activatie-herstelcodes/")["Location"] == "/nl/"
    post_step(client, "code", {"activation_code": issued.activation_code})
    post_step(client, "key", {"kind": "email", "accept_terms": "on"})
    post_step(
        client,
        "account",
        {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    post_step(client, "verify", {"code": last_email_code()})
    page = client.get(step_url("activated")).content.decode()
    assert 'action="/nl/activatie-herstelcodes/"' in page
    response = client.post("/nl/activatie-herstelcodes/")
    codes = CODES.findall(response.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert 'download="csam-recovery-codes.txt"' in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    # Shown once: neither a second post nor the activated page shows them again.
    again = client.post("/nl/activatie-herstelcodes/")
    assert again.status_code == 302
    page = client.get(step_url("activated")).content.decode()
    assert not any(code in page for code in codes)
    assert "activatie-herstelcodes" not in page
    assert RecoveryCode.objects.count() == 10


def test_not_offered_when_turned_off(account, settings):
    settings.RECOVERY_CODES_ENABLED = False
    client = signed_in_client(account)
    assert "herstelcodes" not in client.get("/nl/mijn-sleutels/").content.decode()
    assert client.get("/nl/mijn-sleutels/herstelcodes/")["Location"] == "/nl/mijn-sleutels/"
    pending = after_password(account)
    assert "herstelcode" not in pending.get("/nl/aanmelden/sleutel/").content.decode()
    assert pending.get("/nl/aanmelden/herstelcode/")["Location"] == "/nl/aanmelden/"


def test_self_service_shows_how_many_are_left_and_needs_the_password(account):
    client = signed_in_client(account)
    response = client.post("/nl/mijn-sleutels/herstelcodes/", {"current_password": "wrong"})
    assert response.status_code == 200
    assert not CODES.findall(response.content.decode())
    assert not RecoveryCode.objects.exists()
    codes = new_set(account)
    assert len(codes) == 10
    RecoveryCode.objects.filter(pk=RecoveryCode.objects.first().pk).update(used_at=timezone.now())
    page = signed_in_client(account).get("/nl/mijn-sleutels/").content.decode()
    assert re.search(r"\b9\b", page)


def test_sign_in_with_a_code_once_and_a_notice_is_mailed(account):
    codes = new_set(account)
    mail.outbox.clear()
    client = after_password(account)
    assert "/nl/aanmelden/herstelcode/" in client.get("/nl/aanmelden/sleutel/").content.decode()
    response = client.post("/nl/aanmelden/herstelcode/", {"code": codes[3].lower()})
    assert response["Location"] == "/nl/mijn-sleutels/"
    assert client.session[AUTH_SESSION_KEY]["amr"] == ["pwd", "otp"]
    assert client.session[AUTH_SESSION_KEY]["acr"] == "low"
    assert client.get("/nl/mijn-sleutels/").status_code == 200
    notices = [m for m in mail.outbox if "herstelcode" in m.body]
    assert notices and notices[0].to == [account.citizen.email]
    assert AuditEvent.objects.filter(action=Action.RECOVERY_CODE_USED).count() == 1
    assert recovery.remaining(account) == 9
    # Single use.
    client = after_password(account)
    response = client.post("/nl/aanmelden/herstelcode/", {"code": codes[3]})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "field-error" in response.content.decode()


def test_a_code_is_only_checked_after_the_accounts_password(account, db):
    codes = new_set(account)
    client = Client()
    # No password yet: the page sends the citizen back to sign in.
    response = client.post("/nl/aanmelden/herstelcode/", {"code": codes[0]})
    assert response["Location"] == "/nl/aanmelden/"
    assert "_auth_user_id" not in client.session
    assert recovery.remaining(account) == 10


def test_wrong_codes_count_against_the_lockout(account):
    new_set(account)
    client = after_password(account)
    for _i in range(4):
        response = client.post("/nl/aanmelden/herstelcode/", {"code": "AAAAA-22222"})
        assert response.status_code == 200
    assert lockout_remaining(account.username) == 0
    response = client.post("/nl/aanmelden/herstelcode/", {"code": "AAAAA-22222"})
    assert lockout_remaining(account.username) > 0
    # Even the right password is refused now.
    response = Client().post("/nl/aanmelden/", {"username": account.username, "password": PASSWORD})
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action=Action.SIGNIN_LOCKED).exists()


def test_malformed_codes_get_a_message(account):
    new_set(account)
    client = after_password(account)
    for junk in ["", "123", "x" * 100, "ÉÉÉÉÉ-ÉÉÉÉÉ"]:
        response = client.post("/nl/aanmelden/herstelcode/", {"code": junk})
        assert response.status_code == 200
        assert "field-error" in response.content.decode()


def test_a_new_set_voids_the_old_and_is_announced(account):
    old = new_set(account)
    mail.outbox.clear()
    new = new_set(account)
    assert not set(old) & set(new)
    assert RecoveryCode.objects.filter(user=account).count() == 10
    assert any("herstelcodes" in m.body for m in mail.outbox)
    client = after_password(account)
    response = client.post("/nl/aanmelden/herstelcode/", {"code": old[0]})
    assert response.status_code == 200
    client = after_password(account)
    response = client.post("/nl/aanmelden/herstelcode/", {"code": new[0]})
    assert response["Location"] == "/nl/mijn-sleutels/"


def test_codes_are_stored_as_keyed_hashes_only(account):
    codes = new_set(account)
    stored = list(RecoveryCode.objects.values_list("code_hash", flat=True))
    for code in codes:
        assert all(code.replace("-", "") not in h and code not in h for h in stored)
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in stored)


def test_my_keys_words_none_made_yet_left_and_all_used_apart(account):
    """ "You have 0 unused recovery codes" said nothing to a citizen who never made any."""
    client = signed_in_client(account)
    page = client.get("/nl/mijn-sleutels/").content.decode()
    assert "U hebt nog geen herstelcodes." in page
    assert "Herstelcodes aanmaken</a>" in page
    assert "ongebruikte herstelcode" not in page
    new_set(account)
    page = client.get("/nl/mijn-sleutels/").content.decode()
    assert "U hebt 10 ongebruikte herstelcodes." in page
    assert "Nieuwe herstelcodes aanmaken</a>" in page
    RecoveryCode.objects.filter(user=account).update(used_at=timezone.now())
    page = client.get("/nl/mijn-sleutels/").content.decode()
    assert "U hebt al uw herstelcodes gebruikt." in page
    assert "Nieuwe herstelcodes aanmaken</a>" in page
    assert "nog geen herstelcodes" not in page
