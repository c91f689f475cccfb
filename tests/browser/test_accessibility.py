"""axe-core (WCAG 2.1 A and AA rules) on every page of the wizard, in all four languages,
and the whole flow with the keyboard alone."""

import re

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from keys.services import issuance
from tests.browser.conftest import six_digits
from tests.smtp import text_of

AXE = Axe()
WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
PASSWORD = "Correct-Horse-9x"


def assert_accessible(page: Page, where: str) -> None:
    results = AXE.run(page, options=WCAG_21_AA)
    violations = [
        f"{v['id']}: {v['help']} ({', '.join(n['target'][0] for n in v['nodes'][:3])})"
        for v in results.response["violations"]
    ]
    assert not violations, f"{where}: {violations}"


def submit(page: Page) -> None:
    page.locator("form.wizard button.primary").click()


@pytest.mark.parametrize("language", ["nl", "fr", "de", "en"])
def test_every_page_has_no_axe_violation(page: Page, site, smtp_sink, citizen, clerk, language):
    citizen.language = language
    citizen.save()
    base = site.url
    for path, name in [
        ("/", "home"),
        ("/gebruikersvoorwaarden/", "terms"),
        ("/activeren/unknown/", "unknown link"),
        ("/activatie/code/", "no activation"),
    ]:
        page.goto(f"{base}/{language}{path}")
        assert_accessible(page, f"{language} {name}")

    issued = issuance.issue_activation(citizen, issued_by=clerk)
    link = re.search(
        r"(http://\S+/activeren/\S+/)",
        text_of(smtp_sink.wait_for(lambda m: "/activeren/" in text_of(m))),
    ).group(1)
    assert f"/{language}/activeren/" in link
    page.goto(link)
    expect(page).to_have_url(re.compile(f"/{language}/activatie/code/"))
    assert_accessible(page, f"{language} code step")
    page.fill('[name="code-activation_code"]', "ZZZZZ-ZZZZY")
    submit(page)
    expect(page.locator(".error-summary")).to_be_visible()
    assert_accessible(page, f"{language} code step with an error")
    page.fill('[name="code-activation_code"]', issued.formatted_code)
    submit(page)

    submit(page)  # nothing chosen: errors on the key step
    expect(page.locator(".error-summary")).to_be_visible()
    assert_accessible(page, f"{language} key step with errors")
    page.check('input[name="key-kind"][value="totp"]')
    page.check('[name="key-accept_terms"]')
    submit(page)

    page.fill('[name="account-username"]', "jan")
    page.fill('[name="account-password"]', "short")
    page.fill('[name="account-password_confirm"]', "other")
    submit(page)
    expect(page.locator(".error-summary")).to_be_visible()
    assert_accessible(page, f"{language} account step with errors")
    page.fill('[name="account-username"]', f"jan.peeters.{language}")
    page.fill('[name="account-password"]', PASSWORD)
    page.fill('[name="account-password_confirm"]', PASSWORD)
    submit(page)

    expect(page.locator("#totp-secret")).to_be_visible()
    assert_accessible(page, f"{language} app verification")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.fill('[name="verify-code"]', pyotp.TOTP(secret).now())
    submit(page)
    assert_accessible(page, f"{language} key activated")
    page.locator('button[value="another"]').click()
    page.check('input[name="key-kind"][value="email"]')
    page.check('[name="key-accept_terms"]')
    submit(page)
    assert_accessible(page, f"{language} e-mail verification")
    message = smtp_sink.wait_for(
        lambda m: "/activeren/" not in text_of(m) and re.search(r"\b\d{6}\b", text_of(m))
    )
    page.fill('[name="verify-code"]', six_digits(text_of(message)))
    submit(page)
    submit(page)
    expect(page).to_have_url(re.compile(f"/{language}/afgemeld/"))
    assert_accessible(page, f"{language} done")


def test_the_whole_flow_with_the_keyboard_alone(page: Page, site, smtp_sink, citizen, clerk):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    link = re.search(
        r"(http://\S+/activeren/\S+/)",
        text_of(smtp_sink.wait_for(lambda m: "/activeren/" in text_of(m))),
    ).group(1)
    page.goto(link)
    keyboard = page.keyboard

    def tab_to(selector: str, limit: int = 40) -> None:
        for _ in range(limit):
            keyboard.press("Tab")
            if page.evaluate(
                "(s) => document.activeElement && document.activeElement.matches(s)", selector
            ):
                return
        raise AssertionError(f"could not reach {selector} with Tab")

    tab_to('[name="code-activation_code"]')
    keyboard.type(issued.formatted_code)
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile("/activatie/key/"))
    tab_to('input[name="key-kind"]')
    # arrow keys move within the radio group; the e-mail key is the last choice
    keyboard.press("ArrowDown")
    keyboard.press("ArrowDown")
    expect(page.locator('input[value="email"]')).to_be_checked()
    tab_to('[name="key-accept_terms"]')
    keyboard.press("Space")
    tab_to("form.wizard button.primary")
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile("/activatie/account/"))
    tab_to('[name="account-username"]')
    keyboard.type("jan.peeters")
    keyboard.press("Tab")
    tab_to('[name="account-password"]')
    keyboard.type(PASSWORD)
    tab_to('[name="account-password_confirm"]')
    keyboard.type(PASSWORD)
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile("/activatie/verify/"))
    message = smtp_sink.wait_for(
        lambda m: "/activeren/" not in text_of(m) and re.search(r"\b\d{6}\b", text_of(m))
    )
    tab_to('[name="verify-code"]')
    keyboard.type(six_digits(text_of(message)))
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile("/activatie/activated/"))
    tab_to('button[value="done"]')
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile("/afgemeld/"))
    expect(page.locator("h1")).to_have_text("E-mail adres geactiveerd!")


def test_the_axe_check_does_find_violations(page: Page, site):
    page.goto(f"{site.url}/nl/")
    page.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=text>')"
    )
    with pytest.raises(AssertionError, match="label"):
        assert_accessible(page, "page with an unlabelled field")


@pytest.mark.parametrize("language", ["nl", "fr"])
def test_sign_in_and_self_service_pages_have_no_axe_violation(
    page: Page, site, citizen, clerk, language, rf
):
    from django.utils import timezone

    from keys.models import DigitalKey
    from keys.services import activation as flow

    citizen.language = language
    citizen.save()
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    request = rf.post("/", REMOTE_ADDR="127.0.0.1")
    user = flow.create_account(issued.activation, "jan.peeters", PASSWORD, request)
    for kind in ["totp", "sms"]:
        key = flow.enrol_key(user, kind, issued.activation, phone="+32470123456")
        DigitalKey.objects.filter(pk=key.pk).update(state="active", activated_at=timezone.now())
    totp_key = DigitalKey.objects.get(kind="totp")
    from keys import crypto

    base = f"{site.url}/{language}"
    for path in ["/aanmelden/", "/wachtwoord-vergeten/"]:
        page.goto(base + path)
        assert_accessible(page, f"{language} {path}")
    page.goto(base + "/aanmelden/")
    page.fill('[name="username"]', "jan.peeters")
    page.fill('[name="password"]', "wrong")
    page.locator("form.wizard button.primary").click()
    expect(page.locator(".error-summary")).to_be_visible()
    assert_accessible(page, f"{language} sign-in error")
    page.fill('[name="password"]', PASSWORD)
    page.locator("form.wizard button.primary").click()
    assert_accessible(page, f"{language} key choice")
    page.check(f'input[name="key"][value="{totp_key.pk}"]')
    page.locator("form.wizard button.primary").click()
    assert_accessible(page, f"{language} sign-in code")
    page.fill('[name="code"]', pyotp.TOTP(crypto.decrypt(totp_key.secret_encrypted)).now())
    page.locator("form.wizard button.primary").click()
    expect(page).to_have_url(re.compile("/mijn-sleutels/"))
    assert_accessible(page, f"{language} my keys")
    for path in [
        "/mijn-sleutels/wachtwoord/",
        "/mijn-sleutels/toevoegen/",
        "/mijn-sleutels/gsm-nummer/",
        f"/mijn-sleutels/{totp_key.pk}/verwijderen/",
    ]:
        page.goto(base + path)
        assert_accessible(page, f"{language} {path}")


def test_helpdesk_citizen_page_and_funnel_have_no_axe_violation(
    page: Page, site, citizen, clerk, helpdesk, rf
):
    """The helpdesk's citizen page (with a full history), an action's confirmation with and
    without its reason, and the funnel page, in Dutch and English."""
    from django.urls import reverse

    from tests.browser.helpdesk_data import citizen_with_history, funnel_data, staff_sign_in

    person = citizen_with_history(citizen, clerk, rf)
    funnel_data()
    staff_sign_in(page, site.url, helpdesk.username)
    citizen_url = site.url + reverse("helpdesk:citizen", args=[person.pk])
    funnel_url = site.url + reverse("helpdesk:funnel")
    page.goto(citizen_url)
    expect(page.locator("#timeline-heading")).to_be_visible()
    expect(page.locator("#signins-heading ~ table")).to_have_count(2)  # sign-ins, failed tries
    assert_accessible(page, "helpdesk citizen page")
    page.locator("#keys-heading ~ table button").first.click()
    expect(page.locator("textarea[name=reason]")).to_be_visible()
    assert_accessible(page, "helpdesk block confirmation")
    page.locator('input[type="submit"].default').click()
    expect(page.locator(".errorlist")).to_be_visible()
    assert_accessible(page, "helpdesk confirmation without a reason")
    page.goto(funnel_url)
    expect(page.locator("svg.chart.bars")).to_be_visible()
    assert_accessible(page, "funnel")
    page.goto(funnel_url + "?since=2026-12-01&until=2026-01-01")
    assert_accessible(page, "funnel with a wrong period")
    page.context.set_extra_http_headers({"Accept-Language": "en"})
    page.goto(citizen_url + "?action=signin_succeeded")
    assert_accessible(page, "helpdesk citizen page, filtered, English")
    page.goto(funnel_url)
    assert_accessible(page, "funnel, English")
