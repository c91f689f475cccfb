"""Row locks inside a transaction."""

from __future__ import annotations

from django.db import models

from keys.prepared import PreparedRead

_LOCKS: dict[type[models.Model], PreparedRead] = {}


def lock_row(model: type[models.Model], pk: object) -> bool:
    """Lock one row for the rest of the transaction (``SELECT ... FOR UPDATE`` on PostgreSQL;
    on SQLite the transaction's ``BEGIN IMMEDIATE`` already holds the write lock) and say
    whether it exists. Only its id is read (a lock needs no model built from ~20 columns), with
    SQL built once per connection (``keys.prepared``): the write lock is held for less time."""
    read = _LOCKS.get(model)
    if read is None:
        read = _LOCKS[model] = PreparedRead(model.objects.select_for_update().only("pk"), "pk")
    return read.first(pk=pk) is not None
