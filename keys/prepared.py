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


# --- writes ------------------------------------------------------------------------------------
#
# ``Model.save()`` and ``QuerySet.update()``/``delete()`` build their SQL on every call too
# (about 0.3 ms of CPU for an audit row's INSERT through ``save()``). The functions below keep
# each statement's SQL per model, columns and database, and adapt the values as the ORM's
# compilers do (``pre_save`` then ``get_db_prep_save``). They send no signals: they are for the
# models nobody listens to and whose ``save()``/``delete()`` is Django's own (others are
# refused; ``tests/test_prepared.py`` checks the rows against the ORM's own).

_WRITES: dict[tuple, str] = {}


def _write_connection(model: type[Model], **hints: Any) -> tuple[str, Any]:
    alias = router.db_for_write(model, **hints)
    return alias, connections[alias]


def _statement(key: tuple, build: Callable[[], str]) -> str:
    sql = _WRITES.get(key)
    if sql is None:
        sql = _WRITES[key] = build()
    return sql


def _plain(value: Any) -> Any:
    if hasattr(value, "resolve_expression"):
        raise ValueError("prepared writes take values, not expressions: use the ORM")
    return value


def _related(field: Field, value: Any) -> Any:
    # As the ORM's UPDATE compiler: an object for a relation stands for its key.
    if field.remote_field is not None and hasattr(value, "prepare_database_save"):
        return value.prepare_database_save(field)
    return value


def _refuse_listeners(model: type[Model], method: str, *signals: Any) -> None:
    # A model's own save() or delete() (a derived column, say) would be skipped as much as a
    # receiver.
    if getattr(model, method) is not getattr(Model, method):
        raise ValueError(f"{model.__name__} has its own {method}(): use the ORM")
    for signal in signals:
        if signal.has_listeners(model):
            raise ValueError(f"{model.__name__} has {signal} receivers: save it with the ORM")


def insert[M: Model](obj: M) -> M:
    """Save a new ``obj`` with one prepared ``INSERT … RETURNING`` its primary key, as
    ``obj.save(force_insert=True)`` would (field defaults and ``auto_now_add`` applied by the
    fields' ``pre_save``), without ``pre_save``/``post_save`` signals (refused where a receiver
    is connected, or where the model has a ``save()`` of its own). Models with an
    auto-incremented key and no database defaults only."""
    from django.db.models.signals import post_save, pre_save

    model = type(obj)
    opts = model._meta
    _refuse_listeners(model, "save", pre_save, post_save)
    if opts.auto_field is None or opts.pk is not opts.auto_field or opts.parents:
        raise ValueError(f"{model.__name__}: prepared inserts need an auto-incremented key")
    fields = [f for f in opts.concrete_fields if f is not opts.auto_field]
    if any(f.generated or f.has_db_default() for f in fields):
        raise ValueError(f"{model.__name__}: database-side values: save it with the ORM")
    alias, connection = _write_connection(model, instance=obj)
    returning = connection.features.can_return_columns_from_insert

    def build() -> str:
        qn = connection.ops.quote_name
        columns = ", ".join(qn(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {qn(opts.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608
        return f"{sql} RETURNING {qn(opts.pk.column)}" if returning else sql

    sql = _statement(("insert", model, alias, connection.vendor), build)
    params = [
        f.get_db_prep_save(_plain(f.pre_save(obj, True)), connection=connection) for f in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            pk = cursor.fetchone()[0]
        else:  # pragma: no cover - SQLite and PostgreSQL both return it
            pk = connection.ops.last_insert_id(cursor, opts.db_table, opts.pk.column)
    setattr(obj, opts.pk.attname, pk)
    obj._state.adding = False
    obj._state.db = alias
    return obj


def update_row(model: type[Model], pk: Any, **values: Any) -> int:
    """``model.objects.filter(pk=pk).update(**values)`` with its SQL kept: plain values of the
    model's own concrete fields (``user_id`` or ``user``), no expressions. Returns the rows
    changed (0 or 1)."""
    return update_where(model, {model._meta.pk.name: pk}, **values)


def update_where(model: type[Model], where: dict[str, Any], **values: Any) -> int:
    """``model.objects.filter(**where).update(**values)`` with its SQL kept, for equality on
    the model's own concrete fields (``pk``, ``user`` or ``user_id``; ``None`` is ``IS NULL``,
    as in the ORM): plain values, no expressions, no lookups. Returns the rows changed."""
    opts = model._meta
    fields = [opts.get_field(name) for name in values]
    if not fields or any(not f.concrete or f.many_to_many or f.primary_key for f in fields):
        raise ValueError(f"update_where sets the model's own columns only: {list(values)}")
    keys = [opts.pk if name == "pk" else opts.get_field(name) for name in where]
    if not keys or any(not f.concrete or f.many_to_many for f in keys):
        raise ValueError(f"update_where filters on the model's own columns only: {list(where)}")
    alias, connection = _write_connection(model)

    nulls = tuple(value is None for value in where.values())

    def build() -> str:
        qn = connection.ops.quote_name
        sets = ", ".join(f"{qn(f.column)} = %s" for f in fields)
        conditions = " AND ".join(
            f"{qn(f.column)} IS NULL" if null else f"{qn(f.column)} = %s"
            for f, null in zip(keys, nulls, strict=True)
        )
        # Names from the model's own metadata, quoted; values only as parameters.
        return f"UPDATE {qn(opts.db_table)} SET {sets} WHERE {conditions}"  # noqa: S608

    key = ("update", model, tuple(values), tuple(where), nulls, alias, connection.vendor)
    sql = _statement(key, build)
    params = [
        f.get_db_prep_save(_related(f, _plain(value)), connection=connection)
        for f, value in zip(fields, values.values(), strict=True)
    ]
    params += [
        f.get_db_prep_value(_related(f, _plain(value)), connection)
        for f, value in zip(keys, where.values(), strict=True)
        if value is not None
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def delete_row(model: type[Model], pk: Any) -> int:
    """``model.objects.filter(pk=pk).delete()`` with its SQL kept, for a model no other model
    refers to (nothing to cascade, refused otherwise) and with no delete receivers. Returns the
    rows deleted (0 or 1)."""
    from django.db.models.signals import post_delete, pre_delete

    opts = model._meta
    _refuse_listeners(model, "delete", pre_delete, post_delete)
    if opts.related_objects:
        raise ValueError(f"{model.__name__} is referred to: delete it with the ORM")
    alias, connection = _write_connection(model)

    def build() -> str:
        qn = connection.ops.quote_name
        return f"DELETE FROM {qn(opts.db_table)} WHERE {qn(opts.pk.column)} = %s"  # noqa: S608

    sql = _statement(("delete", model, alias, connection.vendor), build)
    with connection.cursor() as cursor:
        cursor.execute(sql, [opts.pk.get_db_prep_value(pk, connection)])
        return cursor.rowcount


def save_fields(obj: Model, *names: str) -> None:
    """``obj.save(update_fields=names)`` with its SQL kept: the fields' ``pre_save`` applied
    (``auto_now`` sets the time, on the object too), no signals (refused where a receiver is
    connected, or where the model has a ``save()`` of its own), and the ORM's
    ``DatabaseError`` when the row is gone."""
    from django.db import DatabaseError
    from django.db.models.signals import post_save, pre_save

    model = type(obj)
    _refuse_listeners(model, "save", pre_save, post_save)
    if obj._state.adding or obj.pk is None:
        raise ValueError("save_fields updates a saved row: save a new object with insert()")
    opts = model._meta
    values = {}
    for name in names:
        field = opts.get_field(name)
        values[field.attname] = field.pre_save(obj, False)
    if not update_row(model, obj.pk, **values):
        raise DatabaseError("Save with update_fields did not affect any rows.")
