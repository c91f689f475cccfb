"""The database session store, with fewer writes (``SESSION_ENGINE = "keys.sessions"``).

Django's database store, with three changes measured by ``make bench`` and
``benchmarks/profile_flow.py``, none of which changes what a session holds or who can use it:

- ``cycle_key`` (at every sign-in and at the start of an activation, against session fixation)
  deletes the old row at once, as Django does, but writes the new one once, when the response
  is saved, instead of inserting it empty first and updating it a moment later;
- a session is deleted with one ``DELETE`` (Django reads the row first);
- a new key is not looked up before it is used: the row is created with an ``INSERT`` that the
  primary key refuses if the key exists (a chance of about 2^-165), and ``create`` then draws
  another key, as Django's own loop does; an existing session is never overwritten;
- outside a transaction, a session is saved with one statement in autocommit (Django wraps
  that one statement in ``BEGIN``/``COMMIT``, a write lock on SQLite and two round trips on
  PostgreSQL); a save inside a transaction still uses Django's savepoint;
- the row is read with a prepared read (``keys.prepared``: the SQL built once per connection,
  about 0.25 ms of CPU less on every request) and written with a plain ``UPDATE``/``INSERT``
  of its three columns, values prepared by the model's own fields (as ``Model.save`` does,
  without its machinery: the session model has no signals of ours). A save of a row that is
  gone raises ``UpdateError``, an insert of a key that exists ``CreateError``, as Django's.
"""

from __future__ import annotations

import logging

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.contrib.sessions.models import Session
from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError, IntegrityError, connections, router
from django.utils import timezone
from django.utils.crypto import get_random_string

from keys.prepared import PreparedRead

_READ = PreparedRead(Session.objects.all(), "session_key", "expire_date__gt")
_COLUMNS = ("session_key", "session_data", "expire_date")


_STATEMENTS: dict[str, tuple[str, str, str]] = {}


def _statements(connection) -> tuple[str, str, str]:
    """The three statements, in this database's quoting (built once per backend)."""
    statements = _STATEMENTS.get(connection.vendor)
    if statements is None:
        quote = connection.ops.quote_name
        table = quote(Session._meta.db_table)
        key, data, expire = (quote(Session._meta.get_field(name).column) for name in _COLUMNS)
        # Identifiers from the model's metadata, quoted by the backend; values are parameters.
        statements = _STATEMENTS[connection.vendor] = (
            f"UPDATE {table} SET {data} = %s, {expire} = %s WHERE {key} = %s",  # noqa: S608
            f"INSERT INTO {table} ({key}, {data}, {expire}) VALUES (%s, %s, %s)",  # noqa: S608
            f"DELETE FROM {table} WHERE {key} = %s",  # noqa: S608
        )
    return statements


class SessionStore(db.SessionStore):
    def _get_session_from_db(self) -> Session | None:
        if self.session_key is None:
            return None
        try:
            return _READ.get(session_key=self.session_key, expire_date__gt=timezone.now())
        except (Session.DoesNotExist, SuspiciousOperation) as error:
            if isinstance(error, SuspiciousOperation):
                logger = logging.getLogger(f"django.security.{error.__class__.__name__}")
                logger.warning(str(error))
            self._session_key = None
            return None

    def _get_new_session_key(self) -> str:
        # No SELECT first: ``create`` inserts with ``must_create`` and draws again on a clash.
        return get_random_string(32, VALID_KEY_CHARS)

    def cycle_key(self) -> None:
        data = self._session
        key = self.session_key
        # No key now: the next save creates the row under a new, unused key (``create``).
        self._session_key = None
        self._session_cache = data
        self.modified = True
        if key:
            self.delete(key)

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        connection = connections[router.db_for_write(self.model)]
        with connection.cursor() as cursor:
            cursor.execute(_statements(connection)[2], [session_key])

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        using = router.db_for_write(self.model)
        if connections[using].in_atomic_block:
            return super().save(must_create)
        data = self._get_session(no_load=must_create)
        obj = self.create_model_instance(data)
        connection = connections[using]
        update, insert, _delete = _statements(connection)
        key = obj.session_key
        session_data = Session._meta.get_field("session_data").get_db_prep_save(
            obj.session_data, connection
        )
        expire = Session._meta.get_field("expire_date").get_db_prep_save(
            obj.expire_date, connection
        )
        try:
            with connection.cursor() as cursor:
                if must_create:
                    cursor.execute(insert, [key, session_data, expire])
                else:
                    cursor.execute(update, [session_data, expire, key])
                    if cursor.rowcount != 1:
                        # As Model.save(force_update=True): "did not affect any rows".
                        raise UpdateError
        except IntegrityError as error:
            if must_create:
                raise CreateError from error
            raise
        except DatabaseError as error:
            if not must_create:
                raise UpdateError from error
            raise
        return None
