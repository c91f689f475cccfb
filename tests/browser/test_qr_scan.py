"""The QR code is read the way a phone reads it: from the pixels of the screen.

Each test takes screenshots of the page with the QR code (in Dutch, French, German and English,
on a 1280-pixel desktop and a 360-pixel phone), decodes them with zxing-cpp, parses the
``otpauth://totp/`` URI it finds, computes the code from *that* secret and activates the key
with it. Nothing is read from the text beside the image (``test_activation_flow.test_app_key``
covers that fallback).
"""

import re
from io import BytesIO
from pathlib import Path

import pyotp
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect

from keys.models import DigitalKey
from keys.services import issuance
from tests.browser.test_activation_flow import PASSWORD, choose, create_account, finish, start
from tests.browser.test_signin_flow import activate, latest_code_mail, sign_in

LANGUAGES = ("fr", "de", "en", "nl")  # Dutch last: the tests go on with the Dutch labels
WIDTHS = (1280, 360)
MIN_QR_CSS_PIXELS = 200


@pytest.fixture
def issued(site, smtp_sink, citizen, clerk):
    return issuance.issue_activation(citizen, issued_by=clerk)


def decode(image: Image.Image) -> list[str]:
    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return [result.text for result in results]


def scan(page: Page, width: int, shots: Path, name: str) -> str:
    """Screenshot the whole page at ``width`` CSS pixels and decode the one QR code on it.

    The page is shot at device scale 1 (the fewest pixels a module can get), and decoded a
    second time at half that size, as a camera held further away would see it.
    """
    page.set_viewport_size({"width": width, "height": 900})
    figure = page.locator("figure.qr")
    svg = figure.locator("svg")
    expect(svg).to_be_visible()
    box = svg.bounding_box()
    frame = figure.bounding_box()
    assert box["width"] >= MIN_QR_CSS_PIXELS, (name, box)
    assert abs(box["width"] - box["height"]) < 1, (name, box)
    # whole: inside its figure and inside the window, nothing scrolled or cut off
    assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"]
    assert frame["y"] <= box["y"] and box["y"] + box["height"] <= frame["y"] + frame["height"]
    assert frame["x"] >= 0 and frame["x"] + frame["width"] <= width, (name, frame)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    png = page.screenshot(full_page=True, path=str(shots / f"{name}-{width}.png"))
    image = Image.open(BytesIO(png)).convert("RGB")
    found = decode(image)
    assert len(found) == 1, f"{name} at {width}px: {found}"
    far = image.resize((image.width // 2, image.height // 2), Image.Resampling.BILINEAR)
    assert decode(far) == found, f"{name} at {width}px, half size"
    return found[0]


def switch_language(page: Page, language: str) -> None:
    page.locator(f'.language-switch button[value="{language}"]').click()
    expect(page.locator("html")).to_have_attribute("lang", language)


def scan_everywhere(page: Page, shots: Path) -> str:
    """The one URI the page shows in every language at every width."""
    uris = {
        scan(page, width, shots, f"{page.locator('html').get_attribute('lang')}-start")
        for width in WIDTHS
    }
    for language in LANGUAGES:
        switch_language(page, language)
        for width in WIDTHS:
            uris.add(scan(page, width, shots, language))
    assert len(uris) == 1, uris
    return uris.pop()


def totp_from(uri: str, *, issuer: str, account: str) -> pyotp.TOTP:
    assert uri.startswith("otpauth://totp/"), uri
    assert uri.isascii(), uri
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    assert (totp.issuer, totp.name) == (issuer, account)
    assert re.fullmatch(r"[A-Z2-7]{32}", totp.secret)
    return totp


def test_wizard_app_key_scanned_from_the_screen(page: Page, issued, smtp_sink, tmp_path):
    start(page, issued, smtp_sink)
    choose(page, "Mobiele app")
    create_account(page)
    uri = scan_everywhere(page, tmp_path)
    totp = totp_from(uri, issuer="CSAM", account="jan.peeters")
    page.get_by_label("Beveiligingscode").fill(totp.now())
    page.get_by_role("button", name="Volgende").click()
    finish(page, "Mobiele app", "Mobiele app geactiveerd!")
    key = DigitalKey.objects.get(kind="totp")
    assert key.state == DigitalKey.State.ACTIVE


def test_self_service_app_key_scanned_from_the_screen(
    page: Page, issued, smtp_sink, sms_dir, tmp_path
):
    activate(page, issued, smtp_sink, sms_dir, "email")
    seen = len(smtp_sink.messages)
    sign_in(page, "Beveiligingscode via e-mail", lambda: latest_code_mail(smtp_sink, seen))
    page.get_by_role("link", name="Een andere digitale sleutel activeren").click()
    expect(page.get_by_label("Mobiele app", exact=True)).to_be_visible()
    current_password = page.get_by_label("Huidig wachtwoord")
    if current_password.count():  # a new way to sign in may ask for the password first
        current_password.fill(PASSWORD)
    page.get_by_label("Mobiele app", exact=True).check()
    page.get_by_label("Ik aanvaard de gebruikersvoorwaarden").check()
    page.get_by_role("button", name="Digitale sleutel activeren").click()
    uri = scan_everywhere(page, tmp_path)
    totp = totp_from(uri, issuer="CSAM", account="jan.peeters")
    page.get_by_label("Beveiligingscode").fill(totp.now())
    page.get_by_role("button", name="Volgende").click()
    expect(page.get_by_text("De digitale sleutel “Mobiele app” is geactiveerd.")).to_be_visible()
    assert DigitalKey.objects.get(kind="totp").state == DigitalKey.State.ACTIVE


def test_accented_issuer_and_username_scan_and_round_trip(
    page: Page, issued, smtp_sink, settings, tmp_path
):
    settings.CSAM = {"TOTP_ISSUER": "Fédéral"}
    start(page, issued, smtp_sink)
    choose(page, "Mobiele app")
    expect(
        page.get_by_role("heading", name="Aanmaken van uw gebruikersnaam en wachtwoord")
    ).to_be_visible()
    page.get_by_label("Gebruikersnaam").fill("Müller")
    page.get_by_label(re.compile(r"^Wachtwoord")).fill(PASSWORD)
    page.get_by_label("Bevestig wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Volgende").click()
    uris = {scan(page, width, tmp_path, "accented") for width in WIDTHS}
    assert len(uris) == 1, uris
    uri = uris.pop()
    assert "F%C3%A9d%C3%A9ral:M%C3%BCller?" in uri
    totp = totp_from(uri, issuer="Fédéral", account="Müller")
    page.get_by_label("Beveiligingscode").fill(totp.now())
    page.get_by_role("button", name="Volgende").click()
    finish(page, "Mobiele app", "Mobiele app geactiveerd!")
    assert DigitalKey.objects.get(kind="totp").user.get_username() == "Müller"
