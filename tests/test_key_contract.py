"""The contract every kind of digital key honours, run once for each kind in the registry.

Enrol, verify, single use, expiry, attempts exhausted, cooldown, replay, older codes void: each
kind answers through the same interface, with the outcome its nature gives (a sent code expires
after ``OTP_TTL``; an app code is only valid in its time window). A new kind must add a driver
here and pass the same tests.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from keys import crypto, sms
from keys.conf import limits
from keys.digital_keys import KINDS, Outcome, get_kind
from keys.digital_keys.email import EmailKind
from keys.models import DigitalKey, User
from keys.services import activation as flow


class DeliveredDriver:
    """E-mail and SMS: the code is sent, read from the outbox."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def new_code(self, key: DigitalKey, tm) -> str:
        result = get_kind(self.kind).send_challenge(key)
        assert result.sent, result
        text = sms.outbox[-1].body if self.kind == "sms" else mail.outbox[-1].body
        return re.search(r"\b(\d{6})\b", text).group(1)

    def expire(self, tm) -> None:
        tm.shift(limits.OTP_TTL + timedelta(seconds=1))

    def next_period(self, tm) -> None:
        tm.shift(limits.OTP_RESEND_COOLDOWN + timedelta(seconds=1))


class TotpDriver:
    """The app: the code is the one the authenticator computes now."""

    kind = "totp"

    def new_code(self, key: DigitalKey, tm) -> str:
        key.refresh_from_db()
        return pyotp.TOTP(crypto.decrypt(key.secret_encrypted)).at(timezone.now())

    def expire(self, tm) -> None:
        tm.shift(timedelta(seconds=limits.TOTP_INTERVAL * (limits.TOTP_VALID_WINDOW + 2)))

    def next_period(self, tm) -> None:
        tm.shift(timedelta(seconds=limits.TOTP_INTERVAL))


DRIVERS = {"email": DeliveredDriver("email"), "sms": DeliveredDriver("sms"), "totp": TotpDriver()}


def test_every_registered_kind_has_a_driver():
    # A kind whose "code" is a browser's answer (a passkey) honours the same promises (single
    # use, expiry, no replay) through a software authenticator: tests/test_passkeys.py.
    typed = {name for name, kind in KINDS.items() if not kind.browser_ceremony}
    assert set(DRIVERS) == typed
    assert set(KINDS) - typed == {"passkey"}


@pytest.fixture
def account(citizen):
    user = User.objects.create_user("jan.peeters", "Correct-Horse-9x")
    citizen.account = user
    citizen.save()
    return user


@pytest.fixture
def frozen(time_machine):
    # Mid-period, so that shifting by whole periods stays clear of the boundaries.
    start = timezone.now().replace(second=10, microsecond=0) + timedelta(minutes=1)
    time_machine.move_to(start, tick=False)
    return time_machine


def wrong_for(key: DigitalKey, code: str) -> str:
    """A code that is not right for this key now, not even in a neighbouring time step."""
    taken = {code}
    if key.kind == "totp":
        totp = pyotp.TOTP(crypto.decrypt(key.secret_encrypted))
        now = timezone.now().timestamp()
        taken |= {totp.at(now + 30 * i) for i in range(-2, 3)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in taken)


@pytest.mark.parametrize("kind", list(DRIVERS))
class TestContract:
    def key(self, account, kind):
        return flow.enrol_key(account, kind, None, phone="+32470123456")

    def test_enrol_makes_one_pending_key(self, account, kind):
        first, second = self.key(account, kind), self.key(account, kind)
        assert first.pk == second.pk
        assert first.state == DigitalKey.State.PENDING

    def test_the_right_code_verifies(self, account, kind, frozen):
        key = self.key(account, kind)
        code = DRIVERS[kind].new_code(key, frozen)
        assert get_kind(kind).verify(key, code).ok

    def test_a_code_is_single_use(self, account, kind, frozen):
        key = self.key(account, kind)
        code = DRIVERS[kind].new_code(key, frozen)
        assert get_kind(kind).verify(key, code).ok
        again = get_kind(kind).verify(key, code)
        assert not again.ok
        assert again.outcome in {Outcome.NO_CODE, Outcome.REPLAY}

    def test_an_expired_code_is_refused(self, account, kind, frozen):
        key = self.key(account, kind)
        code = DRIVERS[kind].new_code(key, frozen)
        DRIVERS[kind].expire(frozen)
        result = get_kind(kind).verify(key, code)
        assert not result.ok
        assert result.outcome in {Outcome.EXPIRED, Outcome.WRONG}

    def test_attempts_are_counted_and_exhausted(self, account, kind, frozen):
        key = self.key(account, kind)
        code = DRIVERS[kind].new_code(key, frozen)
        wrong = wrong_for(key, code)
        implementation = get_kind(kind)
        remaining = [
            implementation.verify(key, wrong).remaining_attempts
            for _ in range(limits.OTP_MAX_ATTEMPTS - 1)
        ]
        assert remaining == list(range(limits.OTP_MAX_ATTEMPTS - 1, 0, -1))
        last = implementation.verify(key, wrong)
        assert last.outcome in {Outcome.EXHAUSTED, Outcome.LOCKED}
        # Once exhausted, even the right code is refused.
        refused = implementation.verify(key, code)
        assert not refused.ok
        assert refused.outcome in {Outcome.EXHAUSTED, Outcome.LOCKED}

    def test_a_cooldown_then_a_fresh_chance(self, account, kind, frozen):
        """Delivered codes: no new code within the cooldown. The app: paused after the wrong
        tries until ``TOTP_LOCKOUT`` has passed. Either way the citizen gets a fresh chance."""
        driver, implementation = DRIVERS[kind], get_kind(kind)
        key = self.key(account, kind)
        code = driver.new_code(key, frozen)
        if implementation.delivers_codes:
            too_soon = implementation.send_challenge(key)
            assert too_soon.outcome == Outcome.TOO_SOON
            assert 0 < too_soon.retry_after_seconds <= 60
            driver.next_period(frozen)
        else:
            wrong = wrong_for(key, code)
            for _ in range(limits.OTP_MAX_ATTEMPTS):
                implementation.verify(key, wrong)
            paused = implementation.verify(key, code)
            assert paused.outcome == Outcome.LOCKED
            assert paused.retry_after_seconds > 0
            frozen.shift(limits.TOTP_LOCKOUT + timedelta(seconds=1))
        assert implementation.verify(key, driver.new_code(key, frozen)).ok

    def test_replay_of_a_used_code_is_refused(self, account, kind, frozen):
        key = self.key(account, kind)
        code = DRIVERS[kind].new_code(key, frozen)
        assert get_kind(kind).verify(key, code).ok
        frozen.shift(timedelta(seconds=5))
        assert get_kind(kind).verify(key, code).outcome in {Outcome.NO_CODE, Outcome.REPLAY}

    def test_older_codes_are_void_once_a_newer_one_exists(self, account, kind, frozen):
        driver, implementation = DRIVERS[kind], get_kind(kind)
        key = self.key(account, kind)
        older = driver.new_code(key, frozen)
        driver.next_period(frozen)
        newer = driver.new_code(key, frozen)
        assert older != newer or kind == "totp"
        assert implementation.verify(key, newer).ok
        # The older code must not come back to life now that the newest is used.
        result = implementation.verify(key, older)
        assert not result.ok
        assert result.outcome in {Outcome.NO_CODE, Outcome.REPLAY, Outcome.WRONG}

    def test_the_code_form_takes_the_kinds_length(self, account, kind, settings):
        settings.CSAM = {"TOTP_DIGITS": 8, "OTP_DIGITS": 6}
        expected = 8 if kind == "totp" else 6
        assert get_kind(kind).code_digits == expected


class LetterKind(EmailKind):
    """A fourth kind made for this test alone: one class and the registry, nothing else."""

    kind = "letter"
    label = "Code by pigeon post"
    instructions_template = "keys/digital_keys/email.html"

    def choice_help(self, citizen) -> str:
        return "A pigeon brings the code."


def test_a_fourth_kind_needs_only_its_module_and_the_registry(client, citizen, clerk, monkeypatch):
    from keys.services import issuance
    from tests.wizard_helpers import last_email_code, open_link, post_step, step_url

    monkeypatch.setitem(KINDS, "letter", LetterKind())
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    open_link(client, issued.activation_link)
    post_step(client, "code", {"activation_code": issued.formatted_code})
    page = client.get(step_url("key")).content.decode()
    assert "Code by pigeon post" in page
    assert "A pigeon brings the code." in page
    post_step(client, "key", {"kind": "letter", "accept_terms": "on"})
    password = "Correct-Horse-9x"
    post_step(
        client,
        "account",
        {"username": "jan.peeters", "password": password, "password_confirm": password},
    )
    verify = client.get(step_url("verify"))
    assert "Code by pigeon post" in verify.content.decode()
    response = post_step(client, "verify", {"code": last_email_code()})
    assert response["Location"] == step_url("activated")
    key = DigitalKey.objects.get(kind="letter")
    assert key.state == DigitalKey.State.ACTIVE
    assert str(key).startswith("Code by pigeon post")
    # and it signs in, like any other kind
    signin = Client()
    signin.post("/nl/aanmelden/", {"username": "jan.peeters", "password": password})
    signin.post("/nl/aanmelden/sleutel/", {"key": str(key.pk)})
    response = signin.post("/nl/aanmelden/code/", {"code": last_email_code()})
    assert response["Location"] == "/nl/mijn-sleutels/"
