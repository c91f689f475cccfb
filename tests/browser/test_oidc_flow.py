"""A government service signs a citizen in with their digital keys, in Chromium.

The demo service (demo_service/app.py, Authlib) runs beside the live server; it verifies the
ID token's signature against the provider's JWKS and its iss, aud, nonce, acr and amr. The app
key's secret comes from the QR code's pixels (zxing-cpp), as a phone would read it.
"""

import re
import threading

import pyotp
import pytest
from playwright.sync_api import Page, expect

from demo_service.app import DemoConfig, serve
from keys.services import issuance
from oidc.models import Consent
from oidc.services.registration import register
from tests.browser.test_accessibility import assert_accessible
from tests.browser.test_activation_flow import PASSWORD, choose, create_account, finish, start
from tests.browser.test_qr_scan import scan, totp_from
from tests.browser.test_signin_flow import latest_code_mail

LEVEL_400 = "urn:be:fedict:iam:fas:citizen:Level400"


@pytest.fixture
def issued(site, smtp_sink, citizen, clerk):
    return issuance.issue_activation(citizen, issued_by=clerk)


@pytest.fixture
def demo(site):
    """The demo service on a free port of 127.0.0.1 (the provider is on localhost: two hosts,
    two sets of cookies), registered as a service allowed the national register number."""
    server = serve(DemoConfig("", "", "", ""), port=0)
    base = f"http://127.0.0.1:{server.server_port}"
    registered = register(
        name="Demo service",
        redirect_uris=[f"{base}/callback"],
        post_logout_redirect_uris=[f"{base}/"],
        allow_nrn=True,
    )
    app = server.get_app()
    app.config = DemoConfig(
        provider=site.url,
        client_id=registered.client_id,
        client_secret=registered.client_secret,
        redirect_uri=f"{base}/callback",
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base, app
    server.shutdown()
    server.server_close()


def activate_app_and_email_keys(page: Page, issued, smtp_sink, tmp_path) -> pyotp.TOTP:
    """The wizard: the app key from the QR code's pixels, then the e-mail key."""
    start(page, issued, smtp_sink)
    choose(page, "Mobiele app")
    create_account(page)
    totp = totp_from(scan(page, 1280, tmp_path, "oidc"), issuer="CSAM", account="jan.peeters")
    page.get_by_label("Beveiligingscode").fill(totp.now())
    page.get_by_role("button", name="Volgende").click()
    page.get_by_role("button", name="Een andere digitale sleutel activeren").click()
    seen = len(smtp_sink.messages)
    choose(page, "Beveiligingscode via e-mail")
    page.get_by_label("Registratiecode").fill(latest_code_mail(smtp_sink, seen))
    page.get_by_role("button", name="Volgende").click()
    finish(page, "Beveiligingscode via e-mail", "E-mail adres geactiveerd!")
    return totp


def provider_sign_in(page: Page, key_label: str, code_source) -> None:
    expect(page.get_by_role("heading", name="Aanmelden")).to_be_visible()
    page.get_by_label("Gebruikersnaam").fill("jan.peeters")
    page.get_by_label(re.compile(r"^Wachtwoord")).fill(PASSWORD)
    page.get_by_role("button", name="Aanmelden").click()
    page.get_by_label(key_label, exact=True).check()
    page.get_by_role("button", name="Volgende").click()
    page.get_by_label("Beveiligingscode").fill(code_source())
    page.get_by_role("button", name="Aanmelden").click()


def test_a_service_signs_a_citizen_in_with_the_app_key_then_the_email_key(
    page: Page, issued, smtp_sink, demo, site, tmp_path
):
    base, app = demo
    totp = activate_app_and_email_keys(page, issued, smtp_sink, tmp_path)
    # signed out by the wizard; at the service, sign in with "My digital keys"
    page.goto(base + "/")
    page.get_by_role("link", name="Sign in with “My digital keys”").click()
    expect(page).to_have_url(re.compile(r"^http://localhost:\d+/nl/aanmelden/"))
    provider_sign_in(page, "Mobiele app", lambda: totp.at(page.evaluate("Date.now()") / 1000 + 30))
    # the first time: what the service receives
    expect(page.get_by_role("heading", name="Aanmelden bij Demo service")).to_be_visible()
    expect(page.get_by_text("uw rijksregisternummer")).to_be_visible()
    expect(page.get_by_text("uw naam (Jan Peeters) en uw taal (Nederlands)")).to_be_visible()
    assert_accessible(page, "consent")
    page.get_by_role("button", name="Toestaan en verdergaan").click()
    # back at the service, which checked the ID token with Authlib
    expect(page.get_by_role("heading", name="You are signed in")).to_be_visible()
    expect(page.get_by_text("Jan Peeters")).to_be_visible()
    expect(page.get_by_text("85073003328")).to_be_visible()
    expect(page.get_by_text(f"substantial ({LEVEL_400})")).to_be_visible()
    expect(page.get_by_text("pwd otp", exact=True)).to_be_visible()
    (session,) = [s for s in app.sessions.values() if s.claims]
    assert session.claims["acr"] == LEVEL_400
    assert session.claims["amr"] == ["pwd", "otp"]
    assert session.claims["aud"] == app.config.client_id
    assert session.claims["iss"] == site.url
    first_sub = session.claims["sub"]

    # the citizen's page lists the service
    page.goto(site.url + "/nl/mijn-sleutels/")
    expect(page.get_by_role("heading", name="Diensten waar u zich aanmeldt")).to_be_visible()
    expect(page.get_by_text("Demo service", exact=True)).to_be_visible()
    assert_accessible(page, "my keys with a service")

    # the service signs out at the provider too (RP-initiated logout), and back
    page.goto(base + "/")
    page.get_by_role("link", name="Sign out").click()
    expect(page).to_have_url(base + "/")
    page.goto(site.url + "/nl/mijn-sleutels/")
    expect(page.get_by_role("heading", name="Aanmelden")).to_be_visible()

    # a second sign-in with the e-mail key: no consent asked again
    page.goto(base + "/")
    page.get_by_role("link", name="Sign in with “My digital keys”").click()
    seen = len(smtp_sink.messages)
    provider_sign_in(page, "Beveiligingscode via e-mail", lambda: latest_code_mail(smtp_sink, seen))
    expect(page.get_by_role("heading", name="You are signed in")).to_be_visible()
    expect(page.get_by_text("pwd email", exact=True)).to_be_visible()
    (session,) = [s for s in app.sessions.values() if s.claims]
    assert session.claims["amr"] == ["pwd", "email"]
    assert session.claims["sub"] == first_sub

    # Level500, the eID card's: no key of "My digital keys" gives it; before any sign-in a
    # page says why, and the way back tells the service
    page.get_by_role("link", name="Sign out").click()
    page.get_by_role("link", name="Sign in, asking for the eID card’s level (Level500)").click()
    expect(page.get_by_text("eID-kaart of itsme (“hoog”)")).to_be_visible()
    expect(
        page.get_by_role(
            "heading", name="Uw digitale sleutels geven niet het niveau dat deze dienst vraagt"
        )
    ).to_be_visible()
    assert_accessible(page, "level refused")
    page.get_by_role("link", name="Terug naar Demo service").click()
    expect(page.locator("#error")).to_contain_text("unmet_authentication_requirements")


def test_withdrawn_consent_is_asked_again(page: Page, issued, smtp_sink, demo, site, tmp_path):
    base, _app = demo
    totp = activate_app_and_email_keys(page, issued, smtp_sink, tmp_path)
    page.goto(base + "/login")
    provider_sign_in(page, "Mobiele app", lambda: totp.at(page.evaluate("Date.now()") / 1000 + 30))
    page.get_by_role("button", name="Toestaan en verdergaan").click()
    expect(page.get_by_role("heading", name="You are signed in")).to_be_visible()
    page.goto(site.url + "/nl/mijn-sleutels/")
    page.get_by_role("button", name="De toestemming voor “Demo service” intrekken").click()
    expect(page.get_by_text("“Demo service” ontvangt uw gegevens niet meer")).to_be_visible()
    assert not Consent.objects.exists()
    page.goto(base + "/login")
    expect(page.get_by_role("heading", name="Aanmelden bij Demo service")).to_be_visible()


@pytest.mark.parametrize("language", ["nl", "fr", "de", "en"])
def test_the_error_page_has_no_axe_violation(page: Page, site, language):
    page.goto(f"{site.url}/oidc/authorize/?client_id=nobody&ui_locales={language}")
    expect(page.locator("html")).to_have_attribute("lang", language)
    assert_accessible(page, f"{language} error page")


def test_logout_without_a_hint_asks_first(page: Page, issued, smtp_sink, demo, site, tmp_path):
    base, _app = demo
    totp = activate_app_and_email_keys(page, issued, smtp_sink, tmp_path)
    page.goto(base + "/login")
    provider_sign_in(page, "Mobiele app", lambda: totp.at(page.evaluate("Date.now()") / 1000 + 30))
    page.get_by_role("button", name="Toestaan en verdergaan").click()
    expect(page.get_by_role("heading", name="You are signed in")).to_be_visible()
    page.goto(site.url + "/oidc/logout/")
    expect(page.get_by_role("heading", name="Afmelden")).to_be_visible()
    assert_accessible(page, "logout confirmation")
    page.get_by_role("button", name="Afmelden").click()
    page.goto(site.url + "/nl/mijn-sleutels/")
    expect(page.get_by_role("heading", name="Aanmelden")).to_be_visible()
