"""Citizens activating at the same time, over real HTTP, with no error.

Eight citizens walk the whole wizard at once (link, paper code, app key and terms, username and
password, app code, done), each a separate HTTP client with its own cookies from its own
loopback address (``benchmarks/concurrent_activations.py``):

- against a live server in this process, on the test database (SQLite or ``DATABASE_URL``);
- through gunicorn with 2 workers on the SQLite file the project ships with.

Before the SQLite ``OPTIONS`` of ``csam_activation/settings.py`` both failed: most activations
ended in ``OperationalError: database is locked`` on the code and account steps.
"""

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from django.core.signals import got_request_exception
from django.db import connections
from django.test.testcases import LiveServerThread

from benchmarks.concurrent_activations import Citizen, format_report, run_activations
from keys.models import Activation, DigitalKey, RegistrationOffice, User
from keys.models import Citizen as CitizenRecord
from keys.services import issuance

ROOT = Path(__file__).resolve().parent.parent
CITIZENS = 8


@pytest.fixture
def file_database(transactional_db, tmp_path):
    """On SQLite, move the test database to a file for the duration of the test.

    An in-memory test database is one connection that the live server shares between all its
    threads: no concurrency at all. A file gives every thread its own connection, as gunicorn's
    workers have. The schema (and the data migrations) are copied with SQLite's backup API.
    """
    memory = connections["default"]
    if memory.vendor != "sqlite" or not memory.is_in_memory_db():
        yield
        return
    path = tmp_path / "live.sqlite3"
    memory.ensure_connection()
    with closing(sqlite3.connect(path)) as target:
        memory.connection.backup(target)
    original = connections.settings["default"]
    connections.settings["default"] = {**original, "NAME": str(path)}
    connections["default"] = connections.create_connection("default")
    try:
        yield
    finally:
        connections["default"].close()
        connections["default"] = memory
        connections.settings["default"] = original


@pytest.fixture
def live_url(file_database):
    """A live server on its own threads (pytest-django's session-wide ``live_server`` would keep
    the in-memory connection it started with)."""
    thread = LiveServerThread("127.0.0.1", lambda app: app, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://127.0.0.1:{thread.port}"
    thread.terminate()


@pytest.fixture
def server_errors():
    """The exceptions the live server raised, for the assertion messages."""
    errors: list[str] = []

    def record(sender, request=None, **kwargs):
        error = sys.exc_info()[1]
        errors.append(f"{request.path if request else '?'}: {error!r}")

    got_request_exception.connect(record, weak=False)
    yield errors
    got_request_exception.disconnect(record)


def issue(count: int) -> list[Citizen]:
    office = RegistrationOffice.objects.create(code="load", name="Load")
    citizens = []
    for i in range(count):
        first_nine = f"850{i % 9 + 1}{i % 28 + 1:02d}{100 + i:03d}"
        record = CitizenRecord.objects.create(
            first_name="Load",
            last_name=f"Citizen {i}",
            national_number=first_nine + f"{97 - int(first_nine) % 97:02d}",
            email=f"load{i}@example.be",
            language="nl",
            id_document_type="id_card",
            id_document_number=f"L{i}",
            office=office,
        )
        issued = issuance.issue_activation(record, issued_by=None)
        citizens.append(Citizen(issued.activation_link, issued.formatted_code, f"load.citizen{i}"))
    return citizens


def test_concurrent_activations_against_a_live_server(live_url, server_errors):
    citizens = issue(CITIZENS)
    report = run_activations(live_url, citizens)
    summary = format_report(report, connections["default"].vendor) + "\n" + "\n".join(server_errors)
    assert report.failed == 0, summary
    assert not server_errors, summary
    assert sorted(report.completed) == sorted(c.username for c in citizens)
    for citizen in citizens:
        user = User.objects.get(username=citizen.username)
        record = CitizenRecord.objects.get(account=user)
        assert DigitalKey.objects.filter(user=user, state=DigitalKey.State.ACTIVE).count() == 1
        assert Activation.objects.get(citizen=record).state == Activation.State.COMPLETED


def test_concurrent_activations_through_gunicorn_on_the_shipped_sqlite(tmp_path):
    """concurrent_activations.py: gunicorn, 2 workers, a fresh SQLite file, 8 citizens at once."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "benchmarks/concurrent_activations.py", "--citizens", "8"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "completed 8/8, failed 0" in result.stdout, output
    assert "database is locked" not in output
