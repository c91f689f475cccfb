from importlib import import_module

import pytest
from django.contrib.auth.models import Group, Permission

from keys.models import Citizen, DigitalKey, RegistrationOffice, User

VALID_NATIONAL_NUMBER = "85073003328"  # 1985-07-30, serial 033


@pytest.fixture
def office(db) -> RegistrationOffice:
    return RegistrationOffice.objects.create(code="leuven", name="Stad Leuven")


@pytest.fixture
def other_office(db) -> RegistrationOffice:
    return RegistrationOffice.objects.create(code="gent", name="Stad Gent")


def ensure_roles() -> None:
    """The groups of the data migration; transactional tests flush them with every table."""
    roles = import_module("keys.migrations.0002_staff_groups").ROLES
    for name, codenames in roles.items():
        group, created = Group.objects.get_or_create(name=name)
        if created:
            group.permissions.set(
                Permission.objects.filter(content_type__app_label="keys", codename__in=codenames)
            )
            helpdesk_codenames = import_module("helpdesk.migrations.0002_roles").ROLES.get(name, [])
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label="helpdesk", codename__in=helpdesk_codenames
                )
            )


def make_staff(username: str, group: str | None, office: RegistrationOffice | None) -> User:
    ensure_roles()
    user = User.objects.create_user(username, "Staff-password-1!", is_staff=True, office=office)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def staff_key(user: User) -> DigitalKey:
    """The staff member's active second factor: their app key, made (active) when they have
    none, as the first sign-in's enrolment leaves it (``keys.services.staff``)."""
    from django.utils import timezone

    from keys.digital_keys import get_kind
    from keys.services.staff import staff_kinds

    key = DigitalKey.objects.filter(
        user=user, state=DigitalKey.State.ACTIVE, kind__in=staff_kinds()
    ).first()
    if key is None:
        key = DigitalKey(
            user=user,
            kind=DigitalKey.Kind.TOTP,
            state=DigitalKey.State.ACTIVE,
            activated_at=timezone.now(),
        )
        get_kind(key.kind).enrol(key)
        key.save(force_insert=True)
    return key


def staff_login(client, user: User, **kwargs) -> DigitalKey:
    """Sign a staff member in to the back office (``/admin/``, the helpdesk's pages) for a test:
    ``client.force_login`` (the password step), then the session marked as having passed the
    second factor with ``keys.services.staff.mark_verified``, the call the real sign-in makes
    (``keys.staff_site``). A bare ``force_login`` is a password-only session, which the admin
    refuses. ``kwargs`` go to ``force_login`` (``backend=...``). Returns the key used."""
    from keys.services.staff import mark_verified

    key = staff_key(user)
    client.force_login(user, **kwargs)
    session = client.session
    mark_verified(session, user, key)
    session.save()
    return key


@pytest.fixture
def clerk(office) -> User:
    return make_staff("clerk.leuven", "Registration office", office)


@pytest.fixture
def other_clerk(other_office) -> User:
    return make_staff("clerk.gent", "Registration office", other_office)


@pytest.fixture
def helpdesk(db) -> User:
    return make_staff("helpdesk.agent", "Helpdesk", None)


@pytest.fixture
def citizen(office, clerk) -> Citizen:
    return Citizen.objects.create(
        first_name="Jan",
        last_name="Peeters",
        national_number=VALID_NATIONAL_NUMBER,
        email="jan.peeters@example.be",
        phone="+32470123456",
        language="nl",
        id_document_type="id_card",
        id_document_number="592123456789",
        office=office,
        registered_by=clerk,
    )


@pytest.fixture(autouse=True)
def _empty_sms_outbox():
    from keys import sms

    sms.outbox.clear()
    yield
    sms.outbox.clear()


@pytest.fixture(autouse=True)
def _empty_cache():
    from django.core.cache import caches

    for cache in caches.all(initialized_only=False):
        cache.clear()
    yield
    for cache in caches.all(initialized_only=True):
        cache.clear()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):  # pytest-django's, extended
    """Close every database connection still open before pytest-django drops the test database.

    Django keeps a connection per thread, and per context in a thread where an event loop runs
    (asgiref's ``Local``; Playwright's sync API runs one in the main thread), and pytest-django
    closes only the current one before it drops the test database. On PostgreSQL the drop then
    failed with "being accessed by other users" (a warning at the end of the suite, the
    database left behind): after the browser tests the main thread has two connection wrappers,
    used in turn (a per-test count of open wrappers showed it). No test depends on this: it
    runs after the last one.
    """
    yield
    import gc

    from django.db.backends.base.base import BaseDatabaseWrapper

    # type(), not isinstance(): isinstance asks an object its __class__, which makes a lazy
    # object left in memory (a request's SimpleLazyObject user) evaluate itself, a query.
    wrappers = [o for o in gc.get_objects() if issubclass(type(o), BaseDatabaseWrapper)]
    for wrapper in wrappers:
        if wrapper.connection is not None:
            try:
                wrapper.connection.close()
            finally:
                wrapper.connection = None
