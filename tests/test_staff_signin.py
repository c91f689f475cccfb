"""Staff sign-in through the real ``/admin/login/`` (issue 25 §3): the citizens' lockout and
per-address limit, every failure audited with the client's address, a second factor set up at
the first sign-in and asked at every one, password-only sessions refused, the 30-minute idle
timeout, the administrator's reset of a lost factor, and what the commands print."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from keys.digital_keys import get_kind
from keys.models import AuditEvent, Citizen, DigitalKey, User
from tests.conftest import VALID_NATIONAL_NUMBER, staff_key, staff_login

Action = AuditEvent.Action
PASSWORD = "Staff-password-1!"  # tests/conftest.py make_staff
LOGIN = "/admin/login/"
SECOND = "/admin/login/second-factor/"
INDEX = "/admin/"


def staff_client(address: str = "198.51.100.7") -> Client:
    return Client(REMOTE_ADDR=address, HTTP_ACCEPT_LANGUAGE="en")


def password_step(client: Client, username: str, password: str = PASSWORD):
    return client.post(LOGIN, {"username": username, "password": password})


def secret_on_page(html: str) -> str:
    """The secret of the ``otpauth://`` link the enrolment page shows beside its QR code."""
    uri = unescape(re.search(r'href="(otpauth://[^"]+)"', html).group(1))
    return parse_qs(urlsplit(uri).query)["secret"][0]


def next_step_code(secret: str) -> str:
    """The app's code of the time step after the current one (a step is accepted once)."""
    return pyotp.TOTP(secret).at(timezone.now() + timedelta(seconds=30))


def enrol(client: Client, username: str, time_machine) -> str:
    """A first sign-in: password, then the app key set up from the page's secret."""
    assert password_step(client, username)["Location"] == SECOND
    page = client.get(SECOND).content.decode()
    secret = secret_on_page(page)
    response = client.post(SECOND, {"kind": "totp", "code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302, response.content.decode()
    assert response["Location"] == INDEX
    return secret


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    return time_machine


def test_25_wrong_passwords_then_the_right_one_do_not_sign_in(clerk, clock):
    client = staff_client("198.51.100.7")
    for _ in range(25):
        response = password_step(client, clerk.username, "Wrong-password-1!")
        assert response.status_code == 200
    response = password_step(client, clerk.username)
    assert response.status_code == 200
    assert "paused" in response.content.decode()
    assert client.get(INDEX).status_code == 302
    assert client.get(SECOND)["Location"] == LOGIN
    failed = AuditEvent.objects.filter(action=Action.SIGNIN_FAILED)
    assert failed.count() == 26  # every try, the right password while locked too
    assert set(failed.values_list("ip_address", flat=True)) == {"198.51.100.7"}
    assert set(failed.values_list("actor_label", flat=True)) == {"clerk.leuven"}
    locked = AuditEvent.objects.filter(action=Action.SIGNIN_LOCKED)
    assert locked.exists()
    assert set(locked.values_list("ip_address", flat=True)) == {"198.51.100.7"}


def test_the_lockout_lasts_15_minutes_then_the_password_goes_on(clerk, clock):
    client = staff_client()
    for _ in range(5):
        password_step(client, clerk.username, "Wrong-password-1!")
    assert "paused" in password_step(client, clerk.username).content.decode()
    clock.shift(timedelta(minutes=15, seconds=1))
    assert password_step(client, clerk.username)["Location"] == SECOND


def test_the_lockout_counts_per_username_from_any_address(clerk, clock):
    for number in range(5):
        password_step(staff_client(f"198.51.100.{number + 1}"), clerk.username, "Nope-wrong-1!")
    assert "paused" in password_step(staff_client("203.0.113.9"), clerk.username).content.decode()


def test_the_per_address_limit_refuses_guesses_at_many_usernames(clerk, clock):
    client = staff_client("203.0.113.50")
    for number in range(30):
        response = password_step(client, f"someone.{number}", "Wrong-password-1!")
        assert response.status_code == 200
    response = password_step(client, clerk.username)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many sign-in attempts" in response.content.decode()
    limited = AuditEvent.objects.get(action=Action.RATE_LIMITED)
    assert limited.ip_address == "203.0.113.50"
    assert limited.detail["scope"] == "signin:ip"
    # another address is not limited
    assert password_step(staff_client("203.0.113.51"), clerk.username)["Location"] == SECOND


def test_unknown_user_and_wrong_password_are_audited_alike(clerk, clock):
    password_step(staff_client("192.0.2.10"), "nobody.here", "Wrong-password-1!")
    password_step(staff_client("192.0.2.11"), clerk.username, "Wrong-password-1!")
    rows = AuditEvent.objects.filter(action=Action.SIGNIN_FAILED).order_by("id")
    assert [(r.actor_label, r.ip_address) for r in rows] == [
        ("nobody.here", "192.0.2.10"),
        ("clerk.leuven", "192.0.2.11"),
    ]


def test_first_sign_in_sets_up_the_app_key_and_later_ones_ask_for_it(clerk, clock):
    client = staff_client()
    assert password_step(client, clerk.username)["Location"] == SECOND
    # the password alone opens nothing
    assert client.get(INDEX)["Location"].startswith(LOGIN)
    page = client.get(SECOND)
    html = page.content.decode()
    assert "Set up your second factor" in html
    assert "<svg" in html  # the QR code
    secret = secret_on_page(html)
    assert client.get(SECOND).content.decode().count(secret) == 1  # the same secret on reload
    wrong = client.post(SECOND, {"kind": "totp", "code": "000000"})
    assert wrong.status_code == 200 and "error-summary" in wrong.content.decode()
    assert client.post(SECOND, {"kind": "totp", "code": pyotp.TOTP(secret).now()})["Location"] == (
        INDEX
    )
    assert client.get(INDEX).status_code == 200
    key = DigitalKey.objects.get(user=clerk, state=DigitalKey.State.ACTIVE)
    assert key.kind == "totp" and secret not in key.secret_encrypted  # encrypted at rest
    assert AuditEvent.objects.filter(action=Action.STAFF_FACTOR_ENROLLED, actor=clerk).exists()
    assert AuditEvent.objects.filter(action=Action.SIGNIN_SUCCEEDED, actor=clerk).exists()

    # a later sign-in asks for the code, shows no secret, and the same code is not taken twice
    again = staff_client("198.51.100.8")
    assert password_step(again, clerk.username)["Location"] == SECOND
    html = again.get(SECOND).content.decode()
    assert "Set up your second factor" not in html and secret not in html
    assert "otpauth://" not in html
    assert again.get(INDEX)["Location"].startswith(LOGIN)
    replay = again.post(SECOND, {"key": key.pk, "code": pyotp.TOTP(secret).now()})
    assert replay.status_code == 200
    clock.shift(timedelta(seconds=30))
    right = again.post(SECOND, {"key": key.pk, "code": pyotp.TOTP(secret).now()})
    assert right["Location"] == INDEX
    assert again.get(INDEX).status_code == 200


def test_wrong_second_factor_codes_count_against_the_lockout(clerk, clock):
    client = staff_client()
    secret = enrol(client, clerk.username, clock)
    other = staff_client("198.51.100.99")
    clock.shift(timedelta(seconds=1))
    password_step(other, clerk.username)
    wrong = "123456" if pyotp.TOTP(secret).now() != "123456" else "654321"
    for _ in range(5):
        clock.shift(timedelta(seconds=1))
        other.post(SECOND, {"code": wrong})
    assert "paused" in password_step(staff_client("198.51.100.98"), clerk.username).content.decode()
    assert AuditEvent.objects.filter(action=Action.SIGNIN_LOCKED, actor=clerk).exists()


def test_the_next_page_is_kept_across_both_steps(clerk, clock):
    client = staff_client()
    client.post(
        LOGIN + "?next=/admin/keys/citizen/",
        {"username": clerk.username, "password": PASSWORD, "next": "/admin/keys/citizen/"},
    )
    secret = secret_on_page(client.get(SECOND).content.decode())
    response = client.post(SECOND, {"kind": "totp", "code": pyotp.TOTP(secret).now()})
    assert response["Location"] == "/admin/keys/citizen/"


def test_admin_and_helpdesk_pages_refuse_a_password_only_session(helpdesk, citizen):
    client = staff_client()
    client.force_login(helpdesk)  # what a password check alone would give
    for url in (INDEX, "/admin/keys/citizen/", f"/admin/helpdesk/citizens/{citizen.pk}/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(LOGIN)
    staff_login(client, helpdesk)
    assert client.get(f"/admin/helpdesk/citizens/{citizen.pk}/").status_code == 200


def test_a_staff_session_ends_after_30_idle_minutes(clerk, clock):
    client = staff_client()
    staff_login(client, clerk)
    assert client.get(INDEX).status_code == 200
    clock.shift(timedelta(minutes=29))  # longer than the citizens' 15 minutes
    assert client.get(INDEX).status_code == 200
    clock.shift(timedelta(minutes=29))  # 29 since the last request
    assert client.get("/admin/keys/citizen/").status_code == 200
    clock.shift(timedelta(minutes=30, seconds=1))
    response = client.get(INDEX)
    assert response["Location"].startswith(LOGIN)
    page = client.get(response["Location"]).content.decode()
    assert "signed out after 30 minutes without activity" in page
    assert client.get(INDEX).status_code == 302  # the session is gone, not only refused
    event = AuditEvent.objects.get(action=Action.SIGNED_OUT, actor=clerk)
    assert event.detail["reason"] == "idle"


def test_the_idle_timeout_is_a_setting(clerk, clock, settings):
    settings.CSAM = {"STAFF_IDLE_TIMEOUT": timedelta(minutes=5)}
    client = staff_client()
    staff_login(client, clerk)
    clock.shift(timedelta(minutes=5, seconds=1))
    assert client.get(INDEX).status_code == 302


def test_a_citizen_cannot_sign_in_at_the_admin(clerk, office, clock):
    user = User.objects.create_user("jan.peeters", PASSWORD)
    Citizen.objects.create(
        first_name="Jan",
        last_name="Peeters",
        national_number=VALID_NATIONAL_NUMBER,
        email="jan@example.be",
        id_document_type="id_card",
        id_document_number="592123456789",
        office=office,
        account=user,
    )
    response = password_step(staff_client(), "jan.peeters")
    assert response.status_code == 200
    assert "correct username and password for a staff account" in response.content.decode()
    # nor a staff account that somehow has a citizen record
    user.is_staff = True
    user.save()
    assert password_step(staff_client(), "jan.peeters").status_code == 200


def test_a_staff_key_never_signs_in_as_a_citizen(clerk, clock):
    client = staff_client()
    enrol(client, clerk.username, clock)
    citizen_signin = staff_client().post(
        "/en/aanmelden/", {"username": clerk.username, "password": PASSWORD}
    )
    assert citizen_signin.status_code == 200
    assert "not correct" in citizen_signin.content.decode()


def test_an_administrator_resets_a_lost_second_factor(clerk, clock):
    clerk_client = staff_client("198.51.100.20")
    enrol(clerk_client, clerk.username, clock)
    assert clerk_client.get(INDEX).status_code == 200
    admin = User.objects.create_superuser("admin.user", "Admin-password-1!")
    admin_client = staff_client("198.51.100.21")
    staff_login(admin_client, admin)
    response = admin_client.post(
        reverse("admin:keys_user_changelist"),
        {"action": "reset_second_factor", "_selected_action": [clerk.pk]},
    )
    assert response.status_code == 302
    assert not DigitalKey.objects.filter(user=clerk, state=DigitalKey.State.ACTIVE).exists()
    event = AuditEvent.objects.get(action=Action.STAFF_FACTOR_RESET)
    assert event.actor == admin and event.detail["staff_member"] == clerk.username
    assert event.ip_address == "198.51.100.21"
    # the clerk's session ended; the next sign-in sets up a new factor
    assert clerk_client.get(INDEX).status_code == 302
    clock.shift(timedelta(minutes=1))
    assert password_step(clerk_client, clerk.username)["Location"] == SECOND
    assert "Set up your second factor" in clerk_client.get(SECOND).content.decode()


def test_the_helper_marks_the_session_as_the_sign_in_does(clerk):
    client = staff_client()
    key = staff_login(client, clerk)
    assert key == staff_key(clerk)
    assert client.get(INDEX).status_code == 200
    assert get_kind(key.kind).secret(key)


def test_createsuperuser_says_how_the_second_factor_is_set_up(db):
    out = StringIO()
    call_command(
        "createsuperuser", username="root.admin", interactive=False, stdout=out, verbosity=1
    )
    printed = out.getvalue()
    assert "Superuser created successfully." in printed
    assert "Second factor" in printed and "/admin/login/" in printed
    assert "Mobile app" in printed and "passkey" in printed.lower()


def test_demo_setup_says_how_the_second_factor_is_set_up(db):
    out = StringIO()
    call_command("demo_setup", stdout=out, stderr=StringIO())
    assert "Second factor: at the first sign-in" in out.getvalue()


def test_a_passkey_as_second_factor(clerk, clock):
    """The passkey ceremony instead of the app: set up at the first sign-in (never usable
    alone, whatever the form says), asked at the next, a copied authenticator refused."""
    from tests.soft_authenticator import SoftAuthenticator
    from tests.test_passkeys import options_in

    authenticator = SoftAuthenticator("http://testserver", "testserver")
    client = staff_client()
    password_step(client, clerk.username)
    page = client.get(SECOND + "?kind=passkey").content.decode()
    assert "data-passkey-ceremony" in page and "passkey_usernameless" not in page
    answer = authenticator.register(options_in(page))
    response = client.post(
        SECOND, {"kind": "passkey", "code": answer, "passkey_usernameless": "on"}
    )
    assert response["Location"] == INDEX
    key = DigitalKey.objects.get(user=clerk, state=DigitalKey.State.ACTIVE)
    assert key.kind == "passkey" and key.passkey.usernameless is False
    assert client.get(INDEX).status_code == 200

    again = staff_client("198.51.100.8")
    password_step(again, clerk.username)
    page = again.get(SECOND).content.decode()
    assert "otpauth://" not in page
    clock.shift(timedelta(seconds=1))
    assert again.post(SECOND, {"key": key.pk, "code": authenticator.sign(options_in(page))})[
        "Location"
    ] == (INDEX)

    # a copy of the authenticator (its counter not going up) is refused and audited
    third = staff_client("198.51.100.9")
    password_step(third, clerk.username)
    page = third.get(SECOND).content.decode()
    refused = third.post(
        SECOND, {"key": key.pk, "code": authenticator.sign(options_in(page), count=1)}
    )
    assert refused.status_code == 200
    assert third.get(INDEX).status_code == 302
    assert AuditEvent.objects.filter(action="passkey_clone_detected", actor=clerk).exists()
