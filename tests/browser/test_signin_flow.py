"""Activate a key, sign in with it (one run per kind), add a second key, sign in with that."""

import re

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import latest_sms, six_digits
from tests.browser.test_activation_flow import PASSWORD, choose, create_account, finish, start
from tests.smtp import text_of


@pytest.fixture
def issued(site, smtp_sink, citizen, clerk):
    from keys.services import issuance

    return issuance.issue_activation(citizen, issued_by=clerk)


def latest_code_mail(sink, seen: int) -> str:
    message = sink.wait_for(
        lambda m: (
            re.search(r"\b\d{6}\b", text_of(m))
            and "/activeren/" not in text_of(m)
            and sink.messages.index(m) >= seen
        )
    )
    return six_digits(text_of(message))


def activate(page: Page, issued, smtp_sink, sms_dir, kind: str) -> str | None:
    """Activate one key of ``kind`` through the wizard; the TOTP secret when it is the app."""
    start(page, issued, smtp_sink)
    secret = None
    if kind == "email":
        choose(page, "Beveiligingscode via e-mail")
        create_account(page)
        page.get_by_label("Registratiecode").fill(latest_code_mail(smtp_sink, 1))
        title = "E-mail adres geactiveerd!"
        label = "Beveiligingscode via e-mail"
    elif kind == "sms":
        choose(page, "SMS", phone="0475 99 88 77")
        create_account(page)
        page.get_by_label("Registratiecode").fill(six_digits(latest_sms(sms_dir)["body"]))
        title, label = "GSM-nummer geactiveerd!", "SMS"
    else:
        choose(page, "Mobiele app")
        create_account(page)
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        page.get_by_label("Beveiligingscode").fill(pyotp.TOTP(secret).now())
        title, label = "Mobiele app geactiveerd!", "Mobiele app"
    page.get_by_role("button", name="Volgende").click()
    finish(page, label, title)
    return secret


def sign_in(page: Page, key_label: str, code_source) -> None:
    page.get_by_role("link", name="Aanmelden “Mijn digitale sleutel”").first.click()
    expect(page.get_by_role("heading", name="Aanmelden")).to_be_visible()
    page.get_by_label("Gebruikersnaam").fill("jan.peeters")
    page.get_by_label(re.compile(r"^Wachtwoord")).fill(PASSWORD)
    page.get_by_role("button", name="Aanmelden").click()
    page.get_by_label(key_label, exact=True).check()
    page.get_by_role("button", name="Volgende").click()
    page.get_by_label("Beveiligingscode").fill(code_source())
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.get_by_role("heading", name="Mijn digitale sleutels")).to_be_visible()


@pytest.mark.parametrize("kind", ["email", "sms", "totp"])
def test_activate_then_sign_in(page: Page, issued, smtp_sink, sms_dir, kind):
    secret = activate(page, issued, smtp_sink, sms_dir, kind)
    seen = len(smtp_sink.messages)
    sources = {
        "email": ("Beveiligingscode via e-mail", lambda: latest_code_mail(smtp_sink, seen)),
        "sms": ("SMS", lambda: six_digits(latest_sms(sms_dir)["body"])),
        "totp": (
            "Mobiele app",
            lambda: pyotp.TOTP(secret).at(page.evaluate("Date.now()") / 1000 + 30),
        ),
    }
    label, source = sources[kind]
    sign_in(page, label, source)
    expect(page.get_by_text(label, exact=True)).to_be_visible()


def test_add_a_second_key_yourself_and_sign_in_with_it(page: Page, issued, smtp_sink, sms_dir):
    activate(page, issued, smtp_sink, sms_dir, "email")
    seen = len(smtp_sink.messages)
    sign_in(page, "Beveiligingscode via e-mail", lambda: latest_code_mail(smtp_sink, seen))
    page.get_by_role("link", name="Een andere digitale sleutel activeren").click()
    page.get_by_label("Huidig wachtwoord").fill(PASSWORD)  # a new way to sign in: password first
    page.get_by_label("Mobiele app", exact=True).check()
    page.get_by_label("Ik aanvaard de gebruikersvoorwaarden").check()
    page.get_by_role("button", name="Digitale sleutel activeren").click()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Beveiligingscode").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Volgende").click()
    expect(page.get_by_text("De digitale sleutel “Mobiele app” is geactiveerd.")).to_be_visible()
    page.get_by_role("button", name="Afmelden", exact=True).click()
    expect(page.get_by_role("heading", name="U bent afgemeld")).to_be_visible()
    page.goto(page.url.split("/nl/")[0] + "/nl/")
    # the next time step: the code used to activate cannot be replayed
    sign_in(
        page, "Mobiele app", lambda: pyotp.TOTP(secret).at(page.evaluate("Date.now()") / 1000 + 30)
    )
