"""Issue 25 §1 in Chromium, with its virtual authenticator: a sign-in with password and a
recovery code adds a passkey, which is on probation (the page says until when, in Brussels
time); that session may not turn on "sign in with the passkey alone" nor make new recovery
codes; the passkey alone is refused during its probation; the owner, signed in with the app,
cancels it. Screenshots of the changed pages at 1280 and 360 pixels wide
(``CSAM_SCREENSHOT_DIR``, when set)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from keys.digital_keys.passkey.models import PasskeyCredential
from keys.models import AuditEvent, DigitalKey
from keys.services import recovery
from tests.browser.test_accessibility import assert_accessible
from tests.browser.test_passkeys_browser import (  # noqa: F401 - fixtures
    PASSKEY,
    PASSWORD,
    account,
    authenticator,
    localhost,
    password_step,
    sign_in_with_app,
    sign_out,
)


def shoot(page: Page, name: str) -> None:
    """The page at 1280 and at 360 pixels wide, into ``CSAM_SCREENSHOT_DIR`` when set."""
    directory = os.environ.get("CSAM_SCREENSHOT_DIR")
    if not directory:
        return
    size = page.viewport_size
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(Path(directory) / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(size)


@pytest.fixture
def codes(account):  # noqa: F811
    return recovery.create_set(None, account)


def test_a_recovery_adds_one_passkey_on_probation_never_alone(
    page: Page,
    localhost,  # noqa: F811
    account,  # noqa: F811
    codes,
    authenticator,  # noqa: F811
):
    # Password and a recovery code: a weak session, which says so.
    password_step(page, localhost)
    page.get_by_role("link", name="Digitale sleutels kwijt? Gebruik een herstelcode").click()
    page.get_by_label("Herstelcode").fill(codes[0])
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.get_by_role("heading", name="Mijn digitale sleutels")).to_be_visible()
    expect(
        page.get_by_text("Met deze aanmelding kan u één nieuwe digitale sleutel")
    ).to_be_visible()
    shoot(page, "recovery-my-keys")

    # New recovery codes: refused, with the way to a sign-in with a key.
    page.get_by_role("link", name="Nieuwe herstelcodes aanmaken").click()
    expect(
        page.get_by_role("heading", name="Meld u aan met een van uw digitale sleutels")
    ).to_be_visible()
    expect(page.get_by_role("link", name="Aanmelden met een digitale sleutel")).to_have_attribute(
        "href", "/nl/aanmelden/?next=%2Fnl%2Fmijn-sleutels%2Fherstelcodes%2F"
    )
    assert_accessible(page, "change refused in a recovery session")
    shoot(page, "recovery-refused")
    page.get_by_role("link", name="Terug naar Mijn digitale sleutels").click()

    # One passkey: allowed, on probation, without the "alone" option.
    page.get_by_role("link", name="Een andere digitale sleutel activeren").click()
    expect(
        page.get_by_text("De digitale sleutel die u nu activeert, is 72 uur op proef")
    ).to_be_visible()
    page.get_by_label("Huidig wachtwoord").fill(PASSWORD)
    page.get_by_label(PASSKEY, exact=True).check()
    page.get_by_label("Ik aanvaard de gebruikersvoorwaarden").check()
    page.get_by_role("button", name="Digitale sleutel activeren").click()
    expect(page.get_by_role("button", name="Toegangssleutel aanmaken")).to_be_visible()
    expect(
        page.get_by_label("Laat mij ook aanmelden met enkel deze toegangssleutel")
    ).to_have_count(0)
    assert_accessible(page, "passkey step on probation")
    shoot(page, "recovery-add-passkey")
    page.get_by_label("Naam van de toegangssleutel").fill("Telefoon")
    page.get_by_role("button", name="Toegangssleutel aanmaken").click()
    expect(page.get_by_role("heading", name="Mijn digitale sleutels")).to_be_visible()
    key = DigitalKey.objects.get(kind="passkey")
    assert key.state == "active" and key.in_probation()
    assert not key.passkey.usernameless
    expect(
        page.get_by_text(re.compile(r"op proef tot .* \(Brusselse tijd\)")).first
    ).to_be_visible()
    assert_accessible(page, "my keys with a key on probation")
    shoot(page, "recovery-key-on-probation")

    # "Sign in with it alone": refused in this session.
    page.get_by_role("link", name="Aanmelden met enkel “Telefoon”").click()
    expect(
        page.get_by_role("heading", name="Meld u aan met een van uw digitale sleutels")
    ).to_be_visible()
    assert not PasskeyCredential.objects.get(key=key).usernameless
    page.get_by_role("link", name="Terug naar Mijn digitale sleutels").click()
    sign_out(page)

    # The passkey alone: refused during its probation, even were it turned on.
    PasskeyCredential.objects.filter(key=key).update(usernameless=True)
    page.goto(f"{localhost}/nl/aanmelden/")
    expect(page).to_have_url(re.compile(r"/nl/aanmelden/\?passkey=0$"))
    expect(page.get_by_text("kan hij niet alleen gebruikt worden")).to_be_visible()
    assert_accessible(page, "passkey alone refused on probation")
    shoot(page, "recovery-passkey-alone-refused")
    assert not AuditEvent.objects.filter(
        action=AuditEvent.Action.SIGNIN_SUCCEEDED, detail__usernameless=True
    ).exists()
    PasskeyCredential.objects.filter(key=key).update(usernameless=False)

    # The owner, with the app: "alone" still refused for it; the cancel link removes it.
    sign_in_with_app(page, localhost, account)
    page.get_by_role("link", name="Aanmelden met enkel “Telefoon”").click()
    expect(
        page.get_by_role("heading", name="Nog niet mogelijk voor deze digitale sleutel")
    ).to_be_visible()
    assert_accessible(page, "passkey alone refused for a key on probation")
    shoot(page, "probation-alone-refused")
    page.get_by_role("link", name="Terug naar Mijn digitale sleutels").click()
    page.get_by_role("link", name="Deze digitale sleutel annuleren").click()
    expect(page.get_by_role("heading", name=re.compile("annuleren"))).to_be_visible()
    assert_accessible(page, "cancel a key on probation")
    shoot(page, "probation-cancel")
    page.get_by_role("button", name="Deze digitale sleutel annuleren").click()
    expect(page.get_by_text("werd geannuleerd")).to_be_visible()
    key.refresh_from_db()
    assert key.state == "removed"
