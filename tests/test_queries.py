"""Queries per request stay small and do not grow with the data (no N+1)."""

import pytest
from django.urls import reverse

from keys.models import Citizen
from keys.services import issuance
from tests.conftest import staff_login
from tests.wizard_helpers import last_email_code, open_link, post_step, step_url

PASSWORD = "Correct-Horse-9x"


def add_citizens(office, clerk, count, start=0):
    for i in range(start, start + count):
        first_nine = f"8501{(i % 28) + 1:02d}{100 + i:03d}"
        number = first_nine + f"{97 - int(first_nine) % 97:02d}"
        citizen = Citizen.objects.create(
            first_name=f"Name{i}",
            last_name=f"Family{i}",
            national_number=number,
            email=f"p{i}@example.be",
            id_document_type="id_card",
            id_document_number=str(i),
            office=office,
        )
        issuance.issue_activation(citizen, issued_by=clerk)


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:keys_citizen_changelist",
        "admin:keys_activation_changelist",
        "admin:keys_auditevent_changelist",
    ],
)
def test_admin_lists_do_not_grow_with_rows(
    client, office, clerk, helpdesk, url_name, django_assert_max_num_queries
):
    staff_login(client, helpdesk)
    add_citizens(office, clerk, 3)
    url = reverse(url_name)
    client.get(url)
    with django_assert_max_num_queries(14) as few:
        client.get(url)
    add_citizens(office, clerk, 12, start=3)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


def test_wizard_steps_use_few_queries(client, citizen, clerk, django_assert_max_num_queries):
    """The counts measured after issue 10's second round (``benchmarks/profile_flow.py``); a
    page that changes nothing no longer rewrites the session; an e-mail sent inline is one INSERT
    and one UPDATE (the outbox's fast path)."""
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    with django_assert_max_num_queries(6):  # no read-back of the opened activation
        open_link(client, issued.activation_link)
    issued.activation.refresh_from_db()
    assert issued.activation.state == "opened" and issued.activation.opened_at is not None
    with django_assert_max_num_queries(5):
        client.get(step_url("code"))
    with django_assert_max_num_queries(10):
        post_step(client, "code", {"activation_code": issued.formatted_code})
    with django_assert_max_num_queries(2):
        client.get(step_url("key"))
    with django_assert_max_num_queries(7):
        post_step(client, "key", {"kind": "email", "accept_terms": "on"})
    with django_assert_max_num_queries(30):  # account, key, code, outbox, audit
        post_step(
            client,
            "account",
            {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
        )
    with django_assert_max_num_queries(4):
        client.get(step_url("verify"))
    # activate, complete, confirmation e-mail, audit, sign the completing session in
    with django_assert_max_num_queries(22):
        post_step(client, "verify", {"code": last_email_code()})


def test_sign_in_steps_use_few_queries(client, citizen, clerk, rf):
    """Sign-in is the service's daily load (issue 10): the user is read with the citizen, the
    code's audit event names the key's activation without reading it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.test_signin import account as make_account
    from tests.test_signin import code_for

    user = make_account.__wrapped__(citizen, clerk, rf)
    key = user.digital_keys.get(kind="email", state="active")
    steps = [
        ("POST", "/nl/aanmelden/", {"username": user.username, "password": PASSWORD}),
        ("GET", "/nl/aanmelden/sleutel/", None),
        ("POST", "/nl/aanmelden/sleutel/", {"key": str(key.pk)}),
        ("GET", "/nl/aanmelden/code/", None),
        ("POST", "/nl/aanmelden/code/", None),
        ("GET", "/nl/mijn-sleutels/", None),
    ]

    def sign_in() -> list[int]:
        counts = []
        for method, path, data in steps:
            if data is None and method == "POST":
                data = {"code": code_for(key)}
            with CaptureQueriesContext(connection) as queries:
                response = client.post(path, data) if method == "POST" else client.get(path)
            assert response.status_code in (200, 302), (path, response.status_code)
            counts.append(len(queries))
            if path == "/nl/aanmelden/code/" and method == "POST":
                assert response["Location"] == "/nl/mijn-sleutels/"
        return counts

    # password, key page, code sent, code page, code checked (with the new browser's notice:
    # the known browser's UPDATE finds no row first), the citizen's page: session, user with
    # citizen (one query), keys, events, recovery codes, the services it signed in to
    counts = sign_in()
    bounds = [14, 3, 16, 4, 29, 6]
    assert all(count <= bound for count, bound in zip(counts, bounds, strict=True)), counts
    # Again from the same browser, the daily case: its row is one UPDATE, no notice.
    client.post("/nl/afmelden/")
    counts = sign_in()
    bounds = [14, 3, 16, 4, 22, 6]
    assert all(count <= bound for count, bound in zip(counts, bounds, strict=True)), counts


def test_the_signed_in_user_is_read_with_the_citizen(
    citizen, clerk, client, django_assert_num_queries
):
    """The backend reads the session's user and its citizen in one query; staff have none."""
    from keys.backends import ModelBackend
    from keys.models import User

    account = User.objects.create_user("jan.peeters", PASSWORD)
    citizen.account = account
    citizen.save()
    backend = ModelBackend()
    with django_assert_num_queries(1):
        user = backend.get_user(account.pk)
        assert user.citizen.pk == citizen.pk
    with django_assert_num_queries(1):
        staff = backend.get_user(clerk.pk)
        assert not hasattr(staff, "citizen")
    staff_login(client, clerk, backend="keys.backends.ModelBackend")
    assert client.get("/nl/mijn-sleutels/")["Location"] == "/nl/aanmelden/"
