"""The helpdesk's search and the admin lists, built for a million citizens (issue 11 §4).

The same tests run on SQLite and on PostgreSQL (``make test-postgres``); the PostgreSQL ones
also check that each kind of search is answered through its index.
"""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from keys.models import Activation, Citizen, RegistrationOffice, User
from keys.paginators import LargeTablePaginator
from keys.search import citizen_condition, fold, search_name
from keys.services import issuance
from tests.conftest import staff_login

CITIZENS_URL = reverse("admin:keys_citizen_changelist")
ACTIVATIONS_URL = reverse("admin:keys_activation_changelist")
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's indexes")

PEOPLE = [
    # first, last, national number, e-mail, username
    # (the e-mail addresses and usernames do not contain the folded names: a name search must
    # find the names themselves)
    ("Marie", "Lefèvre", "85073003328", "ml1985@example.be", "MarieL85"),
    ("Ahmet", "Çelik", "90010112395", "ac.gent@example.be", "ahmet.c"),
    ("Jürgen", "Müller", "01021500155", "jm@example.de", "jm.eupen"),
    ("Jan", "Peeters", "75121202264", "jan.peeters@example.be", "jan.peeters"),
    ("Wei", "Ng", "92032914746", "wei.ng@example.be", "weing92"),
    ("Anne-Sophie", "D'Hondt", "88110803142", "asdh@example.be", "asdh88"),
]


def valid(first_nine: str) -> str:
    base = int(first_nine) + (2_000_000_000 if first_nine.startswith(("0", "1")) else 0)
    return f"{first_nine}{97 - base % 97:02d}"


@pytest.fixture
def people(office, clerk):
    made = {}
    for first, last, number, email, username in PEOPLE:
        number = valid(number[:9])
        account = User.objects.create_user(username, None)
        citizen = Citizen.objects.create(
            first_name=first,
            last_name=last,
            national_number=number,
            email=email,
            id_document_type="id_card",
            id_document_number="1",
            office=office,
            account=account,
        )
        issuance.issue_activation(citizen, issued_by=clerk)
        made[last] = citizen
    return made


@pytest.fixture
def helpdesk_client(client, helpdesk):
    staff_login(client, helpdesk)
    return client


def names_in(page: str) -> set[str]:
    """The people listed: the citizen list links their last name, the activation list their
    full name."""
    found = set()
    for first, last, *_ in PEOPLE:
        first, last = first.replace("'", "&#x27;"), last.replace("'", "&#x27;")
        if f">{last}</a>" in page or f">{first} {last}</a>" in page:
            found.add(last.replace("&#x27;", "'"))
    return found


def test_fold_removes_accents_case_and_punctuation():
    assert fold("Lefèvre") == "lefevre"
    assert fold("ÇELİK") == "celik"
    assert fold("Müller") == "muller"
    assert fold("Yılmaz") == "yilmaz"
    assert fold("Wiśniewski") == "wisniewski"
    assert fold("Øberg") == "oberg"
    assert fold("D'Hondt") == "dhondt"
    assert fold("Weißhaupt") == "weisshaupt"
    assert fold("  Jean-Pierre ") == "jean pierre"
    assert search_name("Marie", "Lefèvre") == "lefevre marie"


def test_the_search_name_follows_the_name(people):
    citizen = people["Lefèvre"]
    assert citizen.search_name == "lefevre marie"
    citizen.last_name = "Crèvecœur"
    citizen.save(update_fields=["last_name"])
    citizen.refresh_from_db()
    assert citizen.search_name == "crevecoeur marie"


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        # names: partial, accents and case as typed
        ("lefev", {"Lefèvre"}),
        ("LEFEVRE marie", {"Lefèvre"}),
        ("Lefèvre", {"Lefèvre"}),
        ("celik", {"Çelik"}),
        ("Muller", {"Müller"}),
        ("jurgen", {"Müller"}),
        ("dhondt", {"D'Hondt"}),
        ("d'hondt anne", {"D'Hondt"}),
        ("ng", {"Ng"}),  # a word shorter than a trigram: the start of a word
        ("marie peeters", set()),
        # national numbers as people type them, whole or the start
        ("85.07.30-033.28", {"Lefèvre"}),
        ("85 07 30 033 28", {"Lefèvre"}),
        ("850730", {"Lefèvre"}),
        ("85.07.30-033.29", set()),
        # e-mail, any case, whole or the start
        ("JAN.PEETERS@EXAMPLE.BE", {"Peeters"}),
        ("AC.GENT@", {"Çelik"}),
        # username, any case
        ("MARIEl85", {"Lefèvre"}),
        ("JM.Eupen", {"Müller"}),
    ],
)
def test_the_helpdesk_finds_the_right_citizen(helpdesk_client, people, term, expected):
    for url in (CITIZENS_URL, ACTIVATIONS_URL):
        page = helpdesk_client.get(url, {"q": term}).content.decode()
        assert names_in(page) == expected, (url, term)


def test_search_stays_within_a_clerks_office(client, people, other_clerk):
    staff_login(client, other_clerk)
    page = client.get(CITIZENS_URL, {"q": "lefevre"}).content.decode()
    assert names_in(page) == set()


def test_the_search_condition_touches_the_citizen_table_only(people):
    """An OR reaching into the account table cannot use the citizen table's indexes."""
    for term in ["lefev", "85.07.30-033.28", "jan.peeters@example.be", "jan.peeters"]:
        condition = citizen_condition(term)
        sql = str(Citizen.objects.filter(condition).query)
        assert "keys_user" not in sql, term


def count_queries(sql_list):
    return [sql for sql in sql_list if re.search(r"\bCOUNT\(", sql, re.IGNORECASE)]


@pytest.mark.parametrize("url", [CITIZENS_URL, ACTIVATIONS_URL])
def test_no_count_over_the_whole_table(helpdesk_client, people, url):
    with CaptureQueriesContext(connection) as queries:
        response = helpdesk_client.get(url)
    assert response.status_code == 200
    counts = count_queries(q["sql"] for q in queries.captured_queries)
    assert counts, "the paginator counts (up to its limit)"
    for sql in counts:
        assert "LIMIT" in sql.upper(), sql  # capped: SELECT COUNT(*) FROM (... LIMIT 1001)
    assert response.context["cl"].result_count == len(PEOPLE)


def test_beyond_the_limit_the_count_is_estimated_on_postgresql(people, monkeypatch):
    monkeypatch.setattr(LargeTablePaginator, "exact_count_limit", 3)
    paginator = LargeTablePaginator(Citizen.objects.order_by("pk"), 2)
    with CaptureQueriesContext(connection) as queries:
        count = paginator.count
    sqls = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        assert count >= 4  # the planner's estimate, never below what was counted
        assert any(sql.startswith("EXPLAIN") for sql in sqls)
        assert all("LIMIT" in sql.upper() for sql in count_queries(sqls))
    else:
        assert count == len(PEOPLE)


def test_pages_are_found_by_their_ids_in_the_list_order(people):
    ordered = Citizen.objects.order_by("last_name", "first_name", "-id")
    expected = [c.last_name for c in ordered]
    paginator = LargeTablePaginator(ordered, 4)
    assert paginator.count == len(PEOPLE)
    with CaptureQueriesContext(connection) as queries:
        second = [c.last_name for c in paginator.page(2).object_list]
    assert second == expected[4:]
    assert [c.last_name for c in paginator.page(1).object_list] == expected[:4]
    ids, rows = [q["sql"] for q in queries.captured_queries]
    assert "OFFSET 4" in ids and "JOIN" not in ids  # the skipped rows: ids from the index only
    assert "IN (" in rows and "OFFSET" not in rows


@pytest.mark.parametrize("url", [CITIZENS_URL, ACTIVATIONS_URL])
@pytest.mark.parametrize("query", [{}, {"q": "e"}, {"q": "example.be"}, {"state": "expired"}])
def test_queries_per_page_stay_constant(helpdesk_client, office, clerk, url, query):
    def add(start, count):
        for i in range(start, start + count):
            number = valid(f"7001{(i % 28) + 1:02d}{100 + i:03d}")
            citizen = Citizen.objects.create(
                first_name="Eva",
                last_name=f"Désiré{i}",
                national_number=number,
                email=f"e{i}@example.be",
                id_document_type="id_card",
                id_document_number=str(i),
                office=office,
            )
            issuance.issue_activation(citizen, issued_by=clerk)

    if query.get("state") and url == CITIZENS_URL:
        pytest.skip("an activation filter")
    add(0, 3)
    helpdesk_client.get(url, query)
    with CaptureQueriesContext(connection) as few:
        helpdesk_client.get(url, query)
    add(3, 60)  # more rows than a page (50)
    with CaptureQueriesContext(connection) as many:
        response = helpdesk_client.get(url, query)
    assert response.status_code == 200
    with CaptureQueriesContext(connection) as second_page:
        helpdesk_client.get(url, {**query, "p": "2"})
    assert len(many) == len(second_page) <= len(few) + 1, [q["sql"] for q in many]


def test_the_list_shows_each_citizens_latest_activation(helpdesk_client, people, clerk):
    def state_shown() -> str:
        response = helpdesk_client.get(CITIZENS_URL, {"q": "peeters"})
        (row,) = response.context["cl"].result_list
        return response.context["cl"].model_admin.activation_state(row)

    citizen = people["Peeters"]
    assert state_shown() == Activation.State.ISSUED.label
    issuance.revoke_activation(citizen.activations.get(), by=clerk)
    assert state_shown() == Activation.State.REVOKED.label
    issuance.issue_activation(citizen, issued_by=clerk)
    assert state_shown() == Activation.State.ISSUED.label
    Activation.objects.filter(state="issued").update(expires_at=timezone.now())
    assert state_shown() == Activation.State.EXPIRED.label


def test_the_office_filter_is_one_select(helpdesk_client, people, other_office, clerk):
    for number in range(40):
        RegistrationOffice.objects.create(code=f"extra-{number}", name=f"Kantoor {number}")
    gent = Citizen.objects.create(
        first_name="Sofie",
        last_name="Claes",
        national_number=valid("80050512301"[:9]),
        email="sofie@example.be",
        id_document_type="id_card",
        id_document_number="2",
        office=other_office,
    )
    page = helpdesk_client.get(CITIZENS_URL).content.decode()
    assert f'<option value="{other_office.pk}">Stad Gent</option>' in page
    assert "?office__id__exact=" not in page  # not a link per office
    page = helpdesk_client.get(CITIZENS_URL, {"office": other_office.pk}).content.decode()
    assert "Claes" in page and names_in(page) == set()
    assert f'<option value="{other_office.pk}" selected>' in page
    page = helpdesk_client.get(
        ACTIVATIONS_URL, {"office": other_office.pk, "q": "lefevre"}
    ).content.decode()
    assert names_in(page) == set()
    assert gent.pk


def test_a_clerk_has_no_office_filter(client, people, clerk):
    staff_login(client, clerk)
    page = client.get(CITIZENS_URL).content.decode()
    assert 'name="office"' not in page
    assert names_in(page) == {last for _f, last, *_ in PEOPLE}


# -- PostgreSQL: each kind of search through its index --------------------------------------


def plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@postgres_only
@pytest.mark.parametrize(
    ("term", "index"),
    [
        ("lefev", "citizen_search_name_trgm"),
        ("ng", "citizen_search_name_trgm"),
        ("marie lefèvre", "citizen_search_name_trgm"),
        ("JAN.PEETERS@EXAMPLE.BE", "citizen_email_upper"),
        ("85.07.30-033.28", "keys_citizen_national_number"),
        ("850730", "keys_citizen_national_number"),
    ],
)
def test_each_search_uses_its_index(people, term, index):
    text = plan(Citizen.objects.filter(citizen_condition(term)).order_by())
    assert index in text, text
    assert "Seq Scan on keys_citizen" not in text, text


@postgres_only
def test_usernames_are_found_through_the_canonical_index(people):
    with CaptureQueriesContext(connection) as queries:
        citizen_condition("JAN.PEETERS")
    (lookup,) = [q["sql"] for q in queries.captured_queries]
    text = plan(User.objects.filter(username_canonical__startswith="jan.peeters"))
    assert "username_canonical" in text and "Seq Scan" not in text, (lookup, text)


@postgres_only
def test_the_lists_read_in_index_order(people):
    text = plan(Activation.objects.order_by("-created_at", "-id")[:50])
    assert "activation_newest_first" in text, text
    text = plan(Citizen.objects.order_by("last_name", "first_name", "-id")[:50])
    assert "citizen_list_order" in text, text


def test_search_results_are_ordered_by_the_folded_name(helpdesk_client, people):
    """Not by (last_name, first_name): PostgreSQL would walk that index from "A" to the first
    "Peeters" rather than find them through the trigram index."""
    response = helpdesk_client.get(CITIZENS_URL, {"q": "a"})  # Ahmet Çelik, Anne-Sophie D'Hondt
    cl = response.context["cl"]
    assert cl.queryset.query.order_by[0] == "search_name"
    names = [c.search_name for c in cl.result_list]
    assert names == sorted(names) and len(names) > 1
    unsearched = helpdesk_client.get(CITIZENS_URL).context["cl"]
    assert unsearched.queryset.query.order_by[0] == "last_name"


def test_the_audit_list_searches_citizens_and_staff(helpdesk_client, people, clerk):
    url = reverse("admin:keys_auditevent_changelist")
    lefevre = people["Lefèvre"]

    def citizens_of(query: str) -> set[int | None]:
        response = helpdesk_client.get(url, {"q": query})
        return {event.citizen_id for event in response.context["cl"].result_list}

    assert citizens_of("85.07.30-033.28") == {lefevre.pk}
    assert citizens_of("lefev marie") == {lefevre.pk}
    assert citizens_of("ML1985@example.be") == {lefevre.pk}
    # a clerk's username: what the clerk did (issued every activation here)
    response = helpdesk_client.get(url, {"q": "CLERK.LEUVEN"})
    events = response.context["cl"].result_list
    assert len(events) >= len(PEOPLE)
    assert {event.actor_id for event in events} == {clerk.pk}


@postgres_only
def test_a_staffs_actions_come_newest_first_from_an_index(people, clerk):
    from keys.models import AuditEvent

    text = plan(AuditEvent.objects.filter(actor=clerk).order_by("-created_at", "-id")[:50])
    assert "auditevent_actor_newest" in text, text
