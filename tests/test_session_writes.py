"""Fewer writes per request (issue 10): a page that changes nothing leaves the session row alone,
a new session key is written once, and a sign-in's success is one row."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from keys.models import SignInAttempt
from keys.services import issuance
from keys.sessions import SessionStore
from tests.test_signin import account, sign_in  # noqa: F401  (fixture)
from tests.wizard_helpers import open_link, post_step, step_url


def session_writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if "django_session" in q["sql"] and not q["sql"].lstrip().upper().startswith("SELECT")
    ]


@pytest.fixture
def in_wizard(client, citizen, clerk):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    open_link(client, issued.activation_link)
    client.get(step_url("code"))
    post_step(client, "code", {"activation_code": issued.formatted_code})
    return client


def test_a_wizard_page_that_changes_nothing_does_not_rewrite_the_session(in_wizard):
    in_wizard.get(step_url("key"))
    before = Session.objects.get().session_data
    with CaptureQueriesContext(connection) as queries:
        assert in_wizard.get(step_url("key")).status_code == 200
        assert in_wizard.get(step_url("key")).status_code == 200
    assert session_writes(queries) == []
    assert Session.objects.get().session_data == before


def test_a_posted_step_still_saves_the_session(in_wizard):
    with CaptureQueriesContext(connection) as queries:
        response = post_step(in_wizard, "key", {"kind": "email", "accept_terms": "on"})
    assert response["Location"].endswith("/account/")
    assert len(session_writes(queries)) == 1
    assert in_wizard.session["csam_wizard"]["kind"] == "email"


def test_the_idle_clock_moves_on_once_a_minute_and_still_times_out(in_wizard, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    in_wizard.get(step_url("key"))
    seen = in_wizard.session["csam_wizard"]["last_seen"]
    time_machine.shift(timedelta(seconds=59))
    in_wizard.get(step_url("key"))
    assert in_wizard.session["csam_wizard"]["last_seen"] == seen
    time_machine.shift(timedelta(seconds=2))
    in_wizard.get(step_url("key"))
    moved = in_wizard.session["csam_wizard"]["last_seen"]
    assert moved > seen
    # 29 idle minutes after the last move: still there; 31: the wizard's 30 minutes are over.
    time_machine.shift(timedelta(minutes=29))
    assert in_wizard.get(step_url("key")).status_code == 200
    time_machine.shift(timedelta(minutes=31))
    assert in_wizard.get(step_url("key")).status_code == 403


def test_signing_in_writes_the_new_session_once_and_drops_the_old(client, account):  # noqa: F811
    client.get("/nl/aanmelden/")
    session = SessionStore()
    session["probe"] = 1
    session.save()
    old_key = session.session_key
    client.cookies["sessionid"] = old_key
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/nl/aanmelden/", {"username": account.username, "password": "Correct-Horse-9x"}
        )
    assert response["Location"] == "/nl/aanmelden/sleutel/"
    writes = session_writes(queries)
    assert [w.split()[0] for w in writes] == ["DELETE", "INSERT"], writes
    assert not Session.objects.filter(session_key=old_key).exists()
    new_key = client.cookies["sessionid"].value
    assert new_key != old_key
    assert Session.objects.get(session_key=new_key).get_decoded()["probe"] == 1


def test_a_sign_in_leaves_one_success_and_no_failure(client, account):  # noqa: F811
    response = sign_in(client, account)
    assert response["Location"] == "/nl/mijn-sleutels/"
    rows = list(SignInAttempt.objects.values_list("succeeded", flat=True))
    assert rows == [True]


def test_the_store_inside_a_transaction_keeps_djangos_savepoint(db):
    session = SessionStore()
    session["a"] = 1
    with transaction.atomic():
        session.save()
        session.cycle_key()
        session.save()
    assert Session.objects.count() == 1
    assert SessionStore(session.session_key).load() == {"a": 1}


@pytest.mark.parametrize("in_transaction", [False, True])
def test_a_new_key_that_exists_is_drawn_again_and_never_overwrites(db, monkeypatch, in_transaction):
    """A new session key is not looked up first (one query less at every sign-in and at the start
    of an activation): the INSERT is refused on a clash and another key is drawn."""
    taken = SessionStore()
    taken["owner"] = "somebody else"
    taken.save()
    draws = iter([taken.session_key, "k" * 32])
    monkeypatch.setattr("keys.sessions.get_random_string", lambda length, chars: next(draws))
    session = SessionStore()
    session["owner"] = "me"
    with CaptureQueriesContext(connection) as queries:
        if in_transaction:
            with transaction.atomic():
                session.save()
        else:
            session.save()
    assert session.session_key == "k" * 32
    assert SessionStore(taken.session_key).load() == {"owner": "somebody else"}
    assert SessionStore("k" * 32).load() == {"owner": "me"}
    lookups = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert lookups == []
