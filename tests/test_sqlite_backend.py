"""``csam_activation.sqlite``: Django's SQLite backend, waiting for the write lock in short steps
of its own instead of SQLite's busy handler (1, 2, 5, 10... ms), and only where trying again is
safe: a statement outside a transaction and the ``BEGIN`` that opens one."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from django.conf import settings as django_settings
from django.db import connections, transaction
from django.db.utils import ConnectionHandler, OperationalError

from csam_activation.sqlite import base


@pytest.fixture
def two(tmp_path, django_db_blocker):
    """Two connections (aliases "one" and "two") to one SQLite file, as the project configures
    SQLite (WAL, BEGIN IMMEDIATE), with a 1 s lock timeout."""
    options = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 1,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    }
    database = {"ENGINE": "csam_activation.sqlite", "NAME": str(tmp_path / "t.sqlite3")}
    handler = ConnectionHandler(
        {alias: {**database, "OPTIONS": dict(options)} for alias in ("default", "one", "two")}
    )
    made = {alias: handler[alias] for alias in ("one", "two")}
    for alias, wrapper in made.items():  # so that transaction.atomic(using=...) finds them
        connections[alias] = wrapper
    try:
        with django_db_blocker.unblock():
            with made["one"].cursor() as cursor:
                cursor.execute("CREATE TABLE t (n INTEGER)")
            yield made["one"], made["two"]
            for wrapper in made.values():
                wrapper.close()
    finally:
        for alias in made:
            del connections[alias]


def hold_write_lock(connection, seconds: float) -> threading.Thread:
    """Another connection takes the write lock and keeps it ``seconds`` (a thread of its own:
    a Django connection belongs to the thread that uses it, so the raw one is used)."""
    taken = threading.Event()

    def run():
        raw = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO t VALUES (0)")
        taken.set()
        time.sleep(seconds)
        raw.execute("COMMIT")
        raw.close()

    thread = threading.Thread(target=run)
    thread.start()
    taken.wait(5)
    return thread


def test_the_project_uses_it_on_sqlite():
    if "sqlite" not in django_settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("the suite runs on PostgreSQL (DATABASE_URL)")
    assert django_settings.DATABASES["default"]["ENGINE"] == "csam_activation.sqlite"


def test_sqlites_own_handler_is_off_once_set_up(two):
    one, _ = two
    with one.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone() == (0,)
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone() == ("wal",)  # the init command ran (with SQLite's handler)
    assert one.lock_timeout == 1.0


def test_begin_and_a_lone_statement_wait_in_short_steps(two, monkeypatch):
    one, _ = two
    pauses = []
    real_sleep = time.sleep
    main = threading.current_thread()

    def sleep(seconds):  # time.sleep, the pauses of this thread written down
        if threading.current_thread() is main:
            pauses.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(base.time, "sleep", sleep)
    holder = hold_write_lock(one, 0.15)
    with transaction.atomic(using="one"), one.cursor() as cursor:  # BEGIN waits for the holder
        cursor.execute("INSERT INTO t VALUES (1)")
    holder.join()
    assert pauses[:6] == [0.00005, 0.0001, 0.0002, 0.0004, 0.0008, 0.0016]
    assert max(pauses) == base.LONGEST_PAUSE
    pauses.clear()
    holder = hold_write_lock(one, 0.1)
    with one.cursor() as cursor:  # outside a transaction: the statement itself waits
        cursor.execute("INSERT INTO t VALUES (2)")
    holder.join()
    assert pauses and max(pauses) <= base.LONGEST_PAUSE
    with one.cursor() as cursor:
        cursor.execute("SELECT n FROM t ORDER BY n")
        assert cursor.fetchall() == [(0,), (0,), (1,), (2,)]


def test_the_lock_timeout_still_ends_in_database_is_locked(two):
    one, _ = two
    holder = hold_write_lock(one, 1.6)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="database is locked"), transaction.atomic("one"):
        pass
    waited = time.monotonic() - started
    holder.join()
    assert 0.9 <= waited < 1.5  # "timeout": 1


def test_nothing_is_tried_again_inside_a_transaction(two, monkeypatch):
    """Inside a transaction a refused statement is not repeated (the transaction's earlier
    statements may depend on what it saw): the error goes up at once."""
    one, _ = two
    tries = []
    with transaction.atomic(using="one"):
        cursor = one.cursor()
        real = base.base.SQLiteCursorWrapper.execute

        def refused(self, query, params=None):
            tries.append(query)
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise error

        monkeypatch.setattr(base.base.SQLiteCursorWrapper, "execute", refused)
        with pytest.raises(OperationalError, match="database is locked"):
            cursor.execute("INSERT INTO t VALUES (3)")
        monkeypatch.setattr(base.base.SQLiteCursorWrapper, "execute", real)
    assert tries == ["INSERT INTO t VALUES (3)"]


def test_executemany_outside_a_transaction_waits_with_sqlites_handler(two):
    """It may have written rows when it is refused, so it is not repeated: SQLite's own handler
    waits instead, for the same timeout, and is off again afterwards."""
    one, _ = two
    holder = hold_write_lock(one, 0.2)
    with one.cursor() as cursor:
        cursor.executemany("INSERT INTO t VALUES (%s)", [(5,), (6,)])
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT count(*) FROM t WHERE n IN (5, 6)")
        assert cursor.fetchone() == (2,)
    holder.join()


def test_other_errors_are_not_tried_again(two):
    one, _ = two
    with one.cursor() as cursor, pytest.raises(OperationalError, match="no such table"):
        cursor.execute("SELECT * FROM missing")
