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
  PostgreSQL); a save inside a transaction still uses Django's savepoint.
"""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.db import DatabaseError, IntegrityError, connections, router
from django.utils.crypto import get_random_string


class SessionStore(db.SessionStore):
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
        using = router.db_for_write(self.model)
        self.model.objects.filter(session_key=session_key)._raw_delete(using)

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        using = router.db_for_write(self.model)
        if connections[using].in_atomic_block:
            return super().save(must_create)
        data = self._get_session(no_load=must_create)
        obj = self.create_model_instance(data)
        try:
            obj.save(force_insert=must_create, force_update=not must_create, using=using)
        except IntegrityError as error:
            if must_create:
                raise CreateError from error
            raise
        except DatabaseError as error:
            if not must_create:
                raise UpdateError from error
            raise
        return None
