"""The contract every kind of digital key must honour, tested once for all kinds."""

from datetime import timedelta

import pyotp
import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from keys import crypto, sms
from keys.digital_keys import KINDS, Outcome, get_kind
from keys.digital_keys.sms import mask_phone
from keys.models import DigitalKey, User
from keys.services import activation as flow


@pytest.fixture
def account(citizen):
    user = User.objects.create_user("jan.peeters", "Correct-Horse-9x")
    citizen.account = user
    citizen.save()
    return user


def make_key(account, kind):
    return flow.enrol_key(account, kind, None, phone="+32470123456")


def current_code(key: DigitalKey) -> str:
    if key.kind == "totp":
        return pyotp.TOTP(crypto.decrypt(key.secret_encrypted)).now()
    if key.kind == "sms":
        return sms.outbox[-1].body.split("is ")[1][:6]
    return mail.outbox[-1].body.split(":")[1].split()[0]


def challenge(key):
    kind = get_kind(key.kind)
    if kind.delivers_codes:
        assert kind.send_challenge(key).sent


# Kinds whose "code" is a browser's answer (passkeys) have their own tests (test_passkeys.py).
@pytest.mark.parametrize("kind", [k for k, kind in KINDS.items() if not kind.browser_ceremony])
class TestEveryKind:
    def test_enrol_is_idempotent(self, account, kind):
        first = make_key(account, kind)
        second = make_key(account, kind)
        assert first.pk == second.pk
        second.refresh_from_db()
        assert first.secret_encrypted == second.secret_encrypted

    def test_a_new_key_is_written_by_one_insert_with_what_enrol_prepared(self, account, kind):
        with CaptureQueriesContext(connection) as queries:
            key = make_key(account, kind)
        writes = [q["sql"] for q in queries if "keys_digitalkey" in q["sql"].split(" WHERE")[0]]
        writes = [sql for sql in writes if not sql.startswith("SELECT")]
        assert len(writes) == 1 and writes[0].startswith("INSERT"), writes
        stored = DigitalKey.objects.get(pk=key.pk)
        assert stored.secret_encrypted == key.secret_encrypted
        if kind == "totp":
            assert len(crypto.decrypt(stored.secret_encrypted)) == 32

    def test_a_pending_key_without_its_secret_gets_one_saved(self, account, kind):
        key = make_key(account, kind)
        DigitalKey.objects.filter(pk=key.pk).update(secret_encrypted="")
        again = make_key(account, kind)
        assert again.pk == key.pk
        stored = DigitalKey.objects.get(pk=key.pk)
        assert stored.secret_encrypted == again.secret_encrypted
        assert bool(stored.secret_encrypted) == (kind == "totp")

    def test_right_code_once_then_never_again(self, account, kind):
        key = make_key(account, kind)
        challenge(key)
        code = current_code(key)
        implementation = get_kind(kind)
        assert implementation.verify(key, code).ok
        again = implementation.verify(key, code)
        assert again.outcome in {Outcome.NO_CODE, Outcome.REPLAY}

    def test_wrong_code_is_refused(self, account, kind):
        key = make_key(account, kind)
        challenge(key)
        code = current_code(key)
        totp_window = set()
        if kind == "totp":
            totp = pyotp.TOTP(crypto.decrypt(key.secret_encrypted))
            totp_window = {totp.at(timezone.now().timestamp() + 30 * i) for i in (-1, 0, 1)}
        wrong = next(
            f"{(int(code) + n) % 1_000_000:06d}"
            for n in range(1, 10)
            if f"{(int(code) + n) % 1_000_000:06d}" not in totp_window
        )
        assert get_kind(kind).verify(key, wrong).outcome in {Outcome.WRONG}


class TestDeliveredCodes:
    @pytest.mark.parametrize("kind", ["email", "sms"])
    def test_hourly_cap_slides(self, account, kind, time_machine):
        key = make_key(account, kind)
        implementation = get_kind(kind)
        start = timezone.now()
        for minute in range(5):
            time_machine.move_to(start + timedelta(minutes=minute, seconds=1), tick=False)
            assert implementation.send_challenge(key).sent
        time_machine.move_to(start + timedelta(minutes=30), tick=False)
        refused = implementation.send_challenge(key)
        assert refused.outcome == Outcome.TOO_MANY
        assert 0 < refused.retry_after_seconds <= 31 * 60
        time_machine.move_to(start + timedelta(hours=1, seconds=2), tick=False)
        assert implementation.send_challenge(key).sent

    def test_codes_are_stored_as_hashes(self, account):
        key = make_key(account, "email")
        challenge(key)
        code = current_code(key)
        stored = key.codes.get()
        assert code not in stored.code_hash
        assert len(stored.code_hash) == 64


class TestTotp:
    def test_adjacent_steps_are_accepted_and_replay_is_refused(self, account, time_machine):
        key = make_key(account, "totp")
        totp = pyotp.TOTP(crypto.decrypt(key.secret_encrypted))
        now = timezone.now()
        time_machine.move_to(now, tick=False)
        previous_step_code = totp.at(now.timestamp() - 30)
        implementation = get_kind("totp")
        assert implementation.verify(key, previous_step_code).ok
        assert implementation.verify(key, previous_step_code).outcome == Outcome.REPLAY
        # a code two steps old is outside the window
        old = totp.at(now.timestamp() - 60)
        if old not in {totp.at(now.timestamp() + 30 * i) for i in (-1, 0, 1)}:
            assert implementation.verify(key, old).outcome == Outcome.WRONG
        assert implementation.verify(key, totp.at(now.timestamp())).ok

    def test_secret_is_encrypted_and_keys_rotate(self, account, settings):
        from cryptography.fernet import Fernet

        old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
        settings.FIELD_ENCRYPTION_KEYS = [old_key]
        key = make_key(account, "totp")
        secret = crypto.decrypt(key.secret_encrypted)
        settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
        assert crypto.decrypt(key.secret_encrypted) == secret
        rotated = crypto.rotate(key.secret_encrypted)
        settings.FIELD_ENCRYPTION_KEYS = [new_key]
        assert crypto.decrypt(rotated) == secret


def test_phone_is_masked():
    assert mask_phone("+32470123456") == "+32 470 •• •• 56"


def test_rotate_encryption_keys_command(account, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    key = make_key(account, "totp")
    secret = crypto.decrypt(key.secret_encrypted)
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    key.refresh_from_db()
    assert crypto.decrypt(key.secret_encrypted) == secret
