"""Real concurrency on PostgreSQL: threads with their own connections race for one secret.

SQLite serialises writers and ignores SELECT ... FOR UPDATE, so these run on PostgreSQL only
(CI runs the suite there with DATABASE_URL).
"""

import threading
from collections import Counter

import pytest
from django.core import mail
from django.db import connection, connections
from django.test import RequestFactory

from keys.digital_keys import Outcome, get_kind
from keys.models import Activation, Citizen, User
from keys.services import activation as flow
from keys.services import issuance

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL's row locks (DATABASE_URL)"
    ),
]

THREADS = 8


def race(target, count: int = THREADS) -> list:
    """Run ``target(i)`` in ``count`` threads released at the same instant."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


def request():
    return RequestFactory().post("/", REMOTE_ADDR="192.0.2.10")


@pytest.fixture
def issued(citizen, clerk):
    return issuance.issue_activation(citizen, issued_by=clerk)


def test_concurrent_wrong_codes_cannot_pass_the_limit(issued):
    results = race(
        lambda i: flow.redeem_activation_code(issued.activation.pk, "ZZZZZZZZZY", request()), 10
    )
    outcomes = Counter(result.outcome for result in results)
    activation = Activation.objects.get(pk=issued.activation.pk)
    assert activation.failed_code_attempts == 5
    assert activation.state == Activation.State.LOCKED
    assert outcomes == {flow.CodeOutcome.WRONG: 4, flow.CodeOutcome.LOCKED: 6}


def test_two_browsers_on_one_link_create_one_account(issued):
    activation = issued.activation
    users = race(
        lambda i: flow.create_account(activation, f"jan.peeters{i}", "Correct-Horse-9x", request())
    )
    assert len({user.pk for user in users}) == 1
    assert User.objects.filter(username__startswith="jan.peeters").count() == 1
    assert Citizen.objects.get().account_id == users[0].pk


def test_same_username_raced_by_two_citizens(issued, office, clerk):
    other = Citizen.objects.create(
        first_name="Marie",
        last_name="Dubois",
        national_number="90010112395",
        email="marie@example.be",
        language="fr",
        id_document_type="passport",
        id_document_number="EM1",
        office=office,
    )
    second = issuance.issue_activation(other, issued_by=clerk)
    activations = [issued.activation, second.activation]

    def attempt(i):
        try:
            return flow.create_account(
                activations[i % 2], "Same.Name", "Correct-Horse-9x", request()
            )
        except flow.UsernameTaken:
            return "taken"

    results = race(attempt, 2)
    assert sorted(str(r) for r in results).count("taken") == 1
    assert User.objects.filter(username_canonical="same.name").count() == 1


@pytest.mark.parametrize("kind", ["email", "sms"])
def test_one_valid_code_submitted_many_times_succeeds_once(issued, kind):
    from keys import sms

    user = flow.create_account(issued.activation, "jan.peeters", "Correct-Horse-9x", request())
    key = flow.enrol_key(user, kind, issued.activation, phone="+32470123456")
    implementation = get_kind(kind)
    assert implementation.send_challenge(key).sent
    body = sms.outbox[-1].body if kind == "sms" else mail.outbox[-1].body
    code = next(
        word.strip(".:")
        for word in body.split()
        if word.strip(".:").isdigit() and len(word.strip(".:")) == 6
    )
    outcomes = Counter(
        result.outcome for result in race(lambda i: implementation.verify(key, code))
    )
    assert outcomes[Outcome.OK] == 1
    assert outcomes[Outcome.NO_CODE] == THREADS - 1


def test_one_totp_code_submitted_many_times_succeeds_once(issued):
    import pyotp

    from keys import crypto

    user = flow.create_account(issued.activation, "jan.peeters", "Correct-Horse-9x", request())
    key = flow.enrol_key(user, "totp", issued.activation)
    code = pyotp.TOTP(crypto.decrypt(key.secret_encrypted)).now()
    outcomes = Counter(r.outcome for r in race(lambda i: get_kind("totp").verify(key, code)))
    assert outcomes[Outcome.OK] == 1
    assert outcomes[Outcome.REPLAY] == THREADS - 1


def test_concurrent_wrong_key_codes_cannot_pass_the_limit(issued):
    user = flow.create_account(issued.activation, "jan.peeters", "Correct-Horse-9x", request())
    key = flow.enrol_key(user, "email", issued.activation)
    implementation = get_kind("email")
    implementation.send_challenge(key)
    right = next(w for w in mail.outbox[-1].body.split() if w.isdigit() and len(w) == 6)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    race(lambda i: implementation.verify(key, wrong), 10)
    assert key.codes.get().failed_attempts == 5
    assert implementation.verify(key, right).outcome == Outcome.EXHAUSTED


def test_parallel_password_guesses_from_many_addresses_cannot_pass_the_lockout(issued):
    """Each guess runs argon2 (tens of ms): read-then-write counting let all of them through."""
    from keys.models import AuditEvent
    from keys.services import signin

    user = flow.create_account(issued.activation, "jan.peeters", "Correct-Horse-9x", request())
    key = flow.enrol_key(user, "email", issued.activation)
    type(key).objects.filter(pk=key.pk).update(state="active")

    def guess(i):
        guesser = RequestFactory().post("/", REMOTE_ADDR=f"198.51.100.{i + 1}")
        return signin.check_password(guesser, "jan.peeters", f"Wrong-Guess-{i}!")

    outcomes = Counter(result.outcome for result in race(guess, 12))
    checked = AuditEvent.objects.filter(action=AuditEvent.Action.SIGNIN_FAILED).count()
    assert checked == 5, outcomes
    assert outcomes[signin.SignInOutcome.OK] == 0
    assert outcomes[signin.SignInOutcome.LOCKED] >= 12 - 5
    # Even the right password waits out the lockout now.
    right = signin.check_password(request(), "jan.peeters", "Correct-Horse-9x")
    assert right.outcome == signin.SignInOutcome.LOCKED


def test_parallel_wrong_app_codes_cannot_pass_the_limit(issued):
    import pyotp

    from keys import crypto

    user = flow.create_account(issued.activation, "jan.peeters", "Correct-Horse-9x", request())
    key = flow.enrol_key(user, "totp", issued.activation)
    totp = pyotp.TOTP(crypto.decrypt(key.secret_encrypted))
    import time

    window = {totp.at(time.time() + 30 * i) for i in (-1, 0, 1)}
    wrong = next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in window)
    outcomes = Counter(r.outcome for r in race(lambda i: get_kind("totp").verify(key, wrong), 10))
    assert outcomes[Outcome.WRONG] == 4
    assert outcomes[Outcome.LOCKED] == 6
    assert get_kind("totp").verify(key, totp.now()).outcome == Outcome.LOCKED


def test_two_recovery_sessions_racing_put_one_key_on_probation(issued):
    """Two weak sessions (two recovery codes) each confirm a new key at the same instant: the
    check under the account's lock lets one key on probation through, the other is refused
    (issue 25 §1: one key on probation at a time)."""
    import pyotp

    from keys import crypto, sms
    from keys.digital_keys import Outcome
    from keys.models import DigitalKey
    from keys.services.activation import PROBATION_REFUSED

    user = flow.create_account(issued.activation, "jan.peeters", "Correct-Horse-9x", request())
    first = flow.enrol_key(user, "email", issued.activation)
    DigitalKey.objects.filter(pk=first.pk).update(state="active")
    app = flow.enrol_key(user, "totp", None, probation=True)
    phone = flow.enrol_key(user, "sms", None, phone="+32470123456", probation=True)
    assert get_kind("sms").send_challenge(phone).sent
    sms_code = next(w.strip(".:") for w in sms.outbox[-1].body.split() if w.strip(".:").isdigit())
    app_code = pyotp.TOTP(crypto.decrypt(app.secret_encrypted)).now()
    pairs = [(app, app_code), (phone, sms_code)]

    results = race(
        lambda i: flow.confirm_key(pairs[i][0], pairs[i][1], request(), probation=True), 2
    )
    outcomes = sorted(str(result.outcome) for result in results)
    assert outcomes == sorted([str(Outcome.OK), str(Outcome.REFUSED)]), outcomes
    refused = next(result for result in results if result.outcome == Outcome.REFUSED)
    assert refused.message == PROBATION_REFUSED
    on_probation = DigitalKey.objects.filter(
        user=user, state="active", probation_until__isnull=False
    )
    assert on_probation.count() == 1
