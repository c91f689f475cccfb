"""Passkeys in Chromium with its virtual authenticator (the DevTools Protocol's WebAuthn
domain): made in the wizard and in "Mijn digitale sleutels", used after the password and alone
(the username field's autofill), removed, and a copied authenticator (its counter set back)
refused. Recovery codes shown, downloaded and printed. axe on every new page.

WebAuthn refuses an IP address as relying party id, so these pages are opened on
``http://localhost:PORT`` and the settings say ``localhost``."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from keys import crypto
from keys.digital_keys import passkey as passkeys
from keys.digital_keys.passkey.models import PasskeyCredential
from keys.models import AuditEvent, DigitalKey, RecoveryCode, User
from keys.services import activation as flow
from keys.services import issuance
from tests.browser.test_accessibility import assert_accessible
from tests.smtp import text_of

PASSWORD = "Correct-Horse-9x"
PASSKEY = "Toegangssleutel (passkey)"


@pytest.fixture
def localhost(live_server, settings):
    url = live_server.url.replace("127.0.0.1", "localhost")
    settings.SITE_URL = url
    settings.WEBAUTHN_RP_ID = "localhost"
    settings.WEBAUTHN_ORIGIN = url
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    return url


@pytest.fixture
def authenticator(page: Page):
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


@pytest.fixture
def account(citizen, db):
    """A citizen who activated the app key (its code computed here)."""
    user = User.objects.create_user("jan.peeters", PASSWORD)
    citizen.account = user
    citizen.save()
    key = flow.enrol_key(user, "totp", None)
    DigitalKey.objects.filter(pk=key.pk).update(state="active", activated_at=timezone.now())
    return user


def totp_now(user, offset: int = 0) -> str:
    """The app's code, ``offset`` time steps on (a step is accepted once)."""
    key = user.digital_keys.get(kind="totp")
    totp = pyotp.TOTP(crypto.decrypt(key.secret_encrypted))
    return totp.at(timezone.now().timestamp() + 30 * offset)


def password_step(page: Page, base: str) -> None:
    # ?passkey=0: the page asks no passkey of the autofill, which Chromium's virtual
    # authenticator would answer at once (a person chooses, or types the username instead).
    page.goto(f"{base}/nl/aanmelden/?passkey=0")
    page.get_by_label("Gebruikersnaam").fill("jan.peeters")
    page.get_by_label(re.compile(r"^Wachtwoord")).fill(PASSWORD)
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.get_by_role("heading", name="Kies uw digitale sleutel")).to_be_visible()


def sign_in_with_app(page: Page, base: str, user, offset: int = 0) -> None:
    password_step(page, base)
    page.get_by_label("Mobiele app", exact=True).check()
    page.get_by_role("button", name="Volgende").click()
    page.get_by_label("Beveiligingscode").fill(totp_now(user, offset))
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.get_by_role("heading", name="Mijn digitale sleutels")).to_be_visible()


def sign_in_with_passkey(page: Page, base: str, name: str) -> None:
    password_step(page, base)
    page.get_by_label(f"{PASSKEY} “{name}”", exact=True).check()
    page.get_by_role("button", name="Volgende").click()
    expect(page.get_by_role("heading", name="Aanmelden met uw toegangssleutel")).to_be_visible()
    assert_accessible(page, "passkey sign-in")
    page.get_by_role("button", name="Uw toegangssleutel gebruiken").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Afmelden", exact=True).click()


def test_wizard_passkey_recovery_codes_and_both_sign_ins(
    page: Page, localhost, smtp_sink, citizen, clerk, authenticator
):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    link = re.search(
        r"(http://\S+/activeren/\S+/)",
        text_of(smtp_sink.wait_for(lambda m: "/activeren/" in text_of(m))),
    ).group(1)
    assert link.startswith(localhost)
    page.goto(link)
    page.get_by_label("Activatiecode").fill(issued.formatted_code)
    page.get_by_role("button", name="Volgende").click()
    # The browser can make passkeys: the script shows the choice, and says the seed's "3 kinds"
    # have a fourth here.
    expect(page.get_by_label(PASSKEY, exact=True)).to_be_visible()
    expect(page.get_by_text("Op dit toestel kan u ook een vierde soort kiezen")).to_be_visible()
    assert_accessible(page, "key choice with passkey")
    page.get_by_label(PASSKEY, exact=True).check()
    page.get_by_label("Ik aanvaard de gebruikersvoorwaarden").check()
    page.get_by_role("button", name="Digitale sleutel activeren").click()
    page.get_by_label("Gebruikersnaam").fill("jan.peeters")
    page.get_by_label(re.compile(r"^Wachtwoord")).fill(PASSWORD)
    page.get_by_label("Bevestig wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Volgende").click()
    expect(page.get_by_role("button", name="Toegangssleutel aanmaken")).to_be_visible()
    expect(page.get_by_text("Deze browser kan geen toegangssleutels gebruiken")).to_be_hidden()
    assert_accessible(page, "wizard passkey step")
    page.get_by_label("Naam van de toegangssleutel").fill("Mijn laptop")
    page.get_by_label("Laat mij ook aanmelden met enkel deze toegangssleutel").check()
    page.get_by_role("button", name="Toegangssleutel aanmaken").click()
    expect(page.get_by_text(f"De digitale sleutel “{PASSKEY}” is geactiveerd.")).to_be_visible()
    credential = PasskeyCredential.objects.get()
    assert credential.name == "Mijn laptop" and credential.usernameless

    # Recovery codes, offered now that a first key is active.
    assert_accessible(page, "activated with recovery offer")
    page.get_by_role("button", name="Herstelcodes aanmaken").click()
    expect(page.get_by_role("heading", name="Uw herstelcodes")).to_be_visible()
    codes = page.locator("ol.recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    expect(page.get_by_role("button", name="De codes afdrukken")).to_be_visible()
    assert_accessible(page, "recovery codes shown")
    with page.expect_download() as download:
        page.get_by_role("link", name="De codes downloaden (tekstbestand)").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert all(code in text for code in codes)
    assert RecoveryCode.objects.count() == 10
    page.get_by_role("link", name="Ik heb mijn codes bewaard: verder").click()
    expect(page.get_by_role("button", name="Herstelcodes aanmaken")).to_have_count(0)
    page.get_by_role("button", name="Volgende").click()
    expect(page.get_by_role("heading", name="Toegangssleutel geactiveerd!")).to_be_visible()

    # Username-less: the sign-in page asks for a passkey in the username field's autofill
    # (conditional mediation); Chromium's virtual authenticator answers at once, as a citizen
    # choosing the suggestion would.
    page.goto(f"{localhost}/nl/aanmelden/")
    expect(page.get_by_role("heading", name="Mijn digitale sleutels")).to_be_visible()
    expect(page.get_by_text("Mijn laptop", exact=True)).to_be_visible()
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.SIGNIN_SUCCEEDED, detail__usernameless=True
    ).exists()


def test_self_service_add_sign_in_clone_and_remove(page: Page, localhost, account, authenticator):
    cdp, authenticator_id = authenticator
    sign_in_with_app(page, localhost, account)
    page.get_by_role("link", name="Een andere digitale sleutel activeren").click()
    page.get_by_label("Huidig wachtwoord").fill(PASSWORD)
    expect(page.get_by_label(PASSKEY, exact=True)).to_be_visible()
    assert_accessible(page, "add a key with passkey")
    page.get_by_label(PASSKEY, exact=True).check()
    page.get_by_label("Ik aanvaard de gebruikersvoorwaarden").check()
    page.get_by_role("button", name="Digitale sleutel activeren").click()
    assert_accessible(page, "self-service passkey step")
    page.get_by_label("Naam van de toegangssleutel").fill("Telefoon")
    page.get_by_role("button", name="Toegangssleutel aanmaken").click()
    expect(page.get_by_role("heading", name="Mijn digitale sleutels")).to_be_visible()
    expect(page.get_by_text("Telefoon", exact=True)).to_be_visible()
    assert_accessible(page, "my keys with a passkey and recovery codes")
    sign_out(page)

    # Not turned on for signing in alone: offered by the autofill, but refused.
    page.goto(f"{localhost}/nl/aanmelden/")
    expect(page).to_have_url(re.compile(r"/nl/aanmelden/\?passkey=0$"))
    expect(
        page.get_by_text("Met deze toegangssleutel kan u zich hier niet aanmelden")
    ).to_be_visible()
    assert_accessible(page, "passkey alone refused")

    # Sign in with it: the counter moves on.
    sign_in_with_passkey(page, localhost, "Telefoon")
    expect(page.get_by_role("heading", name="Mijn digitale sleutels")).to_be_visible()
    stored = PasskeyCredential.objects.get().sign_count
    assert stored >= 1
    sign_out(page)

    # A copy of the authenticator: same key, counter set back.
    original = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    copy = dict(original["credentials"][0])
    cdp.send("WebAuthn.clearCredentials", {"authenticatorId": authenticator_id})
    copy["signCount"] = 0
    cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator_id, "credential": copy})
    sign_in_with_passkey(page, localhost, "Telefoon")
    expect(page.locator(".field-error")).to_contain_text("kon niet worden gecontroleerd")
    assert_accessible(page, "passkey refused")
    assert AuditEvent.objects.filter(action=passkeys.CLONE_DETECTED).exists()
    assert PasskeyCredential.objects.get().sign_count == stored

    # Remove it (with the app, then the passkey page).
    sign_in_with_app(page, localhost, account, offset=1)
    page.get_by_role("link", name="Aanmelden met enkel “Telefoon”").click()
    assert_accessible(page, "turn on the passkey alone")
    page.get_by_role("link", name="Annuleren").click()
    page.get_by_role("link", name="Toegangssleutel “Telefoon” verwijderen").click()
    page.get_by_label("Huidig wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Digitale sleutel verwijderen").click()
    expect(page.get_by_role("heading", name="Mijn digitale sleutels")).to_be_visible()
    assert DigitalKey.objects.get(kind="passkey").state == "removed"


def test_recovery_code_sign_in_and_new_set(page: Page, localhost, account):
    from keys.services import recovery

    codes = recovery.create_set(None, account)
    password_step(page, localhost)
    page.get_by_role("link", name="Digitale sleutels kwijt? Gebruik een herstelcode").click()
    assert_accessible(page, "recovery code sign-in")
    page.get_by_label("Herstelcode").fill("AAAAA-22222")
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.locator(".field-error")).to_be_visible()
    assert_accessible(page, "recovery code sign-in with an error")
    page.get_by_label("Herstelcode").fill(codes[0])
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.get_by_role("heading", name="Mijn digitale sleutels")).to_be_visible()
    expect(page.get_by_text("U hebt nog 9 codes")).to_be_visible()
    # A sign-in with a recovery code makes no new set (issue 25): a sign-in with a key does,
    # and comes back to the page.
    page.get_by_role("link", name="Nieuwe herstelcodes aanmaken").click()
    page.get_by_role("link", name="Aanmelden met een digitale sleutel").click()
    page.get_by_label("Gebruikersnaam").fill("jan.peeters")
    page.get_by_label(re.compile(r"^Wachtwoord")).fill(PASSWORD)
    page.get_by_role("button", name="Aanmelden").click()
    page.get_by_label("Mobiele app", exact=True).check()
    page.get_by_role("button", name="Volgende").click()
    page.get_by_label("Beveiligingscode").fill(totp_now(account))
    page.get_by_role("button", name="Aanmelden").click()
    expect(page).to_have_url(re.compile(r"/nl/mijn-sleutels/herstelcodes/$"))
    assert_accessible(page, "new recovery codes")
    page.get_by_label("Huidig wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Nieuwe herstelcodes aanmaken").click()
    expect(page.locator("ol.recovery-codes code")).to_have_count(10)
    assert recovery.remaining(account) == 10
