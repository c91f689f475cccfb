"""Security headers on every page, and nothing inline that the CSP would block."""

import re

import pytest
from django.test import override_settings

from keys.services import issuance
from tests.wizard_helpers import last_email_code, open_link, post_step, step_url

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle=", re.IGNORECASE)
PASSWORD = "Correct-Horse-9x"


def assert_secure(response, *, no_store: bool) -> None:
    csp = response["Content-Security-Policy"]
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ]:
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    if no_store:
        assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html), "inline script"
    assert not STYLE_ATTRIBUTE.search(html), "inline style"


@pytest.fixture
def issued(citizen, clerk):
    return issuance.issue_activation(citizen, issued_by=clerk)


@pytest.mark.parametrize("language", ["nl", "fr", "de", "en"])
def test_every_page_of_the_flow(client, issued, language):
    pages = []
    pages.append((client.get(f"/{language}/"), False))
    pages.append((client.get(f"/{language}/gebruikersvoorwaarden/"), False))
    pages.append((client.get(f"/{language}/activeren/unknown/"), True))
    pages.append((client.get(step_url("code", language)), True))  # not bound yet
    response = client.get(
        issued.activation_link.replace("/nl/", f"/{language}/").replace("http://testserver", "")
    )
    pages.append((response, True))
    pages.append((client.get(step_url("code", language)), True))
    pages.append(
        (post_step(client, "code", {"activation_code": "ZZZZZ-ZZZZY"}, language=language), True)
    )
    post_step(client, "code", {"activation_code": issued.formatted_code}, language=language)
    pages.append((client.get(step_url("key", language)), True))
    post_step(client, "key", {"kind": "totp", "accept_terms": "on"}, language=language)
    pages.append((client.get(step_url("account", language)), True))
    post_step(
        client,
        "account",
        {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
        language=language,
    )
    pages.append((client.get(step_url("verify", language)), True))  # with the QR code
    post_step(client, "verify", {"wizard_goto_step": "key"}, language=language)
    post_step(client, "key", {"kind": "email", "accept_terms": "on"}, language=language)
    pages.append((client.get(step_url("verify", language)), True))
    post_step(client, "verify", {"code": last_email_code()}, language=language)
    pages.append((client.get(step_url("activated", language)), True))
    post_step(client, "activated", {"next_action": "done"}, language=language)
    pages.append((client.get(f"/{language}/afgemeld/"), True))
    for response, no_store in pages:
        assert response.status_code in {200, 302, 403, 404, 410}, response.status_code
        assert_secure(response, no_store=no_store)


def test_link_error_pages(client, issued, clerk):
    issuance.revoke_activation(issued.activation, by=clerk)
    response = open_link(client, issued.activation_link)
    assert response.status_code == 410
    assert_secure(response, no_store=True)


def test_admin_login_page(client, db):
    response = client.get("/admin/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert "unsafe-inline" not in response["Content-Security-Policy"]


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=31536000)
def test_https_redirect_and_hsts(client, db):
    response = client.get("/nl/")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    response = client.get("/nl/", secure=True)
    assert "max-age=31536000" in response["Strict-Transport-Security"]
