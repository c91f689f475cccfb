"""Prepared reads (keys/prepared.py): the SQL built once per connection, the objects the ORM's.

Each read is compared with the plain queryset it stands for: the same rows, every field's
value (converters included: datetimes, booleans, NULLs), the same related objects from
``select_related``, the same errors. Run on SQLite and on PostgreSQL (``make test-postgres``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from keys.models import Activation, Citizen, DigitalKey, User
from keys.prepared import PreparedRead
from keys.services import activation as flow
from keys.services import issuance
from keys.sessions import SessionStore

PASSWORD = "Correct-Horse-9x"


def values(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


@pytest.fixture
def activated(citizen, clerk, rf):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    request = rf.post("/", REMOTE_ADDR="127.0.0.1")
    flow.redeem_activation_code(issued.activation.pk, issued.activation_code, request)
    user = flow.create_account(issued.activation, "an.prepared", PASSWORD, request)
    key = flow.enrol_key(user, "totp", issued.activation)
    return issued.activation, user, key


def test_a_select_related_read_gives_the_orms_objects(activated):
    activation, _user, _key = activated
    prepared = PreparedRead(
        Activation.objects.select_related("citizen", "citizen__account"), "pk"
    ).get(pk=activation.pk)
    # The related objects are really loaded: reaching them costs no query.
    with CaptureQueriesContext(connection) as queries:
        assert prepared.citizen.account.username == "an.prepared"
    assert len(queries) == 0
    plain = Activation.objects.select_related("citizen", "citizen__account").get(pk=activation.pk)
    assert values(prepared) == values(plain)
    assert values(prepared.citizen) == values(plain.citizen)
    assert values(prepared.citizen.account) == values(plain.citizen.account)
    assert prepared.created_at.tzinfo is not None  # converted as the ORM does
    assert prepared._state.adding is False and prepared._state.db == "default"


def test_a_missing_or_null_relation_is_as_the_orms(activated, office, clerk):
    bare = Citizen.objects.create(
        first_name="No",
        last_name="Account",
        national_number="85010100115",
        email="no.account@example.be",
        language="fr",
        id_document_type="id_card",
        id_document_number="X1",
        office=office,
    )
    issued = issuance.issue_activation(bare, issued_by=clerk)
    read = PreparedRead(Activation.objects.select_related("citizen", "citizen__account"), "pk")
    got = read.get(pk=issued.activation.pk)
    assert got.citizen.account is None
    assert values(got.citizen) == values(Citizen.objects.get(pk=bare.pk))


@pytest.mark.django_db
def test_get_raises_as_the_orm_and_first_returns_none():
    read = PreparedRead(Activation.objects.all(), "pk")
    with pytest.raises(Activation.DoesNotExist):
        read.get(pk=987654)
    assert read.first(pk=987654) is None


@pytest.mark.django_db
def test_get_of_many_rows_raises_multiple_objects_returned(office):
    for number, national in enumerate(("85010100214", "85010100313")):
        Citizen.objects.create(
            first_name="Same",
            last_name=f"Name {number}",
            national_number=national,
            email=f"same{number}@example.be",
            language="nl",
            id_document_type="id_card",
            id_document_number=f"S{number}",
            office=office,
        )
    read = PreparedRead(Citizen.objects.all(), "first_name")
    with pytest.raises(Citizen.MultipleObjectsReturned):
        read.get(first_name="Same")
    first = read.first(first_name="Same")
    assert first == Citizen.objects.filter(first_name="Same").order_by("pk").first()


def test_several_lookups_and_a_constant_filter_each_take_their_own_value(activated):
    _activation, user, key = activated
    read = PreparedRead(DigitalKey.objects.all(), "pk", "user_id")
    assert values(read.get(pk=key.pk, user_id=user.pk)) == values(DigitalKey.objects.get(pk=key.pk))
    with pytest.raises(DigitalKey.DoesNotExist):
        read.get(pk=key.pk, user_id=user.pk + 1)  # the second value is really used
    active_only = PreparedRead(User.objects.filter(is_active=True), "pk")
    assert active_only.get(pk=user.pk) == user
    User.objects.filter(pk=user.pk).update(is_active=False)
    with pytest.raises(User.DoesNotExist):
        active_only.get(pk=user.pk)


def test_a_comparison_on_a_datetime_is_the_orms(db):
    now = timezone.now()
    Session.objects.create(session_key="a" * 32, session_data="x", expire_date=now)
    read = PreparedRead(Session.objects.all(), "session_key", "expire_date__gt")
    assert read.first(session_key="a" * 32, expire_date__gt=now - timedelta(seconds=1))
    assert read.first(session_key="a" * 32, expire_date__gt=now) is None
    assert read.first(session_key="a" * 32, expire_date__gt=now + timedelta(seconds=1)) is None


def test_the_sql_is_built_once_then_only_run(activated, monkeypatch):
    activation, _user, _key = activated
    read = PreparedRead(Activation.objects.select_related("citizen"), "pk")
    read.get(pk=activation.pk)
    from django.db.models.sql import compiler

    def refuse(*args, **kwargs):
        raise AssertionError("the SQL was built again")

    monkeypatch.setattr(compiler.SQLCompiler, "as_sql", refuse)
    with CaptureQueriesContext(connection) as queries:
        assert read.get(pk=activation.pk).pk == activation.pk
    assert len(queries) == 1  # run through the connection's cursor: counted like any query


def test_what_it_cannot_read_is_refused_when_declared():
    with pytest.raises(ValueError, match="comparisons"):
        PreparedRead(Citizen.objects.all(), "email__in")
    with pytest.raises(ValueError, match="comparisons"):
        PreparedRead(Activation.objects.all(), "citizen__email")
    with pytest.raises(ValueError, match="prefetching"):
        PreparedRead(User.objects.prefetch_related("digital_keys"), "pk")
    with pytest.raises(ValueError, match="whole model"):
        PreparedRead(User.objects.values("pk"), "pk")


@pytest.mark.django_db
def test_wrong_or_missing_values_are_refused():
    read = PreparedRead(Activation.objects.all(), "pk")
    with pytest.raises(TypeError):
        read.get(id=3)
    with pytest.raises(TypeError):
        read.get()
    with pytest.raises(ValueError, match="None"):
        read.get(pk=None)


# --- the session store built on it (keys/sessions.py) --------------------------------------


def saved_store() -> SessionStore:
    """A new session holding ``{"a": 1}``, its row created."""
    store = SessionStore()
    store["a"] = 1
    store.save(must_create=True)
    return store


@pytest.mark.django_db
def test_the_session_store_reads_writes_and_expires_as_djangos():
    store = saved_store()
    key = store.session_key
    row = Session.objects.get(session_key=key)
    assert SessionStore(key).load() == {"a": 1}
    again = SessionStore(key)
    again["b"] = 2
    again.save()
    assert SessionStore(key).load() == {"a": 1, "b": 2}
    assert Session.objects.get(session_key=key).expire_date >= row.expire_date
    # Expired: not loaded, and the store forgets the key (a new one is drawn at the next save).
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))
    expired = SessionStore(key)
    assert expired.load() == {}
    assert expired.session_key is None


@pytest.mark.django_db
def test_saving_a_session_that_is_gone_raises_update_error():
    store = saved_store()
    Session.objects.all().delete()
    store["a"] = 2
    with pytest.raises(UpdateError):
        store.save()
    assert not Session.objects.exists()  # not silently re-created


@pytest.mark.django_db
def test_creating_a_session_whose_key_exists_raises_create_error():
    store = saved_store()
    clash = SessionStore(store.session_key)
    clash._session_cache = {"b": 2}
    with pytest.raises(CreateError):
        clash.save(must_create=True)
    assert SessionStore(store.session_key).load() == {"a": 1}


@pytest.mark.django_db
def test_a_deleted_session_is_gone():
    store = saved_store()
    key = store.session_key
    store.delete()
    assert not Session.objects.filter(session_key=key).exists()


def test_all_gives_every_row_in_the_querysets_order(activated):
    _activation, user, key = activated
    second = flow.enrol_key(user, "email", None)
    base = DigitalKey.objects.filter(user__is_active=True).order_by("-kind")
    read = PreparedRead(DigitalKey.objects.order_by("-kind"), "user_id")
    got = read.all(user_id=user.pk)
    assert [values(k) for k in got] == [values(k) for k in base.filter(user_id=user.pk)]
    assert [k.kind for k in got] == ["totp", "email"] and {k.pk for k in got} == {key.pk, second.pk}
    assert read.all(user_id=user.pk + 1) == []


def test_all_stops_at_its_limit(activated):
    _activation, user, _key = activated
    flow.enrol_key(user, "email", None)
    read = PreparedRead(DigitalKey.objects.order_by("kind"), "user_id", limit=1)
    got = read.all(user_id=user.pk)
    assert [k.kind for k in got] == ["email"]


def test_a_locking_read_gives_the_orms_object_and_locks(activated):
    from django.db import transaction

    activation, _user, _key = activated
    read = PreparedRead(Activation.objects.select_for_update().select_related("citizen"), "pk")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = read.get(pk=activation.pk)
    assert values(locked) == values(Activation.objects.get(pk=activation.pk))
    if connection.vendor == "postgresql":
        assert "FOR UPDATE" in queries[-1]["sql"]


@pytest.mark.django_db(transaction=True)
def test_a_locking_read_outside_a_transaction_is_refused_as_by_the_orm():
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    Session.objects.create(session_key="b" * 32, session_data="x", expire_date=timezone.now())
    read = PreparedRead(Session.objects.select_for_update(), "session_key")
    with transaction.atomic():
        assert read.get(session_key="b" * 32).session_data == "x"
    with pytest.raises(TransactionManagementError):
        read.get(session_key="b" * 32)


def test_only_reads_the_named_columns(activated):
    activation, _user, _key = activated
    read = PreparedRead(Activation.objects.only("pk"), "pk")
    got = read.first(pk=activation.pk)
    assert got.pk == activation.pk and got.get_deferred_fields() >= {"state", "code_hash"}


def test_the_authentication_backend_reads_the_user_as_djangos(activated, client):
    from django.contrib.auth.backends import ModelBackend as DjangosBackend

    from keys.backends import ModelBackend

    _activation, user, _key = activated
    ours, djangos = ModelBackend().get_user(user.pk), DjangosBackend().get_user(user.pk)
    assert values(ours) == values(djangos)
    assert ModelBackend().get_user(user.pk + 1000) is None
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert ModelBackend().get_user(user.pk) is None  # as Django's: inactive users are refused
    assert DjangosBackend().get_user(user.pk) is None


# --- prepared writes ---------------------------------------------------------------------------


def test_an_insert_writes_the_row_the_orm_writes(activated, rf):
    """Every column, defaults and JSON included, read back by the ORM; the object as saved."""
    from keys.models import AuditEvent
    from keys.prepared import insert

    activation, user, _key = activated
    event = AuditEvent(
        action=AuditEvent.Action.SIGNIN_SUCCEEDED,
        actor=user,
        actor_label="an.prepared",
        citizen=activation.citizen,
        activation=activation,
        ip_address="2001:db8::1",
        user_agent="Émile's browser",
        detail={"kind": "totp", "nested": {"n": 1, "é": [True, None]}},
    )
    plain = AuditEvent.objects.create(
        **{f.attname: getattr(event, f.attname) for f in AuditEvent._meta.concrete_fields[1:]}
    )
    saved = insert(event)
    assert saved is event and event.pk is not None and event.pk != plain.pk
    assert event._state.adding is False and event._state.db == "default"
    read = AuditEvent.objects.get(pk=event.pk)
    assert {**values(read), "id": None} == {**values(plain), "id": None}
    assert read.created_at == event.created_at and read.created_at.tzinfo is not None


def test_an_insert_applies_the_fields_defaults(db):
    from keys.models import SignInAttempt
    from keys.prepared import insert

    before = timezone.now()
    attempt = insert(SignInAttempt(username_canonical="jan", succeeded=False))
    read = SignInAttempt.objects.get(pk=attempt.pk)
    assert read.ip_address is None and read.succeeded is False
    assert before <= read.created_at <= timezone.now()


def test_update_row_sets_the_columns_of_one_row(activated):
    from keys.prepared import update_row

    _activation, user, key = activated
    other = flow.enrol_key(user, "email", None)
    when = timezone.now() - timedelta(days=3)
    assert update_row(DigitalKey, key.pk, last_used_at=when, email="é@example.be") == 1
    key.refresh_from_db()
    other.refresh_from_db()
    assert key.last_used_at == when and key.email == "é@example.be"
    assert other.last_used_at is None
    assert update_row(DigitalKey, 10**9, last_used_at=when) == 0
    # A relation by its object or by its column, as QuerySet.update takes it.
    assert update_row(DigitalKey, key.pk, user=user) == 1
    assert update_row(DigitalKey, key.pk, user_id=user.pk) == 1


def test_update_where_sets_the_rows_that_match_every_column(activated):
    from keys.models import KnownBrowser
    from keys.prepared import update_where

    _activation, user, _key = activated
    other_user = User.objects.create_user(username="piet.janssens", password=None)
    mine = KnownBrowser.objects.create(user=user, browser_hash="a" * 64)
    my_other = KnownBrowser.objects.create(user=user, browser_hash="b" * 64)
    theirs = KnownBrowser.objects.create(user=other_user, browser_hash="a" * 64)
    when = timezone.now() - timedelta(days=2)
    # The user by its object or by its column, as QuerySet.update's filter takes it.
    assert update_where(KnownBrowser, {"user": user, "browser_hash": "a" * 64}, last_seen=when) == 1
    assert (
        update_where(KnownBrowser, {"user_id": user.pk, "browser_hash": "c" * 64}, last_seen=when)
        == 0
    )
    for row in (mine, my_other, theirs):
        row.refresh_from_db()
    assert mine.last_seen == when
    assert my_other.last_seen != when and theirs.last_seen != when
    assert update_where(KnownBrowser, {"pk": theirs.pk}, user_agent="Firefox") == 1
    theirs.refresh_from_db()
    assert theirs.user_agent == "Firefox"
    with pytest.raises(ValueError, match="filters on the model's own columns"):
        update_where(KnownBrowser, {}, user_agent="x")
    with pytest.raises(ValueError, match="sets the model's own columns"):
        update_where(KnownBrowser, {"pk": theirs.pk})
    with pytest.raises(ValueError, match="expressions"):
        update_where(KnownBrowser, {"pk": F("user_id")}, user_agent="x")


def test_update_where_none_is_is_null_as_in_the_orm(activated):
    from keys.models import OneTimeCode
    from keys.prepared import update_where

    _activation, _user, key = activated
    now = timezone.now()
    used = OneTimeCode.objects.create(key=key, code_hash="u", expires_at=now, consumed_at=now)
    waiting = [OneTimeCode.objects.create(key=key, code_hash=h, expires_at=now) for h in "ab"]
    later = now + timedelta(minutes=1)
    changed = update_where(OneTimeCode, {"key": key.pk, "consumed_at": None}, consumed_at=later)
    assert changed == 2
    assert {c.consumed_at for c in OneTimeCode.objects.filter(pk__in=[w.pk for w in waiting])} == {
        later
    }
    used.refresh_from_db()
    assert used.consumed_at == now
    # The same statement with a value where None was: "= %s", not "IS NULL".
    assert update_where(OneTimeCode, {"key": key.pk, "consumed_at": later}, delivered=True) == 2
    assert update_where(OneTimeCode, {"key": key.pk, "consumed_at": None}, delivered=True) == 0


def test_delete_row_deletes_one_row(db):
    from keys.models import SignInAttempt
    from keys.prepared import delete_row, insert

    kept = insert(SignInAttempt(username_canonical="jan", succeeded=False))
    gone = insert(SignInAttempt(username_canonical="jan", succeeded=False))
    assert delete_row(SignInAttempt, gone.pk) == 1
    assert delete_row(SignInAttempt, gone.pk) == 0
    assert list(SignInAttempt.objects.values_list("pk", flat=True)) == [kept.pk]


def test_writes_the_orm_must_do_are_refused(db):
    """Signals, cascades, expressions, database-side values: the ORM's, never skipped."""
    from django.db.models import F
    from django.db.models.signals import post_save

    from keys.models import OutboundMessage, SignInAttempt
    from keys.prepared import delete_row, insert, update_row

    with pytest.raises(ValueError, match="receivers"):  # ops.signals counts queued messages
        insert(OutboundMessage(channel="email", recipient="a@example.be"))
    with pytest.raises(ValueError, match="referred to"):
        delete_row(User, 1)
    with pytest.raises(ValueError, match="expressions"):
        update_row(SignInAttempt, 1, username_canonical=F("ip_address"))
    with pytest.raises(ValueError, match="own columns"):
        update_row(SignInAttempt, 1, id=2)

    def listener(**kwargs):  # pragma: no cover - never called
        pass

    post_save.connect(listener, sender=SignInAttempt)
    try:
        with pytest.raises(ValueError, match="receivers"):
            insert(SignInAttempt(username_canonical="jan", succeeded=False))
    finally:
        post_save.disconnect(listener, sender=SignInAttempt)
    assert not SignInAttempt.objects.exists()


def test_the_write_sql_is_built_once_and_counted(db, django_assert_num_queries):
    from keys import prepared
    from keys.models import SignInAttempt

    prepared._WRITES.clear()
    with django_assert_num_queries(3):
        first = prepared.insert(SignInAttempt(username_canonical="a", succeeded=False))
        prepared.update_row(SignInAttempt, first.pk, succeeded=True)
        prepared.delete_row(SignInAttempt, first.pk)
    statements = dict(prepared._WRITES)
    assert len(statements) == 3
    second = prepared.insert(SignInAttempt(username_canonical="b", succeeded=False))
    prepared.update_row(SignInAttempt, second.pk, succeeded=True)
    assert statements == prepared._WRITES


def test_the_audit_trail_and_sign_in_records_are_the_orms(activated, rf):
    """What the services write through the prepared statements reads back as written."""
    from keys import audit
    from keys.models import AuditEvent

    activation, user, _key = activated
    request = rf.post("/", REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="UA")
    request.user = user
    event = audit.record(
        AuditEvent.Action.PASSWORD_CHANGED, request=request, activation=activation, why="test"
    )
    read = AuditEvent.objects.get(pk=event.pk)
    assert (read.actor_id, read.actor_label, read.citizen_id, read.activation_id) == (
        user.pk,
        "an.prepared",
        activation.citizen_id,
        activation.pk,
    )
    assert (read.ip_address, read.user_agent, read.detail) == ("10.1.2.3", "UA", {"why": "test"})


def test_save_fields_is_save_with_update_fields(activated):
    """The named columns only, as ``save(update_fields=...)``; the ORM's error for a row gone."""
    from django.db import DatabaseError

    from keys.prepared import save_fields

    activation, _user, _key = activated
    activation = Activation.objects.get(pk=activation.pk)
    when = timezone.now() - timedelta(minutes=5)
    activation.state = Activation.State.LOCKED
    activation.closed_at = when
    activation.failed_code_attempts = 4  # not named: not written
    save_fields(activation, "state", "closed_at")
    read = Activation.objects.get(pk=activation.pk)
    assert (read.state, read.closed_at, read.failed_code_attempts) == ("locked", when, 0)
    gone = Activation.objects.get(pk=activation.pk)
    Activation.objects.filter(pk=gone.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        save_fields(gone, "state")
    with pytest.raises(ValueError, match="insert"):
        save_fields(Activation(state="issued"), "state")


def test_models_with_their_own_save_are_refused(activated):
    """Citizen.save() derives the search name, DigitalKey.save() its one-per-account flag:
    a prepared write would skip them, so it is refused, not silently wrong."""
    from keys.prepared import insert, save_fields

    activation, user, key = activated
    citizen = Citizen.objects.get(pk=activation.citizen_id)
    with pytest.raises(ValueError, match="own save"):
        save_fields(citizen, "first_name")
    with pytest.raises(ValueError, match="own save"):
        save_fields(key, "phone")
    with pytest.raises(ValueError, match="own save"):
        insert(DigitalKey(user=user, kind="email"))
