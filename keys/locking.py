"""Row locks inside a transaction."""

from __future__ import annotations

from django.db import models


def lock_row(model: type[models.Model], pk: object) -> bool:
    """Lock one row for the rest of the transaction (``SELECT ... FOR UPDATE`` on PostgreSQL;
    on SQLite the transaction's ``BEGIN IMMEDIATE`` already holds the write lock) and say
    whether it exists. Only its id is read: a lock needs no model built from ~20 columns."""
    return bool(list(model.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True)))
