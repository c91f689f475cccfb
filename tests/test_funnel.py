"""The activation funnel: exact figures on known data, per ISO week and office, the chart and
its tables, the CSV export, who sees which offices, and a constant number of queries."""

import csv
import datetime
import io
import re
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from helpdesk import selectors
from keys.models import Activation, AuditEvent, Citizen, RegistrationOffice, User
from tests.conftest import make_staff, staff_login

BRUSSELS = ZoneInfo("Europe/Brussels")
NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=BRUSSELS)  # a Wednesday, ISO week 48
W47 = datetime.datetime(2026, 11, 17, 10, 0, tzinfo=BRUSSELS)  # Tuesday of week 47
W48 = datetime.datetime(2026, 11, 23, 9, 0, tzinfo=BRUSSELS)  # Monday of week 48
DAY = datetime.timedelta(days=1)
URL = reverse("helpdesk:funnel")
CSV_URL = reverse("helpdesk:funnel-csv")
S = Activation.State
Action = AuditEvent.Action

LEUVEN_W47 = {
    "issued": 5,
    "opened": 4,
    "code_accepted": 2,
    "account_created": 2,
    "key_active": 1,
    "in_progress": 1,
    "expired": 1,
    "locked": 1,
    "revoked": 1,
    "superseded": 0,
}
GENT_W48 = {
    "issued": 4,
    "opened": 3,
    "code_accepted": 2,
    "account_created": 2,
    "key_active": 1,
    "in_progress": 1,
    "expired": 1,
    "locked": 0,
    "revoked": 0,
    "superseded": 1,
}
TOTAL = {name: LEUVEN_W47[name] + GENT_W48[name] for name in LEUVEN_W47}


@pytest.fixture
def now(time_machine):
    time_machine.move_to(NOW, tick=False)
    return NOW


_serial = iter(range(10_000))


def activation(
    office,
    created,
    state,
    *,
    opened=False,
    code=False,
    completed=False,
    expired=False,
    account_event=None,
):
    n = next(_serial)
    person = Citizen.objects.create(
        first_name="Test",
        last_name=f"Person {n}",
        national_number=f"{n:011d}",
        email=f"p{n}@example.be",
        id_document_type="passport",
        id_document_number=str(n),
        office=office,
    )
    item = Activation.objects.create(
        citizen=person,
        office=office,
        state=state,
        link_token_hash=f"hash-{n}",
        code_hash="x",
        created_at=created,
        expires_at=(created + DAY) if expired else created + 14 * DAY,
        opened_at=created + DAY / 24 if opened else None,
        code_verified_at=created + DAY / 12 if code else None,
        completed_at=created + DAY / 6 if completed else None,
    )
    for action in account_event or []:
        AuditEvent.objects.create(action=action, activation=item, citizen=person)
    return item


@pytest.fixture
def known(now, office, other_office):
    leuven, gent = office, other_office
    # Leuven, week 47
    activation(
        leuven,
        W47,
        S.COMPLETED,
        opened=True,
        code=True,
        completed=True,
        account_event=[Action.ACCOUNT_CREATED],
    )
    activation(
        leuven,
        W47,
        S.CODE_VERIFIED,
        opened=True,
        code=True,
        account_event=[Action.ACCOUNT_CREATED, Action.ACCOUNT_CREATED],
    )
    activation(leuven, W47, S.OPENED, opened=True, expired=True)  # open, but past its expiry
    activation(leuven, W47, S.LOCKED, opened=True)
    activation(leuven, W47, S.REVOKED)
    # Gent, week 48
    activation(
        gent,
        W48,
        S.COMPLETED,
        opened=True,
        code=True,
        completed=True,
        account_event=[Action.PASSWORD_RESET],
    )
    activation(gent, W48, S.EXPIRED, expired=True)
    activation(gent, W48, S.SUPERSEDED, opened=True)
    activation(
        gent, W48, S.CODE_VERIFIED, opened=True, code=True, account_event=[Action.PASSWORD_RESET]
    )
    # outside the default period (12 weeks)
    activation(leuven, NOW - 20 * 7 * DAY, S.COMPLETED, opened=True, code=True, completed=True)
    return leuven, gent


def figures(row) -> dict:
    return dict(row.counts)


def test_the_figures_on_known_data(known):
    data = selectors.funnel(since=datetime.date(2026, 9, 7), until=datetime.date(2026, 11, 25))
    assert figures(data.total) == TOTAL
    weeks = {selectors.week_label(week): figures(row) for week, row in data.weeks}
    assert len(weeks) == 12  # every week of the period, empty ones too
    assert weeks["2026-W47"] == LEUVEN_W47
    assert weeks["2026-W48"] == GENT_W48
    assert weeks["2026-W46"]["issued"] == 0
    assert [(o.code, figures(row)) for o, row in data.offices] == [
        ("leuven", LEUVEN_W47),
        ("gent", GENT_W48),
    ]
    assert [(selectors.week_label(w), o.code) for w, o, _row in data.cells] == [
        ("2026-W47", "leuven"),
        ("2026-W48", "gent"),
    ]
    assert data.total.percent("key_active") == pytest.approx(200 / 9)


def test_one_office_and_a_shorter_period(known):
    leuven, gent = known
    data = selectors.funnel(
        since=datetime.date(2026, 11, 23), until=datetime.date(2026, 11, 25), office=leuven
    )
    assert data.total["issued"] == 0
    data = selectors.funnel(
        since=datetime.date(2026, 11, 23), until=datetime.date(2026, 11, 25), office=gent
    )
    assert figures(data.total) == GENT_W48


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def test_the_page_for_the_helpdesk(client, helpdesk, known):
    staff_login(client, helpdesk)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert figures(response.context["data"].total) == TOTAL
    assert 'role="img"' in html
    assert '<title id="bars-title">Activation funnel</title>' in html
    assert "Issued: 9 (100 %); Link opened: 7 (78 %); Code accepted: 4 (44 %)" in html
    assert "<desc" in html
    # nothing inline, for the CSP: no script without a src, no style attribute
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html
    assert "2026-W47" in html and "2026-W48" in html
    assert "Stad Leuven" in html and "Stad Gent" in html
    assert '<td class="number">9</td>' in html
    # one office
    response = client.get(URL, {"office": known[1].pk})
    assert figures(response.context["data"].total) == GENT_W48


def test_clerks_see_their_own_office_only(client, clerk, known):
    staff_login(client, clerk)
    response = client.get(URL, {"office": known[1].pk})
    assert response.status_code == 200
    assert figures(response.context["data"].total) == LEUVEN_W47
    html = response.content.decode()
    assert "Stad Gent" not in html
    assert 'name="office"' not in html
    rows = read_csv(client.get(CSV_URL, {"office": known[1].pk}))
    assert [row[2] for row in rows[1:]] == ["leuven"]


def test_who_may_see_it(client, office, known):
    staff_login(client, make_staff("staff.nogroup", None, office))
    assert client.get(URL).status_code == 403
    assert client.get(CSV_URL).status_code == 403
    staff_login(client, make_staff("clerk.nooffice", "Registration office", None))
    assert client.get(URL).status_code == 403
    staff_login(client, User.objects.create_superuser("admin.user", "Admin-password-1!"))
    response = client.get(URL)
    assert figures(response.context["data"].total) == TOTAL
    client.logout()
    assert client.get(URL).status_code == 302


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))


def test_csv_export(client, helpdesk, known):
    staff_login(client, helpdesk)
    rows = read_csv(client.get(CSV_URL))
    assert rows[0] == [
        "ISO week",
        "Week starting",
        "Office code",
        "Registration office",
        "Issued",
        "Link opened",
        "Code accepted",
        "Account created",
        "First key active",
        "Still open",
        "Expired",
        "Locked",
        "Revoked",
        "Superseded",
    ]
    assert rows[1:] == [
        ["2026-W47", "2026-11-16", "leuven", "Stad Leuven", *map(str, LEUVEN_W47.values())],
        ["2026-W48", "2026-11-23", "gent", "Stad Gent", *map(str, GENT_W48.values())],
    ]


def test_csv_cells_are_formula_safe(client, helpdesk, known):
    RegistrationOffice.objects.filter(pk=known[0].pk).update(name='=HYPERLINK("http://x")')
    staff_login(client, helpdesk)
    rows = read_csv(client.get(CSV_URL))
    assert rows[1][3] == '\'=HYPERLINK("http://x")'


def test_a_wrong_period_is_refused_politely(client, helpdesk, known):
    staff_login(client, helpdesk)
    response = client.get(URL, {"since": "2026-11-20", "until": "2026-11-01"})
    assert response.status_code == 200
    assert "The start of the period is after its end." in response.content.decode()
    assert figures(response.context["data"].total) == TOTAL  # the default period


def test_queries_do_not_grow_with_the_activations(client, helpdesk, known):
    staff_login(client, helpdesk)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL).status_code == 200
        return len(queries)

    small = count()
    offices = RegistrationOffice.objects.bulk_create(
        RegistrationOffice(code=f"office-{n}", name=f"Office {n}") for n in range(6)
    )
    for n, place in enumerate(offices):
        for week in range(n + 2):
            activation(
                place,
                W48 - week * 7 * DAY,
                S.COMPLETED,
                opened=True,
                code=True,
                completed=True,
                account_event=[Action.ACCOUNT_CREATED],
            )
    assert count() == small
    assert small <= 8


def test_linked_from_the_admins_home_page(client, clerk, helpdesk, office):
    for user in [clerk, helpdesk]:
        staff_login(client, user)
        assert URL in client.get(reverse("admin:index")).content.decode()
    staff_login(client, make_staff("staff.nogroup", None, office))
    assert URL not in client.get(reverse("admin:index")).content.decode()
