"""Passkeys through the real pages, with a software authenticator (tests/soft_authenticator.py):
made in "Mijn digitale sleutels" and in the wizard, used after the password and alone, the
challenge single use, bound to the session (the username-less sign-in's: kept in the database,
its options setting no cookie) and expiring, the origin checked, and a copied
authenticator (its counter going back) refused and audited. The browser's own side (Chromium's
virtual authenticator and passkey.js) is in tests/browser/test_passkeys_browser.py."""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from keys.digital_keys import get_kind, level_of
from keys.digital_keys import passkey as passkeys
from keys.digital_keys.passkey.kind import base64url_to_bytes, bytes_to_base64url
from keys.digital_keys.passkey.models import DiscoverChallenge, PasskeyCredential
from keys.models import Activation, AuditEvent, DigitalKey
from keys.services import issuance
from keys.services.signin import AUTH_SESSION_KEY, lockout_remaining
from tests.conftest import staff_login
from tests.soft_authenticator import SoftAuthenticator
from tests.test_signin import PASSWORD, code_for
from tests.test_signin import account as signed_up_account
from tests.wizard_helpers import last_email_code, open_link, post_step, step_url

ORIGIN = "http://testserver"
Action = AuditEvent.Action


def options_in(html: str) -> dict:
    found = re.search(r'<script id="passkey-options" type="application/json">(.*?)</script>', html)
    assert found, "no passkey options in the page"
    return json.loads(found.group(1))["publicKey"]


def signed_in_client(user) -> Client:
    client = Client()
    client.post("/nl/aanmelden/", {"username": user.username, "password": PASSWORD})
    key = user.digital_keys.get(kind="email", state="active")
    client.post("/nl/aanmelden/sleutel/", {"key": str(key.pk)})
    response = client.post("/nl/aanmelden/code/", {"code": code_for(key)})
    assert response["Location"] == "/nl/mijn-sleutels/"
    return client


def add_passkey(client, user, authenticator, name="Mijn gsm", usernameless=False) -> DigitalKey:
    response = client.post(
        "/nl/mijn-sleutels/toevoegen/",
        {"kind": "passkey", "accept_terms": "on", "current_password": PASSWORD},
    )
    assert response["Location"] == "/nl/mijn-sleutels/toevoegen/code/"
    page = client.get(response["Location"]).content.decode()
    data = {"code": authenticator.register(options_in(page)), "passkey_name": name}
    if usernameless:
        data["passkey_usernameless"] = "on"
    response = client.post("/nl/mijn-sleutels/toevoegen/code/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/nl/mijn-sleutels/"
    return DigitalKey.objects.get(passkey__credential_id=authenticator.id)


account = pytest.fixture(signed_up_account.__wrapped__, name="account")


@pytest.fixture
def authenticator():
    return SoftAuthenticator(ORIGIN, "testserver")


@pytest.fixture
def with_passkey(account, authenticator):
    client = signed_in_client(account)
    key = add_passkey(client, account, authenticator)
    return key


def sign_in_with_passkey_page(client, user, key) -> str:
    client.post("/nl/aanmelden/", {"username": user.username, "password": PASSWORD})
    client.post("/nl/aanmelden/sleutel/", {"key": str(key.pk)})
    return client.get("/nl/aanmelden/code/").content.decode()


def test_the_kind_is_registered_with_its_level_and_amr():
    kind = get_kind("passkey")
    assert kind.amr == "swk"
    assert level_of("passkey") == "substantial"
    assert kind.several_per_account and kind.browser_ceremony


def test_add_a_passkey_in_self_service(with_passkey, account, authenticator):
    key = with_passkey
    assert key.state == DigitalKey.State.ACTIVE
    credential = key.passkey
    assert credential.name == "Mijn gsm"
    assert credential.usernameless is False
    assert AuditEvent.objects.filter(action=Action.KEY_ACTIVATED, detail__kind="passkey").exists()
    assert any("geactiveerd" in m.subject for m in mail.outbox)
    page = signed_in_client(account).get("/nl/mijn-sleutels/").content.decode()
    assert "Toegangssleutel (passkey)" in page
    assert "Mijn gsm" in page


def test_registration_requires_resident_key_preferred_and_user_verification(account):
    client = signed_in_client(account)
    client.post(
        "/nl/mijn-sleutels/toevoegen/",
        {"kind": "passkey", "accept_terms": "on", "current_password": PASSWORD},
    )
    options = options_in(client.get("/nl/mijn-sleutels/toevoegen/code/").content.decode())
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["rp"]["id"] == "testserver"


def test_a_registration_without_user_verification_is_refused(account, authenticator):
    authenticator.user_verified = False
    client = signed_in_client(account)
    client.post(
        "/nl/mijn-sleutels/toevoegen/",
        {"kind": "passkey", "accept_terms": "on", "current_password": PASSWORD},
    )
    page = client.get("/nl/mijn-sleutels/toevoegen/code/").content.decode()
    response = client.post(
        "/nl/mijn-sleutels/toevoegen/code/", {"code": authenticator.register(options_in(page))}
    )
    assert response.status_code == 200
    assert "kon niet worden gecontroleerd" in response.content.decode()
    assert not PasskeyCredential.objects.exists()


def test_several_passkeys_each_with_its_name(with_passkey, account):
    second = SoftAuthenticator(ORIGIN, "testserver")
    key = add_passkey(signed_in_client(account), account, second, name="Laptop")
    assert account.digital_keys.filter(kind="passkey", state="active").count() == 2
    assert key.passkey.user_handle == with_passkey.passkey.user_handle
    client = Client()
    client.post("/nl/aanmelden/", {"username": account.username, "password": PASSWORD})
    page = client.get("/nl/aanmelden/sleutel/").content.decode()
    assert "“Mijn gsm”" in page and "“Laptop”" in page


def test_each_passkeys_remove_link_names_it(with_passkey, account):
    """Links of the same text to different places fail WCAG 2.4.4 (link purpose): with two
    passkeys, each "remove" link says which passkey it removes."""
    add_passkey(
        signed_in_client(account), account, SoftAuthenticator(ORIGIN, "testserver"), "Laptop"
    )
    page = signed_in_client(account).get("/nl/mijn-sleutels/").content.decode()
    links = re.findall(r'<a href="/nl/mijn-sleutels/[^"]*verwijder[^"]*">([^<]*)</a>', page)
    assert sorted(link for link in links if "Toegangssleutel" in link) == [
        "Toegangssleutel “Laptop” verwijderen",
        "Toegangssleutel “Mijn gsm” verwijderen",
    ], links
    assert len(set(links)) == len(links), links


def test_sign_in_with_the_passkey_as_the_key(with_passkey, account, authenticator):
    client = Client()
    page = sign_in_with_passkey_page(client, account, with_passkey)
    options = options_in(page)
    assert options["userVerification"] == "required"
    assert [c["id"] for c in options["allowCredentials"]] == [authenticator.id]
    response = client.post("/nl/aanmelden/code/", {"code": authenticator.sign(options)})
    assert response["Location"] == "/nl/mijn-sleutels/"
    auth = client.session[AUTH_SESSION_KEY]
    assert auth["amr"] == ["pwd", "swk"] and auth["acr"] == "substantial"
    with_passkey.refresh_from_db()
    assert with_passkey.last_used_at is not None
    assert with_passkey.passkey.sign_count == authenticator.sign_count


def test_the_challenge_is_single_use(with_passkey, account, authenticator):
    client = Client()
    options = options_in(sign_in_with_passkey_page(client, account, with_passkey))
    answer = authenticator.sign(options)
    # Another browser replays the answer: the challenge is bound to the first session.
    thief = Client()
    sign_in_with_passkey_page(thief, account, with_passkey)
    response = thief.post("/nl/aanmelden/code/", {"code": answer})
    assert response.status_code == 200
    # A wrong answer in the right session spends the challenge too.
    response = client.post("/nl/aanmelden/code/", {"code": answer.replace('"id"', '"x"')})
    assert response.status_code == 200
    response = client.post("/nl/aanmelden/code/", {"code": answer})
    assert response.status_code == 200
    assert "kon niet worden gecontroleerd" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_challenge_expires(with_passkey, account, authenticator, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    client = Client()
    options = options_in(sign_in_with_passkey_page(client, account, with_passkey))
    time_machine.shift(timedelta(seconds=passkeys.CHALLENGE_TTL + 1))
    response = client.post("/nl/aanmelden/code/", {"code": authenticator.sign(options)})
    assert response.status_code in (200, 302)
    assert "_auth_user_id" not in client.session


def test_another_origin_is_refused(with_passkey, account, authenticator):
    client = Client()
    options = options_in(sign_in_with_passkey_page(client, account, with_passkey))
    authenticator.origin = "https://phishing.example"
    response = client.post("/nl/aanmelden/code/", {"code": authenticator.sign(options)})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_a_cloned_authenticator_is_refused_and_audited(with_passkey, account, authenticator):
    client = Client()
    options = options_in(sign_in_with_passkey_page(client, account, with_passkey))
    assert client.post("/nl/aanmelden/code/", {"code": authenticator.sign(options)}).status_code
    used = authenticator.sign_count
    client = Client()
    options = options_in(sign_in_with_passkey_page(client, account, with_passkey))
    # The copy's counter is behind the original's.
    response = client.post(
        "/nl/aanmelden/code/", {"code": authenticator.sign(options, count=used - 1)}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action=passkeys.CLONE_DETECTED)
    assert event.detail["stored_sign_count"] == used
    with_passkey.passkey.refresh_from_db()
    assert with_passkey.passkey.sign_count == used


def test_failed_passkeys_count_against_the_lockout(with_passkey, account, authenticator):
    for _i in range(5):
        client = Client()
        options = options_in(sign_in_with_passkey_page(client, account, with_passkey))
        authenticator.origin = "https://phishing.example"
        client.post("/nl/aanmelden/code/", {"code": authenticator.sign(options)})
    assert lockout_remaining(account.username) > 0
    response = Client().post("/nl/aanmelden/", {"username": account.username, "password": PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in Client().session


def usernameless(client, authenticator):
    options = client.post("/nl/aanmelden/passkey/opties/").json()
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    return client.post("/nl/aanmelden/passkey/", {"code": authenticator.sign(options)})


def test_usernameless_sign_in_only_once_turned_on(with_passkey, account, authenticator):
    client = Client()
    client.get("/nl/aanmelden/")
    response = usernameless(client, authenticator)
    assert response["Location"] == "/nl/aanmelden/?passkey=0"
    assert "_auth_user_id" not in client.session

    owner = signed_in_client(account)
    url = f"/nl/mijn-sleutels/{with_passkey.pk}/passkey-alleen/"
    assert owner.post(url, {"current_password": "wrong"}).status_code == 200
    mail.outbox.clear()
    assert owner.post(url, {"current_password": PASSWORD})["Location"] == "/nl/mijn-sleutels/"
    assert PasskeyCredential.objects.get(key=with_passkey).usernameless
    assert len(mail.outbox) == 1

    client = Client()
    response = usernameless(client, authenticator)
    assert response["Location"] == "/nl/mijn-sleutels/"
    auth = client.session[AUTH_SESSION_KEY]
    assert auth["amr"] == ["swk", "user"] and auth["acr"] == "substantial"
    assert client.get("/nl/mijn-sleutels/").status_code == 200


def test_usernameless_can_be_chosen_when_the_passkey_is_made(account):
    authenticator = SoftAuthenticator(ORIGIN, "testserver")
    add_passkey(signed_in_client(account), account, authenticator, usernameless=True)
    client = Client()
    assert usernameless(client, authenticator)["Location"] == "/nl/mijn-sleutels/"


OPTIONS_URL = "/nl/aanmelden/passkey/opties/"
USERNAMELESS_URL = "/nl/aanmelden/passkey/"


@pytest.mark.parametrize("earlier_session", [False, True], ids=["first-visit", "had-a-session"])
def test_a_late_options_answer_does_not_undo_the_password(account, earlier_session):
    """The sign-in page's script asks for the passkey options as the page loads, while the
    citizen types username and password. When the password's answer (which cycles the session
    key and keeps the pending sign-in) arrives first, the options' answer must not set the
    session cookie again: the browser would put back the old session and the key step would
    find no sign-in to finish (the browser tests' rare "no e-mail arrived")."""
    client = Client()
    if earlier_session:
        client.session.save()  # an earlier visit's session: its cookie is in the jar
    client.get("/nl/aanmelden/")
    at_page_load = Client()
    at_page_load.cookies = client.cookies.__class__(client.cookies.output(header="", sep=";"))
    response = client.post("/nl/aanmelden/", {"username": account.username, "password": PASSWORD})
    assert response.status_code == 302
    late = at_page_load.post(OPTIONS_URL)
    assert late.status_code == 200 and late.json()["challenge"]
    assert settings.SESSION_COOKIE_NAME not in late.cookies
    client.cookies.update(late.cookies)  # what a browser does with a late Set-Cookie
    key = account.digital_keys.get(kind="email", state="active")
    mail.outbox.clear()
    response = client.post("/nl/aanmelden/sleutel/", {"key": str(key.pk)})
    assert response["Location"] == "/nl/aanmelden/code/"
    assert len(mail.outbox) == 1
    response = client.post("/nl/aanmelden/code/", {"code": code_for(key)})
    assert response["Location"] == "/nl/mijn-sleutels/"


def test_a_username_less_challenge_is_kept_as_a_digest_used_once(
    with_passkey, account, authenticator
):
    PasskeyCredential.objects.filter(key=with_passkey).update(usernameless=True)
    DiscoverChallenge.objects.all().delete()
    options = Client().post(OPTIONS_URL).json()
    challenge = base64url_to_bytes(options["challenge"])
    assert len(challenge) >= 16
    stored = DiscoverChallenge.objects.get()
    assert stored.digest == hashlib.sha256(challenge).hexdigest()
    assert options["challenge"] not in str(stored.__dict__)
    first, replayed = authenticator.sign(options), authenticator.sign(options)
    # Made on one page, answered from another browser: nothing binds it to a session.
    assert Client().post(USERNAMELESS_URL, {"code": first})["Location"] == "/nl/mijn-sleutels/"
    assert not DiscoverChallenge.objects.exists()
    # A second answer over the same challenge (its counter going up) is refused.
    client = Client()
    assert client.post(USERNAMELESS_URL, {"code": replayed})["Location"] == (
        "/nl/aanmelden/?passkey=0"
    )
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(
        action=Action.SIGNIN_FAILED, detail__reason="passkey_unknown"
    ).exists()


def test_a_username_less_challenge_must_be_ours_and_fresh(with_passkey, account, authenticator):
    PasskeyCredential.objects.filter(key=with_passkey).update(usernameless=True)
    options = Client().post(OPTIONS_URL).json()
    # A challenge this service never made.
    forged = dict(options, challenge=bytes_to_base64url(os.urandom(32)))
    response = Client().post(USERNAMELESS_URL, {"code": authenticator.sign(forged)})
    assert response["Location"] == "/nl/aanmelden/?passkey=0"
    # Past its time: refused, and purged when the next options are made.
    DiscoverChallenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().post(USERNAMELESS_URL, {"code": authenticator.sign(options)})
    assert response["Location"] == "/nl/aanmelden/?passkey=0"
    fresh = Client().post(OPTIONS_URL).json()
    assert DiscoverChallenge.objects.count() == 1
    response = Client().post(USERNAMELESS_URL, {"code": authenticator.sign(fresh)})
    assert response["Location"] == "/nl/mijn-sleutels/"
    # The session's challenge of a key step is not one for the username-less sign-in.
    client = Client()
    key_options = options_in(sign_in_with_passkey_page(client, account, with_passkey))
    response = client.post(USERNAMELESS_URL, {"code": authenticator.sign(key_options)})
    assert response["Location"] == "/nl/aanmelden/?passkey=0"


def test_a_removed_passkey_no_longer_signs_in(with_passkey, account, authenticator):
    owner = signed_in_client(account)
    PasskeyCredential.objects.filter(key=with_passkey).update(usernameless=True)
    response = owner.post(
        f"/nl/mijn-sleutels/{with_passkey.pk}/verwijderen/", {"current_password": PASSWORD}
    )
    assert response["Location"] == "/nl/mijn-sleutels/"
    with_passkey.refresh_from_db()
    assert with_passkey.state == "removed"
    client = Client()
    assert usernameless(client, authenticator)["Location"] == "/nl/aanmelden/?passkey=0"
    assert "_auth_user_id" not in client.session


def test_junk_answers_get_a_message_never_a_500(with_passkey, account):
    for junk in ["", "{", "[]", '{"id": 5}', "x" * 30_000, '{"id": "abc", "response": 1}']:
        client = Client()
        sign_in_with_passkey_page(client, account, with_passkey)
        response = client.post("/nl/aanmelden/code/", {"code": junk})
        assert response.status_code == 200, junk
        assert "field-error" in response.content.decode()
        response = client.post("/nl/aanmelden/passkey/", {"code": junk})
        assert response.status_code == 302


def test_the_wizard_makes_a_passkey(citizen, clerk, authenticator):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    client = Client()
    open_link(client, issued.activation_link)
    post_step(client, "code", {"activation_code": issued.activation_code})
    page = client.get(step_url("key")).content.decode()
    # Offered only where the browser can make one: hidden until the script shows it.
    assert re.search(r'<div class="choice" hidden data-webauthn-only>\s*<input[^>]*"passkey"', page)
    post_step(client, "key", {"kind": "passkey", "accept_terms": "on"})
    post_step(
        client,
        "account",
        {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    page = client.get(step_url("verify")).content.decode()
    assert "data-passkey-ceremony" in page
    answer = authenticator.register(options_in(page))
    response = post_step(client, "verify", {"code": answer})
    assert response["Location"] == step_url("activated")
    issued.activation.refresh_from_db()
    assert issued.activation.state == Activation.State.COMPLETED
    assert DigitalKey.objects.get(kind="passkey").state == "active"


def test_the_key_page_mentions_the_passkey_only_where_the_script_shows_it(citizen, clerk):
    """The seed's intro lists 3 kinds, word for word; the sentence about the fourth is hidden
    with the passkey choice until the script finds WebAuthn."""
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    client = Client()
    open_link(client, issued.activation_link)
    post_step(client, "code", {"activation_code": issued.activation_code})
    page = client.get(step_url("key")).content.decode()
    assert "U hebt de keuze tussen 3 soorten digitale sleutels:" in page
    assert (
        "<p hidden data-webauthn-only>Op dit toestel kan u ook een vierde soort kiezen: "
        "een toegangssleutel (passkey).</p>"
    ) in page


def test_the_wizard_without_javascript_still_works_for_the_other_keys(citizen, clerk):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    client = Client()
    open_link(client, issued.activation_link)
    post_step(client, "code", {"activation_code": issued.activation_code})
    post_step(client, "key", {"kind": "email", "accept_terms": "on"})
    post_step(
        client,
        "account",
        {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    response = post_step(client, "verify", {"code": last_email_code()})
    assert response["Location"] == step_url("activated")


def test_with_every_other_kind_active_adding_is_offered_only_with_webauthn(account):
    from tests.test_signin import add_key

    add_key(account, "sms")
    add_key(account, "totp")
    page = signed_in_client(account).get("/nl/mijn-sleutels/").content.decode()
    link = re.search(r'<a class="button primary" href="/nl/mijn-sleutels/toevoegen/"[^>]*>', page)
    assert link and "hidden data-webauthn-only" in link.group(0)
    assert "/static/keys/passkey.js" in page


def test_with_a_kind_left_adding_is_offered_without_javascript(account):
    page = signed_in_client(account).get("/nl/mijn-sleutels/").content.decode()
    link = re.search(r'<a class="button primary" href="/nl/mijn-sleutels/toevoegen/"[^>]*>', page)
    assert link and "hidden" not in link.group(0)


def test_the_helpdesk_sees_each_passkeys_name_and_the_recovery_codes_left(
    with_passkey, account, authenticator, helpdesk
):
    """A citizen on the phone says "my laptop's passkey": the helpdesk's page names each one, as
    "Mijn digitale sleutels" does, and says whether recovery codes are left."""
    client = signed_in_client(account)
    add_passkey(client, account, SoftAuthenticator(ORIGIN, "testserver"), name="Laptop thuis")
    staff = Client(HTTP_ACCEPT_LANGUAGE="en")
    staff_login(staff, helpdesk)
    url = f"/admin/helpdesk/citizens/{account.citizen.pk}/"
    page = staff.get(url).content.decode()
    assert "Passkey “Mijn gsm”" in page and "Passkey “Laptop thuis”" in page
    assert "Recovery codes: none made" in page
    client.post("/nl/mijn-sleutels/herstelcodes/", {"current_password": PASSWORD})
    assert "Recovery codes: 10 unused" in staff.get(url).content.decode()
