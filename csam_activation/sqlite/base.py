"""Django's SQLite backend, waiting for the database's write lock in short steps.

SQLite lets one connection write at a time. Django's backend leaves the waiting to SQLite's own
busy handler (``OPTIONS["timeout"]``), which sleeps 1 ms, then 2, 5, 10, 15, 20, 25 ms... before
each new try: a worker that finds the lock taken sleeps at least a millisecond, usually longer
than the other worker holds it (a few tenths of a millisecond for most of this service's
transactions), and is idle meanwhile. Here SQLite's handler is switched off once the connection
is set up (``PRAGMA busy_timeout = 0``) and a statement that finds the lock taken is tried again
after 50 µs, doubling up to 2 ms, until ``timeout`` seconds have passed; then the same
``OperationalError`` ("database is locked") is raised as before.

Only what is safe to try again is: a statement outside a transaction (it did nothing: SQLite
refused it before it started) and the ``BEGIN`` that opens one (``transaction_mode``: IMMEDIATE,
the write lock taken at once, so no statement inside a transaction waits for it).
``executemany`` outside a transaction, which may have written some rows when it is refused,
waits with SQLite's own handler as before.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from django.db.backends.sqlite3 import base

#: The first and the longest pause between two tries, in seconds.
FIRST_PAUSE = 0.00005
LONGEST_PAUSE = 0.002


def _busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    """Django's cursor, trying a refused statement again while the connection is outside a
    transaction (``DatabaseWrapper.create_cursor`` sets ``django``)."""

    django: DatabaseWrapper

    def _again(self, run: Callable[[], Any]) -> Any:
        try:
            return run()
        except sqlite3.OperationalError as error:
            if not _busy(error) or self.django.in_atomic_block:
                raise
        deadline = time.monotonic() + self.django.lock_timeout
        pause = FIRST_PAUSE
        while True:
            time.sleep(pause)
            try:
                return run()
            except sqlite3.OperationalError as error:
                if not _busy(error) or self.django.in_atomic_block or time.monotonic() >= deadline:
                    raise
            pause = min(pause * 2, LONGEST_PAUSE)

    def execute(self, query: str, params: Any = None) -> Any:
        return self._again(lambda: base.SQLiteCursorWrapper.execute(self, query, params))

    def executemany(self, query: str, param_list: Any) -> Any:
        if self.django.in_atomic_block:
            return super().executemany(query, param_list)
        raw = self.django.connection
        raw.execute(f"PRAGMA busy_timeout = {int(self.django.lock_timeout * 1000)}")
        try:
            return super().executemany(query, param_list)
        finally:
            raw.execute("PRAGMA busy_timeout = 0")


class DatabaseWrapper(base.DatabaseWrapper):
    lock_timeout: float = 5.0

    def get_new_connection(self, conn_params: dict) -> sqlite3.Connection:
        # The set-up (foreign keys, init_command: WAL) waits with SQLite's handler, as before.
        connection = super().get_new_connection(conn_params)
        self.lock_timeout = float(conn_params.get("timeout", 5.0))
        connection.execute("PRAGMA busy_timeout = 0")
        return connection

    def create_cursor(self, name: str | None = None) -> SQLiteCursorWrapper:
        cursor = self.connection.cursor(factory=SQLiteCursorWrapper)
        cursor.django = self
        return cursor
