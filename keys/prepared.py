"""Reads whose SQL is built once per database connection, then only executed (issue 10).

The ORM builds and compiles a query's SQL on every call: for the wizard's read of an
activation with its citizen and account (``select_related``), about 0.5 ms of CPU to build
the SQL against 0.05 ms to run it; for the session row, about 0.25 ms. These reads happen on
every request. A ``PreparedRead`` takes a queryset and the names of its equality (or
comparison) lookups, builds the SQL once per connection with placeholder values in those
lookups, remembers where each placeholder's parameter sits, and afterwards runs the same SQL
with the real values, turning the rows into model instances exactly as Django's own
``ModelIterable`` does (the same converters, ``from_db``, ``select_related`` populators), so
the objects are the ORM's: ``tests/test_prepared.py`` compares them field by field, with their
related objects, against the plain queryset, on SQLite and on PostgreSQL.

What it does not do: joins in a lookup (``citizen__email``), ``__in`` on a changing value,
annotations, ``prefetch_related``, ``values()``. It refuses them when the read is declared or
first prepared, not silently. ``only()`` and ``select_for_update()`` are kept as the ORM
compiles them; a locking read, as in the ORM, must run inside ``transaction.atomic()``.
Every execution goes through the connection's cursor wrapper, so query logging, counting
(``assertNumQueries``, ``make bench``) and the connection's health checks are unchanged.
"""

from __future__ import annotations

import datetime
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.db.models import Field, Model, QuerySet
from django.db.models.query import MAX_GET_RESULTS, _get_from_db, get_related_populators
from django.db.transaction import TransactionManagementError

_COMPARISONS = {"exact", "gt", "gte", "lt", "lte"}
_INTEGERS = {
    "AutoField",
    "BigAutoField",
    "SmallAutoField",
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
}
_STRINGS = {"CharField", "TextField", "SlugField", "EmailField"}


@dataclass(frozen=True)
class _Slot:
    name: str  # the lookup as given: "pk", "user_id", "expire_date__gt"
    field: Field  # the concrete field whose value the parameter is


@dataclass
class _Prepared:
    sql: str
    params: tuple[Any, ...]
    positions: tuple[tuple[int, _Slot], ...]
    compiler: Any
    converters: dict
    model_start: int
    model_end: int
    init_list: list[str]
    from_db: Callable[..., Model]
    populators: list
    track_peers: bool
    locks: bool


def _value_field(model: type[Model], lookup: str) -> Field:
    parts = lookup.split("__")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] not in _COMPARISONS):
        raise ValueError(f"PreparedRead supports field=value and comparisons only: {lookup!r}")
    name = parts[0]
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not field.concrete or field.many_to_many or field.one_to_many:
        raise ValueError(f"PreparedRead needs a concrete column: {lookup!r}")
    # A foreign key's parameter is its target's value (an id).
    return field.target_field if field.is_relation else field


def _placeholder(field: Field, index: int) -> Any:
    """A value of the field's type that nothing else in the query can equal."""
    kind = field.get_internal_type()
    if kind in _INTEGERS:
        return 917_263_548_000 + index
    if kind in _STRINGS:
        return f"prepared-read-slot-{index}-5c1e"
    if kind == "DateTimeField":
        return datetime.datetime(1901, 2, 3, 4, 5, index, 678_901, tzinfo=datetime.UTC)
    raise TypeError(f"PreparedRead has no placeholder for a {kind}")


def _adapt(field: Field, value: Any, connection: Any) -> Any:
    # What a lookup does with its right-hand side: get_prep_value, then the database's form.
    return field.get_db_prep_value(field.get_prep_value(value), connection, prepared=True)


class PreparedRead[M: Model]:
    """``PreparedRead(Activation.objects.select_related("citizen"), "pk").get(pk=3)``.

    ``queryset`` may carry ``select_related``, ``only``, ``select_for_update``, filters with
    constant values and an ordering; ``lookups`` name the filters whose values change per call
    (never ``None``: the ORM would compile that one as ``IS NULL``). ``get`` behaves
    as ``QuerySet.get`` (``DoesNotExist``, ``MultipleObjectsReturned``); ``first`` returns the
    first row in the queryset's ordering or ``None``; ``all`` returns the list of the rows (at
    most ``limit``).
    """

    def __init__(self, queryset: QuerySet[M], *lookups: str, limit: int | None = None) -> None:
        if queryset._fields is not None or queryset._prefetch_related_lookups:
            raise ValueError("PreparedRead reads whole model instances, without prefetching")
        self.queryset = queryset
        self.model: type[M] = queryset.model
        self.slots = tuple(_Slot(name, _value_field(self.model, name)) for name in lookups)
        self.limit = limit  # of all()'s rows (a queryset cannot be filtered once sliced)
        # As QuerySet.db: a locking read goes to the database for writes.
        self.for_write = queryset._for_write or bool(queryset.query.select_for_update)
        self._by_connection: dict[str, weakref.WeakKeyDictionary] = {}

    # --- preparing ---------------------------------------------------------------------------

    def _prepare(self, alias: str, connection: Any, mode: str) -> _Prepared:
        placeholders = {
            slot.name: _placeholder(slot.field, index) for index, slot in enumerate(self.slots)
        }
        queryset = self.queryset.using(alias).filter(**placeholders)
        if mode == "get":
            # As QuerySet.get(): no ORDER BY, at most MAX_GET_RESULTS rows.
            queryset = queryset.order_by()
            queryset.query.set_limits(high=MAX_GET_RESULTS)
        elif mode == "first":
            # As QuerySet.first(): the queryset's ordering, or the primary key's.
            if not queryset.ordered:
                queryset = queryset.order_by("pk")
            queryset = queryset[:1]
        elif self.limit is not None:
            queryset = queryset[: self.limit]
        compiler = queryset.query.get_compiler(using=alias, connection=connection)
        sql, params = compiler.as_sql()
        positions = []
        for slot in self.slots:
            wanted = _adapt(slot.field, placeholders[slot.name], connection)
            found = [i for i, param in enumerate(params) if param == wanted]
            if len(found) != 1:
                raise ValueError(f"PreparedRead cannot place the parameter of {slot.name!r}")
            positions.append((found[0], slot))
        if compiler.annotation_col_map:
            raise ValueError("PreparedRead does not read annotations")
        select, klass_info = compiler.select, compiler.klass_info
        columns = [column[0] for column in select[: compiler.col_count]]
        if compiler.has_composite_fields(columns):
            raise ValueError("PreparedRead does not read composite fields")
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        fetch_mode = queryset._fetch_mode
        return _Prepared(
            sql=sql,
            params=tuple(params),
            positions=tuple(positions),
            compiler=compiler,
            converters=compiler.get_converters(columns),
            model_start=start,
            model_end=end,
            init_list=[column[0].target.attname for column in select[start:end]],
            from_db=_get_from_db(klass_info["model"], fetch_mode),
            populators=get_related_populators(klass_info, select, alias, fetch_mode),
            track_peers=fetch_mode.track_peers,
            locks=bool(queryset.query.select_for_update),
        )

    def _prepared(self, alias: str, mode: str) -> tuple[Any, _Prepared]:
        connection = connections[alias]  # this thread's connection object
        cache = self._by_connection.setdefault(f"{alias}:{mode}", weakref.WeakKeyDictionary())
        prepared = cache.get(connection)
        if prepared is None:
            prepared = cache[connection] = self._prepare(alias, connection, mode)
        return connection, prepared

    # --- reading -----------------------------------------------------------------------------

    def _rows(self, mode: str, values: dict[str, Any]) -> tuple[str, list[M]]:
        if set(values) != {slot.name for slot in self.slots}:
            raise TypeError(f"PreparedRead expects {[s.name for s in self.slots]}, got {values}")
        if any(value is None for value in values.values()):
            raise ValueError("PreparedRead compares with =, which None never equals: use the ORM")
        alias = (router.db_for_write if self.for_write else router.db_for_read)(self.model)
        connection, prepared = self._prepared(alias, mode)
        if prepared.locks and not connection.in_atomic_block:
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = list(prepared.params)
        for position, slot in prepared.positions:
            params[position] = _adapt(slot.field, values[slot.name], connection)
        with connection.cursor() as cursor:
            cursor.execute(prepared.sql, params)
            rows = cursor.fetchall()
        if prepared.converters:
            rows = list(prepared.compiler.apply_converters(rows, prepared.converters))
        objects = []
        peers: list = []
        for row in rows:
            obj = prepared.from_db(
                alias, prepared.init_list, row[prepared.model_start : prepared.model_end]
            )
            if prepared.track_peers:
                peers.append(weakref.ref(obj))
                obj._state.peers = peers
            for populator in prepared.populators:
                populator.populate(row, obj)
            objects.append(obj)
        return alias, objects

    def get(self, **values: Any) -> M:
        _alias, objects = self._rows("get", values)
        if len(objects) == 1:
            return objects[0]
        if not objects:
            raise self.model.DoesNotExist(
                f"{self.model._meta.object_name} matching query does not exist."
            )
        raise self.model.MultipleObjectsReturned(
            f"get() returned more than one {self.model._meta.object_name} -- it returned "
            f"{'more than ' if len(objects) >= MAX_GET_RESULTS else ''}{len(objects)}!"
        )

    def first(self, **values: Any) -> M | None:
        _alias, objects = self._rows("first", values)
        return objects[0] if objects else None

    def all(self, **values: Any) -> list[M]:
        """Every row, in the queryset's ordering (as ``list(queryset.filter(...))``)."""
        return self._rows("all", values)[1]
