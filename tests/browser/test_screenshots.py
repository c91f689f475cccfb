"""Screenshots of every wizard step, in Dutch, for the README.

They are always taken (and checked to be real images); ``make screenshots`` keeps them in
``docs/screenshots`` by setting ``SCREENSHOT_DIR``.
"""

import os
import re
from pathlib import Path

import pyotp
from playwright.sync_api import Page, expect

from keys.services import issuance
from tests.smtp import text_of

PASSWORD = "Correct-Horse-9x"


def test_screenshot_every_step(page: Page, site, smtp_sink, citizen, clerk, tmp_path):
    target = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 900, "height": 900})
    shots = []

    def shot(name: str) -> None:
        path = target / f"{len(shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    issued = issuance.issue_activation(citizen, issued_by=clerk)
    message = smtp_sink.wait_for(lambda m: "/activeren/" in text_of(m))
    page.goto(re.search(r"(http://\S+/activeren/\S+/)", text_of(message)).group(1))
    shot("activatiecode")
    page.get_by_label("Activatiecode").fill(issued.formatted_code)
    page.get_by_role("button", name="Volgende").click()
    page.get_by_label("Mobiele app", exact=True).check()
    page.get_by_label("Ik aanvaard de gebruikersvoorwaarden").check()
    shot("digitale-sleutel-kiezen")
    page.get_by_role("button", name="Digitale sleutel activeren").click()
    page.get_by_label("Gebruikersnaam").fill("jan.peeters")
    page.get_by_label(re.compile(r"^Wachtwoord")).fill(PASSWORD)
    page.get_by_label("Bevestig wachtwoord").fill(PASSWORD)
    shot("gebruikersnaam-en-wachtwoord")
    page.get_by_role("button", name="Volgende").click()
    shot("mobiele-app-activeren")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Beveiligingscode").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Volgende").click()
    shot("sleutel-geactiveerd")
    page.get_by_role("button", name="Een andere digitale sleutel activeren").click()
    page.get_by_label("Beveiligingscode via e-mail", exact=True).check()
    page.get_by_label("Ik aanvaard de gebruikersvoorwaarden").check()
    page.get_by_role("button", name="Digitale sleutel activeren").click()
    shot("e-mail-activeren")
    code = re.search(
        r"\b(\d{6})\b",
        text_of(smtp_sink.wait_for(lambda m: "registratiecode" in m["Subject"].lower())),
    ).group(1)
    page.get_by_label("Registratiecode").fill(code)
    page.get_by_role("button", name="Volgende").click()
    page.get_by_role("button", name="Volgende").click()
    expect(page.get_by_role("heading", name="E-mail adres geactiveerd!")).to_be_visible()
    shot("afgemeld")
    page.get_by_role("link", name="Aanmelden “Mijn digitale sleutel”").first.click()
    page.get_by_label("Gebruikersnaam").fill("jan.peeters")
    page.get_by_label(re.compile(r"^Wachtwoord")).fill(PASSWORD)
    page.get_by_role("button", name="Aanmelden").click()
    page.get_by_label("Mobiele app", exact=True).check()
    page.get_by_role("button", name="Volgende").click()
    page.get_by_label("Beveiligingscode").fill(
        pyotp.TOTP(secret).at(page.evaluate("Date.now()") / 1000 + 30)
    )
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.get_by_role("heading", name="Mijn digitale sleutels")).to_be_visible()
    shot("mijn-digitale-sleutels")
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{site.url}/nl/activeren/verlopen-of-onbekend/")
    shot("onbekende-link-gsm")
    for path in shots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5000


def test_screenshot_the_funnel(page: Page, site, helpdesk, tmp_path):
    """The helpdesk's activation funnel (twelve weeks of three offices), in Dutch."""
    from django.urls import reverse

    from tests.browser.helpdesk_data import funnel_data, staff_sign_in

    target = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    funnel_data()
    page.set_viewport_size({"width": 1440, "height": 900})
    staff_sign_in(page, site.url, helpdesk.username)
    page.goto(site.url + reverse("helpdesk:funnel"))
    expect(page.locator("svg.chart.lines")).to_be_visible()
    path = target / "10-funnel.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
