"""A clerk's first sign-in at the back office, in a browser (issue 25 §3): password, then the
app key set up by scanning the QR code from the screen's pixels (zxing-cpp, as
``test_qr_scan`` does), then the admin; a later sign-in asks for the code. Screenshots of both
steps go to ``SCREENSHOT_DIR`` when it is set."""

import os
from io import BytesIO
from pathlib import Path

import pyotp
import pytest
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Page, expect

from keys.models import AuditEvent, DigitalKey
from tests.browser import test_passkeys_browser
from tests.browser.helpdesk_data import STAFF_PASSWORD, staff_code
from tests.browser.test_accessibility import assert_accessible
from tests.browser.test_qr_scan import decode, totp_from

# the passkey browser tests' fixtures: the site on "localhost" (WebAuthn needs a domain), and
# a virtual authenticator
localhost = pytest.fixture(test_passkeys_browser.localhost.__wrapped__, name="localhost")
authenticator = pytest.fixture(
    test_passkeys_browser.authenticator.__wrapped__, name="authenticator"
)


def password_step(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.locator('input[type="submit"]').click()


def test_a_clerks_first_sign_in_sets_up_the_app_key(page: Page, site, clerk, tmp_path):
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{site.url}/admin/login/")
    page.screenshot(path=str(shots / "staff-login.png"), full_page=True)
    assert_accessible(page, "staff login")
    password_step(page, site.url, clerk.username)
    expect(page.get_by_role("heading", name="Stel uw tweede factor in")).to_be_visible()
    # the admin stays closed until the second factor is set up
    page.screenshot(path=str(shots / "staff-enrolment.png"), full_page=True)
    assert_accessible(page, "staff enrolment")
    image = Image.open(BytesIO(page.locator("figure.qr").screenshot())).convert("RGB")
    found = decode(image)
    assert len(found) == 1, found
    totp = totp_from(found[0], issuer="CSAM", account=clerk.username)
    page.get_by_label("Beveiligingscode").fill(totp.now())
    page.get_by_role("button", name="Volgende").click()
    expect(page.locator("#user-tools")).to_be_visible()
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.STAFF_FACTOR_ENROLLED, actor=clerk
    ).exists()
    key = DigitalKey.objects.get(user=clerk, state=DigitalKey.State.ACTIVE)

    # signed out, the next sign-in asks for the code (no QR code, no secret)
    page.locator("#logout-form button").click()
    password_step(page, site.url, clerk.username)
    expect(page.get_by_role("heading", name="Tweede factor")).to_be_visible()
    expect(page.locator("figure.qr")).to_have_count(0)
    page.screenshot(path=str(shots / "staff-second-factor.png"), full_page=True)
    page.get_by_label("Beveiligingscode").fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.locator("#error-summary")).to_be_visible()
    page.screenshot(path=str(shots / "staff-second-factor-error.png"), full_page=True)
    assert_accessible(page, "staff second factor, wrong code")
    page.get_by_label("Beveiligingscode").fill(staff_code(key))
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.locator("#user-tools")).to_be_visible()
    assert pyotp.TOTP(totp.secret).at(timezone.now())  # the scanned secret is the key's


def test_a_helpdesk_agents_passkey_as_second_factor(
    page: Page, localhost, authenticator, helpdesk, tmp_path
):
    """The passkey ceremony in the browser (a virtual authenticator): made at the first
    sign-in, used at the next one."""
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    password_step(page, localhost, helpdesk.username)
    page.get_by_role("link", name="Gebruik in de plaats: Toegangssleutel (passkey)").click()
    expect(page.locator("figure.qr")).to_have_count(0)
    page.screenshot(path=str(shots / "staff-enrolment-passkey.png"), full_page=True)
    assert_accessible(page, "staff passkey enrolment")
    page.get_by_role("button", name="Toegangssleutel aanmaken").click()
    expect(page.locator("#user-tools")).to_be_visible()
    key = DigitalKey.objects.get(user=helpdesk, state=DigitalKey.State.ACTIVE)
    assert key.kind == "passkey" and not key.passkey.usernameless

    page.locator("#logout-form button").click()
    password_step(page, localhost, helpdesk.username)
    expect(page.get_by_role("heading", name="Tweede factor")).to_be_visible()
    page.get_by_role("button", name="Uw toegangssleutel gebruiken").click()
    expect(page.locator("#user-tools")).to_be_visible()
