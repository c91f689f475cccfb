"""Any office serves any citizen: a clerk finds a citizen of another office by their exact
national number and reissues or revokes; the record moves to the clerk's office."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from keys import tokens
from keys.models import Activation, AuditEvent, Citizen
from keys.services import issuance
from tests.conftest import staff_login

FIND_URL = reverse("admin:keys_citizen_find")
CITIZENS_URL = reverse("admin:keys_citizen_changelist")
ACTIVATIONS_URL = reverse("admin:keys_activation_changelist")
ADD_URL = reverse("admin:keys_citizen_add")
CODE = re.compile(r'<p class="code">([0-9A-Z]{5}-[0-9A-Z]{5})</p>')


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def issued(citizen, clerk):
    """Jan Peeters, registered at Leuven, with an open activation from Leuven."""
    result = issuance.issue_activation(citizen, issued_by=clerk)
    mail.outbox.clear()
    return result


@pytest.fixture
def gent_client(client, other_clerk):
    staff_login(client, other_clerk)
    return client


def find(client, number: str, **extra):
    return client.post(FIND_URL, {"national_number": number, **extra})


def test_the_list_links_to_the_lookup(gent_client):
    page = gent_client.get(CITIZENS_URL).content.decode()
    assert f'href="{FIND_URL}"' in page
    assert "Find a citizen of another office" in page


@pytest.mark.parametrize(
    "typed", ["85.07.30-033.28", "85073003328", " 85 07 30 033 28 ", "850730-03328"]
)
def test_found_by_the_exact_number_as_people_type_it(gent_client, issued, typed):
    page = find(gent_client, typed).content.decode()
    assert "Jan Peeters" in page
    assert "85.07.30-033.28" in page
    assert "Stad Leuven" in page
    assert "Reissue activation here" in page
    assert "Revoke the open activation" in page


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("85.07.30", "Type the whole national register or BIS number (11 digits)"),
        ("8507300332", "Type the whole national register or BIS number (11 digits)"),
        ("85073003329", "the check digits do not match"),
        ("Peeters", "has 11 digits"),
        ("jan@example.be", "has 11 digits"),
        ("", "This field is required"),
    ],
)
def test_nothing_but_the_exact_number_finds_anybody(gent_client, issued, typed, message):
    page = find(gent_client, typed).content.decode()
    assert message in page
    assert "Peeters" not in page.replace(typed, "")
    assert "Stad Leuven" not in page


def test_the_number_is_never_taken_from_the_url(gent_client, issued):
    page = gent_client.get(FIND_URL, {"national_number": "85073003328"}).content.decode()
    assert "Jan Peeters" not in page


def test_the_other_offices_list_stays_hidden(gent_client, issued, citizen):
    find(gent_client, "85.07.30-033.28")
    change = reverse("admin:keys_citizen_change", args=[citizen.pk])
    activation_change = reverse("admin:keys_activation_change", args=[issued.activation.pk])
    for url, query in [
        (CITIZENS_URL, {}),
        (CITIZENS_URL, {"q": "85073003328"}),
        (CITIZENS_URL, {"q": "Peeters"}),
        (ACTIVATIONS_URL, {}),
        (ACTIVATIONS_URL, {"q": "85.07.30-033.28"}),
    ]:
        page = gent_client.get(url, query).content.decode()
        assert change not in page and activation_change not in page
        assert "0 citizens" in page or "0 activations" in page
    assert gent_client.get(change).status_code == 302
    # looking up changed nothing
    citizen.refresh_from_db()
    assert citizen.office.code == "leuven"
    assert Activation.objects.count() == 1


def test_unknown_number_and_own_office(client, issued, clerk, other_clerk, citizen):
    staff_login(client, other_clerk)
    page = find(client, "90.01.01-123.95").content.decode()
    assert "Nobody with this national number is registered" in page
    staff_login(client, clerk)
    page = find(client, "85.07.30-033.28").content.decode()
    assert "This citizen is registered at your office" in page
    assert reverse("admin:keys_citizen_change", args=[citizen.pk]) in page
    assert "Reissue activation here" not in page


def test_reissue_from_another_office(
    gent_client, issued, citizen, clerk, other_clerk, office, other_office
):
    response = find(gent_client, "85 07 30 033 28", action="reissue")
    html = response.content.decode()
    assert "no-store" in response["Cache-Control"]
    code = CODE.search(html).group(1)
    new = Activation.objects.get(state=Activation.State.ISSUED)
    assert tokens.check_activation_code(code, new.code_hash)
    # the activation belongs to the clerk's office, and so does the record now
    assert new.office == other_office
    assert new.issued_by == other_clerk
    citizen.refresh_from_db()
    assert citizen.office == other_office
    issued.activation.refresh_from_db()
    assert issued.activation.state == Activation.State.SUPERSEDED
    assert issued.activation.office == office  # what Leuven issued stays Leuven's
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["jan.peeters@example.be"]
    # the audit trail shows both offices
    moved = AuditEvent.objects.get(action=AuditEvent.Action.CITIZEN_UPDATED, citizen=citizen)
    assert moved.detail == {"fields": ["office"], "office": "gent", "previous_office": "leuven"}
    assert moved.actor == other_clerk
    event = AuditEvent.objects.get(action=AuditEvent.Action.ACTIVATION_ISSUED, activation=new)
    assert event.detail["office"] == "gent"
    assert event.detail["previous_office"] == "leuven"
    assert event.detail["reissue_of"] == [issued.activation.pk]
    # Gent lists the citizen now; Leuven no longer does, but keeps the activation it issued
    assert "Peeters" in gent_client.get(CITIZENS_URL).content.decode()
    staff_login(gent_client, clerk)
    assert "Peeters" not in gent_client.get(CITIZENS_URL).content.decode()
    activations = gent_client.get(ACTIVATIONS_URL).content.decode()
    assert "Peeters" in activations
    assert Activation.objects.filter(office=office).count() == 1


def test_revoke_from_another_office_asks_then_revokes(
    gent_client, issued, citizen, other_clerk, office, other_office
):
    response = find(gent_client, "85.07.30-033.28", action="revoke")
    assert "Yes, revoke" in response.content.decode()
    issued.activation.refresh_from_db()
    assert issued.activation.state == Activation.State.ISSUED
    response = find(gent_client, "85.07.30-033.28", action="revoke", post="yes")
    change = reverse("admin:keys_citizen_change", args=[citizen.pk])
    assert response.status_code == 302 and response["Location"] == change
    issued.activation.refresh_from_db()
    assert issued.activation.state == Activation.State.REVOKED
    assert issued.activation.office == office
    citizen.refresh_from_db()
    assert citizen.office == other_office
    event = AuditEvent.objects.get(action=AuditEvent.Action.ACTIVATION_REVOKED)
    assert event.detail == {"office": "gent", "previous_office": "leuven"}
    assert event.actor == other_clerk
    page = gent_client.get(change).content.decode()
    assert "revoked" in page
    assert not Activation.objects.open().exists()


def test_no_reissue_or_revoke_without_the_exact_number(gent_client, issued, citizen):
    find(gent_client, "85.07.30-033", action="reissue")
    find(gent_client, "Peeters", action="reissue")
    find(gent_client, "85.07.30", action="revoke", post="yes")
    assert Activation.objects.count() == 1
    issued.activation.refresh_from_db()
    assert issued.activation.state == Activation.State.ISSUED
    citizen.refresh_from_db()
    assert citizen.office.code == "leuven"


def test_registering_a_person_of_another_office_leads_to_the_lookup(gent_client, citizen):
    data = {
        "first_name": "Jan",
        "last_name": "Peeters",
        "national_number": "85.07.30-033.28",
        "email": "jan@example.be",
        "phone": "",
        "language": "nl",
        "id_document_type": "id_card",
        "id_document_number": "1",
    }
    page = gent_client.post(ADD_URL, data).content.decode()
    assert "This person is already registered, at Stad Leuven." in page
    assert f'<a href="{FIND_URL}">Find a citizen of another office</a>' in page
    assert Citizen.objects.count() == 1


def test_the_helpdesk_searches_its_own_way(client, helpdesk, issued):
    staff_login(client, helpdesk)
    assert client.get(FIND_URL).status_code == 403
    assert "Find a citizen of another office" not in client.get(CITIZENS_URL).content.decode()
