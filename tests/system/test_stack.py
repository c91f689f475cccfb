"""The production stack as one system (issue 10 §4): ``deploy/stack.sh`` starts nginx over HTTPS,
two gunicorn instances, the task worker, PostgreSQL and Redis; a citizen activates a key in
Chromium through nginx, with the e-mail code sent by the worker over SMTP; one instance dies in
the middle of a wizard; the per-address rate limit sees the client's address through the proxy;
and no link token reaches the stack's logs.

The tests share one stack (module scope) and run in this order: the instance killed by the second
test stays dead for the rest of the module.
"""

from __future__ import annotations

import http.client
import re
import time
from urllib.parse import urlsplit

import pyotp
import pytest
from playwright.sync_api import Page, expect

from keys.logging import contains_link_token
from tests.browser.conftest import six_digits
from tests.smtp import text_of
from tests.system.conftest import Stack, unverified_tls

pytestmark = pytest.mark.stack

PASSWORD = "Correct-Horse-9x"
LINK_LIMIT = 30  # keys/conf.py RATE_LIMITS["link:ip"]: 30 per 10 minutes
LINK_WINDOW = 600


def national_number(serial: int) -> str:
    """A valid national register number of someone born on 1985-07-30."""
    base = f"850730{serial:03d}"
    return f"{base}{97 - int(base) % 97:02d}"


def open_wizard(page: Page, link: str, code: str) -> None:
    page.goto(link)
    expect(page.get_by_role("heading", name="Activatiecode ingeven")).to_be_visible()
    assert page.url.startswith("https://127.0.0.1:"), page.url
    page.get_by_label("Activatiecode").fill(code)
    page.get_by_role("button", name="Volgende").click()
    expect(page.get_by_role("heading", name="Kies uw digitale sleutel")).to_be_visible()


def choose(page: Page, label: str) -> None:
    page.get_by_label(label, exact=True).check()
    page.get_by_label("Ik aanvaard de gebruikersvoorwaarden").check()
    page.get_by_role("button", name="Digitale sleutel activeren").click()


def create_account(page: Page, username: str) -> None:
    expect(
        page.get_by_role("heading", name="Aanmaken van uw gebruikersnaam en wachtwoord")
    ).to_be_visible()
    page.get_by_label("Gebruikersnaam").fill(username)
    page.get_by_label(re.compile(r"^Wachtwoord")).fill(PASSWORD)
    page.get_by_label("Bevestig wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Volgende").click()


def finish(page: Page, key_label: str, done_title: str) -> None:
    expect(page.get_by_text(f"De digitale sleutel “{key_label}” is geactiveerd.")).to_be_visible()
    page.get_by_role("button", name="Volgende").click()
    expect(page.get_by_role("heading", name=done_title)).to_be_visible()


def key_state(stack: Stack, activation_id: int) -> list[tuple]:
    return stack.query(
        "SELECT k.kind, k.state FROM keys_digitalkey k "
        "JOIN keys_citizen c ON c.account_id = k.user_id "
        "JOIN keys_activation a ON a.citizen_id = c.id WHERE a.id = %s",
        [activation_id],
    )


def test_a_citizen_activates_the_email_key_through_nginx_over_https(stack: Stack, page: Page):
    issued = stack.issue("Jan", "Peeters", national_number(33), "jan.peeters@example.be")
    # The worker, not the request, sends the link: over SMTP to the sink.
    mail = stack.sink.wait_for(lambda m: "/activeren/" in text_of(m), timeout=30)
    link = re.search(r"(https://\S+/activeren/\S+/)", text_of(mail)).group(1)
    assert link == issued["activation_link"]
    assert link.startswith(stack.url + "/")  # SITE_URL: the HTTPS address of nginx

    open_wizard(page, link, issued["activation_code"])
    choose(page, "Beveiligingscode via e-mail")
    create_account(page, "jan.peeters")
    code_mail = stack.sink.wait_for(lambda m: "registratiecode" in m["Subject"].lower(), timeout=30)
    page.get_by_label("Registratiecode").fill(six_digits(text_of(code_mail)))
    page.get_by_role("button", name="Volgende").click()
    finish(page, "Beveiligingscode via e-mail", "E-mail adres geactiveerd!")

    assert key_state(stack, issued["id"]) == [("email", "active")]
    session = [c for c in page.context.cookies() if c["name"] == "sessionid"]
    assert all(cookie["secure"] for cookie in session)  # production settings: Secure cookies
    response = page.request.get(stack.url + "/nl/")
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_an_instance_dies_in_the_middle_of_a_wizard_and_the_citizen_does_not_notice(
    stack: Stack, page: Page
):
    issued = stack.issue("An", "Janssens", national_number(35), "an.janssens@example.be")
    open_wizard(page, issued["activation_link"], issued["activation_code"])
    choose(page, "Mobiele app")
    create_account(page, "an.janssens")
    expect(page.get_by_role("img", name=re.compile("QR"))).to_be_visible()

    access_log = stack.log_dir / "nginx-access.log"
    before = len(access_log.read_text().splitlines())
    stack.kill_instance("app-1")
    dead = f"127.0.0.1:{stack.app_ports[0]}"

    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Beveiligingscode").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Volgende").click()
    finish(page, "Mobiele app", "Mobiele app geactiveerd!")
    assert key_state(stack, issued["id"]) == [("totp", "active")]

    after = access_log.read_text().splitlines()[before:]
    assert after, "nginx logged no request after the kill"
    statuses = [int(re.search(r'" (\d{3}) ', line).group(1)) for line in after]
    assert all(status < 500 for status in statuses), "\n".join(after)
    # Round robin sent at least one of these requests to the dead instance first: nginx tried
    # it, then the other one (upstream=<dead>, <alive>), and the browser got the answer.
    retried = [line for line in after if f"upstream={dead}, " in line]
    assert retried, "no request was retried on the other instance:\n" + "\n".join(after)

    status = stack.run("status")
    assert "app-1   NOT answering" in status.stdout, status.stdout
    assert re.search(r"app-2\s+answering", status.stdout), status.stdout


def _open(stack: Stack, path: str, source: str, cookie: str | None = None):
    connection = http.client.HTTPSConnection(
        "127.0.0.1",
        stack.https_port,
        source_address=(source, 0),
        context=unverified_tls(),
        timeout=15,
    )
    try:
        connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


def test_the_link_rate_limit_counts_the_client_address_behind_the_proxy(stack: Stack):
    issued = stack.issue("Piet", "Claes", national_number(37), "piet.claes@example.be")
    path = urlsplit(issued["activation_link"]).path
    # Fixed windows of 10 minutes: keep the 31 openings inside one.
    if LINK_WINDOW - time.time() % LINK_WINDOW < 20:
        time.sleep(LINK_WINDOW - time.time() % LINK_WINDOW + 1)

    statuses = [_open(stack, path, "127.0.0.2").status for _ in range(LINK_LIMIT + 1)]
    assert 429 not in statuses[:LINK_LIMIT], statuses
    assert statuses[LINK_LIMIT] == 429, statuses

    # Another address is not affected: it opens the link and gets the code page.
    opened = _open(stack, path, "127.0.0.3")
    assert opened.status == 302, opened.status
    cookie = "; ".join(
        header.split(";", 1)[0]
        for name, header in opened.getheaders()
        if name.lower() == "set-cookie"
    )
    page = _open(stack, urlsplit(opened.getheader("Location")).path, "127.0.0.3", cookie)
    assert page.status == 200

    events = stack.query(
        "SELECT action, host(ip_address) FROM keys_auditevent WHERE activation_id = %s",
        [issued["id"]],
    )
    by_address: dict[str | None, list[str]] = {}
    for action, address in events:
        by_address.setdefault(address, []).append(action)
    assert by_address.get("127.0.0.2", []).count("link_opened") == LINK_LIMIT, by_address
    assert "link_opened" in by_address.get("127.0.0.3", []), by_address
    assert "127.0.0.1" not in by_address, by_address  # nginx's address is nobody's
    # The refusal comes before the link is looked up, so its event names no activation.
    refused = stack.query(
        "SELECT host(ip_address) FROM keys_auditevent "
        "WHERE action = 'rate_limited' AND detail->>'scope' = 'link:ip'"
    )
    assert refused == [("127.0.0.2",)], refused


def test_http_redirects_to_https_and_metrics_are_for_loopback_only(stack: Stack):
    connection = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=10)
    connection.request("GET", "/nl/")
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"{stack.url}/nl/"
    connection.close()
    assert _open(stack, "/metrics", "127.0.0.4").status == 403

    # Prometheus asks an instance directly; with PROMETHEUS_MULTIPROC_DIR shared it reports the
    # whole stack, the other instance's workers included.
    connection = http.client.HTTPConnection("127.0.0.1", stack.app_ports[1], timeout=10)
    connection.request("GET", "/metrics", headers={"Host": "127.0.0.1"})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    assert response.status == 200
    refused = re.search(r'^csam_rate_limited_total\{scope="link:ip"\} (\S+)$', text, re.M)
    assert refused and float(refused.group(1)) >= 1, text[-2000:]


def test_every_secret_parameter_is_redacted_in_nginxs_log(stack: Stack):
    """An ID token at the provider's logout, codes and tokens in a service's callback (a referer):
    nginx's access log keeps none of their values, however many one URL carries."""
    secrets = ["idtokensecret0001", "codesecret0002", "accesssecret0003"]
    path = (
        f"/nl/oidc/logout/?id_token_hint={secrets[0]}&state=visible-state"
        f"&code={secrets[1]}&access_token={secrets[2]}"
    )
    referer = f"https://service.example/cb?state=s&code={secrets[1]}&x=1&id_token={secrets[0]}"
    connection = http.client.HTTPSConnection(
        "127.0.0.1", stack.https_port, timeout=10, context=unverified_tls()
    )
    connection.request("GET", path, headers={"Referer": referer, "User-Agent": "redaction-probe"})
    connection.getresponse().read()
    connection.close()
    access = stack.log_dir / "nginx-access.log"
    deadline = time.monotonic() + 5
    while "redaction-probe" not in access.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(x for x in access.read_text().splitlines() if "redaction-probe" in x)
    assert not [secret for secret in secrets if secret in line], line
    assert "id_token_hint=[redacted]&state=visible-state&code=[redacted]" in line, line
    assert "access_token=[redacted]" in line and "&id_token=[redacted]" in line, line


def test_no_link_token_in_the_stacks_logs(stack: Stack):
    tokens = [link.rstrip("/").rsplit("/", 1)[1] for link in stack.links]
    assert tokens, "the tests above issued no activation"
    logs = sorted(stack.log_dir.glob("*"))
    assert {path.name for path in logs} >= {
        "nginx-access.log",
        "app-1.log",
        "app-2.log",
        "worker.log",
    }
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        leaked = [token for token in tokens if token in text]
        assert not leaked, f"{len(leaked)} link token(s) in {path}"
        assert not contains_link_token(text), f"an unredacted /activeren/ path in {path}"
    access = (stack.log_dir / "nginx-access.log").read_text()
    assert "/activeren/[redacted]/" in access  # the openings were logged, redacted
