"""A citizen activates each kind of key in Chromium, in Dutch, by the labels on the screen."""

import re

import pyotp
import pytest
from playwright.sync_api import Page, expect

from keys.models import DigitalKey
from keys.services import issuance
from tests.browser.conftest import latest_sms, six_digits
from tests.smtp import text_of

PASSWORD = "Correct-Horse-9x"


@pytest.fixture
def issued(site, smtp_sink, citizen, clerk):
    result = issuance.issue_activation(citizen, issued_by=clerk)
    return result


def link_from_mail(sink) -> str:
    message = sink.wait_for(lambda m: "/activeren/" in text_of(m))
    return re.search(r"(http://\S+/activeren/\S+/)", text_of(message)).group(1)


def start(page: Page, issued, smtp_sink) -> None:
    page.goto(link_from_mail(smtp_sink))
    expect(page.get_by_role("heading", name="Activatiecode ingeven")).to_be_visible()
    page.get_by_label("Activatiecode").fill(issued.formatted_code)
    page.get_by_role("button", name="Volgende").click()
    expect(page.get_by_role("heading", name="Kies uw digitale sleutel")).to_be_visible()


def choose(page: Page, label: str, phone: str | None = None) -> None:
    page.get_by_label(label, exact=True).check()
    if phone is not None:
        page.get_by_label("GSM-nummer").fill(phone)
    page.get_by_label("Ik aanvaard de gebruikersvoorwaarden").check()
    page.get_by_role("button", name="Digitale sleutel activeren").click()


def create_account(page: Page) -> None:
    expect(
        page.get_by_role("heading", name="Aanmaken van uw gebruikersnaam en wachtwoord")
    ).to_be_visible()
    page.get_by_label("Gebruikersnaam").fill("jan.peeters")
    page.get_by_label(re.compile(r"^Wachtwoord")).fill(PASSWORD)
    page.get_by_label("Bevestig wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Volgende").click()


def finish(page: Page, key_label: str, done_title: str) -> None:
    expect(page.get_by_text(f"De digitale sleutel “{key_label}” is geactiveerd.")).to_be_visible()
    page.get_by_role("button", name="Volgende").click()
    expect(page.get_by_role("heading", name=done_title)).to_be_visible()
    expect(
        page.get_by_text("Omwille van veiligheidsredenen wordt u automatisch afgemeld.")
    ).to_be_visible()


def test_email_key(page: Page, issued, smtp_sink):
    start(page, issued, smtp_sink)
    choose(page, "Beveiligingscode via e-mail")
    create_account(page)
    message = smtp_sink.wait_for(lambda m: "registratiecode" in m["Subject"].lower())
    assert "CSAM My Digital Keys" in message["From"]
    page.get_by_label("Registratiecode").fill(six_digits(text_of(message)))
    page.get_by_role("button", name="Volgende").click()
    finish(page, "Beveiligingscode via e-mail", "E-mail adres geactiveerd!")
    smtp_sink.wait_for(lambda m: "geactiveerd" in m["Subject"])
    assert DigitalKey.objects.get().state == DigitalKey.State.ACTIVE


def test_sms_key(page: Page, issued, smtp_sink, sms_dir):
    start(page, issued, smtp_sink)
    expect(page.get_by_label("GSM-nummer")).to_have_value("+32 470 12 34 56")
    choose(page, "SMS", phone="0475 99 88 77")
    create_account(page)
    message = latest_sms(sms_dir)
    assert message["to"] == "+32475998877"
    page.get_by_label("Registratiecode").fill(six_digits(message["body"]))
    page.get_by_role("button", name="Volgende").click()
    finish(page, "SMS", "GSM-nummer geactiveerd!")


def test_app_key(page: Page, issued, smtp_sink):
    start(page, issued, smtp_sink)
    choose(page, "Mobiele app")
    create_account(page)
    expect(page.get_by_role("img", name=re.compile("QR"))).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Beveiligingscode").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Volgende").click()
    finish(page, "Mobiele app", "Mobiele app geactiveerd!")


def test_two_keys_in_one_visit(page: Page, issued, smtp_sink, sms_dir):
    start(page, issued, smtp_sink)
    choose(page, "Beveiligingscode via e-mail")
    create_account(page)
    message = smtp_sink.wait_for(lambda m: "registratiecode" in m["Subject"].lower())
    page.get_by_label("Registratiecode").fill(six_digits(text_of(message)))
    page.get_by_role("button", name="Volgende").click()
    page.get_by_role("button", name="Een andere digitale sleutel activeren").click()
    expect(page.get_by_role("heading", name="Kies uw digitale sleutel")).to_be_visible()
    expect(page.get_by_label("Beveiligingscode via e-mail", exact=True)).to_have_count(0)
    choose(page, "SMS", phone="0475 99 88 77")
    # the account exists: straight to the key's verification
    expect(page.get_by_label("Registratiecode")).to_be_visible()
    page.get_by_label("Registratiecode").fill(six_digits(latest_sms(sms_dir)["body"]))
    page.get_by_role("button", name="Volgende").click()
    finish(page, "SMS", "GSM-nummer geactiveerd!")
    kinds = set(DigitalKey.objects.filter(state="active").values_list("kind", flat=True))
    assert kinds == {"email", "sms"}
