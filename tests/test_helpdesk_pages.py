"""The helpdesk's citizen page: the record, activations, keys, sign-ins and the audit timeline
with its filters and CSV export; who may open it; no secret on any helpdesk page."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from helpdesk.exports import safe_cell
from keys import audit
from keys.models import (
    Activation,
    AuditEvent,
    DigitalKey,
    KnownBrowser,
    OneTimeCode,
    RegistrationOffice,
    SignInAttempt,
)
from keys.services import issuance
from tests.conftest import make_staff, staff_login
from tests.test_signin import PASSWORD, sign_in
from tests.wizard_helpers import (
    last_email_code,
    open_link,
    post_step,
    secret_from_page,
    step_url,
    totp_code,
)

Action = AuditEvent.Action


@pytest.fixture
def account(citizen, clerk, rf):
    """A citizen who finished the activation with the e-mail key (as in test_signin)."""
    from keys.services import activation as flow

    issued = issuance.issue_activation(citizen, issued_by=clerk)
    request = rf.post("/", REMOTE_ADDR="127.0.0.1")
    flow.redeem_activation_code(issued.activation.pk, issued.activation_code, request)
    user = flow.create_account(issued.activation, "jan.peeters", PASSWORD, request)
    key = flow.enrol_key(user, "email", issued.activation)
    DigitalKey.objects.filter(pk=key.pk).update(state="active", activated_at=timezone.now())
    mail.outbox.clear()
    return user


def page_url(citizen) -> str:
    return reverse("helpdesk:citizen", args=[citizen.pk])


def csv_url(citizen) -> str:
    return reverse("helpdesk:citizen-csv", args=[citizen.pk])


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def helpdesk_client(client, helpdesk):
    staff_login(client, helpdesk)
    return client


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


class TestCitizenPage:
    def test_shows_the_record_activations_keys_and_sign_ins(
        self, helpdesk_client, helpdesk, citizen, account
    ):
        sign_in(helpdesk_client.__class__(HTTP_USER_AGENT="Firefox/140 test"), account)
        response = helpdesk_client.get(page_url(citizen))
        assert response.status_code == 200
        html = response.content.decode()
        assert "Jan Peeters" in html
        assert "85.07.30-033.28" in html  # as recorded: the agent checks it with the caller
        assert "jan.peeters@example.be" in html
        assert "Stad Leuven" in html
        assert "jan.peeters" in html
        activation = citizen.activations.get()
        assert activation.get_effective_state_display() in html
        assert "Code attempts left" in html
        assert re.search(r"<td>5</td>", html)  # attempts left: none was wrong
        assert "Security code by e-mail" in html
        assert ">Active<" in html
        assert "Firefox/140 test" in html  # the sign-in's browser
        assert "Signing in is not locked." in html
        # the visit is in the citizen's audit trail, by the agent
        viewed = AuditEvent.objects.get(action=Action.CITIZEN_VIEWED)
        assert viewed.actor == helpdesk
        assert viewed.citizen == citizen
        # no issuing from here
        assert "Reissue" not in html

    def test_sign_ins_older_than_six_months_are_not_listed(self, helpdesk_client, citizen, account):
        old = audit.record(Action.SIGNIN_SUCCEEDED, actor=account, citizen=citizen, kind="email")
        AuditEvent.objects.filter(pk=old.pk).update(
            created_at=timezone.now() - timedelta(days=200), user_agent="Old browser/1"
        )
        recent = audit.record(Action.SIGNIN_SUCCEEDED, actor=account, citizen=citizen, kind="sms")
        AuditEvent.objects.filter(pk=recent.pk).update(user_agent="Recent browser/2")
        response = helpdesk_client.get(page_url(citizen))
        signins = response.content.decode().split('id="signins-heading"')[1].split("</section>")[0]
        assert "Recent browser/2" in signins
        assert "SMS" in signins
        assert "Old browser/1" not in signins

    def test_failed_sign_ins_and_the_lockout_show(self, helpdesk_client, client, citizen, account):
        anonymous = client.__class__()
        for _ in range(5):
            anonymous.post("/nl/aanmelden/", {"username": "jan.peeters", "password": "nope"})
        html = helpdesk_client.get(page_url(citizen)).content.decode()
        assert "Signing in is locked for another 15 minutes" in html
        assert "5 failed tries to sign in" in html
        assert reverse("helpdesk:unlock", args=[citizen.pk]) in html

    def test_a_citizen_without_an_account(self, helpdesk_client, citizen, clerk):
        issuance.issue_activation(citizen, issued_by=clerk)
        html = helpdesk_client.get(page_url(citizen)).content.decode()
        assert "The citizen has no account yet." in html
        assert reverse("helpdesk:resend", args=[citizen.pk, citizen.activations.get().pk]) in html

    def test_linked_from_the_admins_citizen_list_and_record(self, helpdesk_client, citizen):
        listing = helpdesk_client.get(reverse("admin:keys_citizen_changelist") + "?q=Peeters")
        assert page_url(citizen) in listing.content.decode()
        record = helpdesk_client.get(reverse("admin:keys_citizen_change", args=[citizen.pk]))
        assert page_url(citizen) in record.content.decode()

    def test_clerks_do_not_see_the_link(self, client, clerk, citizen):
        staff_login(client, clerk)
        listing = client.get(reverse("admin:keys_citizen_changelist"))
        assert listing.status_code == 200
        assert page_url(citizen) not in listing.content.decode()


class TestWhoMayOpenIt:
    def test_clerks_are_refused(self, client, clerk, citizen):
        staff_login(client, clerk)
        assert client.get(page_url(citizen)).status_code == 403
        assert client.get(csv_url(citizen)).status_code == 403
        assert not AuditEvent.objects.filter(action=Action.CITIZEN_VIEWED).exists()

    def test_staff_without_the_helpdesk_group_are_refused(self, client, citizen, office):
        staff_login(client, make_staff("nobody.special", None, office))
        assert client.get(page_url(citizen)).status_code == 403

    def test_anonymous_and_citizens_are_sent_to_the_staff_login(self, client, citizen, account):
        response = client.get(page_url(citizen))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
        client.force_login(account)
        assert client.get(page_url(citizen))["Location"].startswith(reverse("admin:login"))

    def test_administrators_may(self, client, citizen):
        from keys.models import User

        staff_login(client, User.objects.create_superuser("admin.user", "Admin-password-1!"))
        assert client.get(page_url(citizen)).status_code == 200

    def test_unknown_citizen(self, helpdesk_client, db):
        assert helpdesk_client.get(reverse("helpdesk:citizen", args=[999])).status_code == 404


@pytest.fixture
def history(citizen, clerk, other_office, helpdesk):
    """Events of several kinds, days and offices."""
    issuance.issue_activation(citizen, issued_by=clerk)
    other = make_staff("clerk.gent.2", "Registration office", other_office)
    issuance.issue_activation(citizen, issued_by=other, office=other_office)
    old = audit.record(Action.SIGNIN_FAILED, citizen=citizen, actor_label="jan")
    AuditEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    return citizen


class TestTimeline:
    def events_on_page(self, response) -> list[str]:
        return [str(e.get_action_display()) for e in response.context["page"]]

    def test_the_whole_trail_newest_first(self, helpdesk_client, history):
        response = helpdesk_client.get(page_url(history))
        events = list(response.context["page"])
        assert [e.created_at for e in events] == sorted(
            (e.created_at for e in events), reverse=True
        )
        assert {e.action for e in events} >= {
            Action.ACTIVATION_ISSUED,
            Action.ACTIVATION_SUPERSEDED,
            Action.SIGNIN_FAILED,
            Action.CITIZEN_UPDATED,
        }

    def test_filter_by_action(self, helpdesk_client, history):
        response = helpdesk_client.get(page_url(history), {"action": [Action.SIGNIN_FAILED]})
        assert [e.action for e in response.context["page"]] == [Action.SIGNIN_FAILED]
        response = helpdesk_client.get(
            page_url(history), {"action": [Action.SIGNIN_FAILED, Action.CITIZEN_VIEWED]}
        )
        assert [e.action for e in response.context["page"]] == [
            Action.CITIZEN_VIEWED,
            Action.CITIZEN_VIEWED,
            Action.SIGNIN_FAILED,
        ]

    def test_filter_by_dates(self, helpdesk_client, history):
        today = timezone.localdate()
        response = helpdesk_client.get(
            page_url(history), {"until": str(today - timedelta(days=30))}
        )
        assert [e.action for e in response.context["page"]] == [Action.SIGNIN_FAILED]
        response = helpdesk_client.get(page_url(history), {"since": str(today)})
        assert Action.SIGNIN_FAILED not in {e.action for e in response.context["page"]}

    def test_filter_by_office(self, helpdesk_client, history, other_office, office):
        response = helpdesk_client.get(page_url(history), {"office": other_office.pk})
        events = list(response.context["page"])
        assert events
        assert {e.activation.office for e in events} == {other_office}
        html = response.content.decode()
        assert f'<option value="{office.pk}">Stad Leuven</option>' in html

    def test_paginated(self, helpdesk_client, citizen):
        AuditEvent.objects.bulk_create(
            AuditEvent(action=Action.SIGNIN_FAILED, citizen=citizen, actor_label=f"try{n}")
            for n in range(120)
        )
        first = helpdesk_client.get(page_url(citizen))
        assert len(first.context["page"]) == 50
        assert first.context["page"].paginator.count == 121  # and this visit
        assert "Page 1 of 3" in first.content.decode()
        third = helpdesk_client.get(page_url(citizen), {"page": 3})
        assert len(third.context["page"]) == 22  # the two visits too


class TestCsvExport:
    def test_the_filtered_trail_as_csv(self, helpdesk_client, helpdesk, history, other_office):
        response = helpdesk_client.get(csv_url(history), {"office": other_office.pk})
        assert response.status_code == 200
        assert response.streaming
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert "attachment" in response["Content-Disposition"]
        rows = read_csv(response)
        assert rows[0] == [
            "When",
            "What",
            "Action code",
            "Who",
            "Registration office",
            "IP address",
            "Browser",
            "Detail",
        ]
        assert rows[1:]
        assert {row[4] for row in rows[1:]} == {"gent"}
        assert "activation_issued" in {row[2] for row in rows[1:]}
        exported = AuditEvent.objects.get(action=Action.AUDIT_EXPORTED)
        assert exported.actor == helpdesk
        assert exported.citizen == history
        assert exported.detail["filters"]["office"] == "gent"

    def test_cells_that_would_be_formulas_are_defused(self, helpdesk_client, citizen):
        audit.record(
            Action.SIGNIN_FAILED,
            citizen=citizen,
            actor_label='=HYPERLINK("http://evil","x")',
        )
        event = audit.record(Action.SIGNIN_FAILED, citizen=citizen, actor_label="@SUM(A1)")
        AuditEvent.objects.filter(pk=event.pk).update(user_agent="+cmd|' /C calc'!A0")
        audit.record(Action.SIGNIN_FAILED, citizen=citizen, actor_label="-2+3")
        rows = read_csv(helpdesk_client.get(csv_url(citizen)))
        cells = [cell for row in rows for cell in row]
        assert '\'=HYPERLINK("http://evil","x")' in cells
        assert "'@SUM(A1)" in cells
        assert "'+cmd|' /C calc'!A0" in cells
        assert "'-2+3" in cells
        assert not [c for c in cells if c and c[0] in "=+-@"]

    def test_safe_cell(self):
        assert safe_cell("=1+2") == "'=1+2"
        assert safe_cell("\t=1") == "'\t=1"
        assert safe_cell("Jan") == "Jan"
        assert safe_cell(42) == 42
        assert safe_cell(None) == ""


def every_helpdesk_page(client, citizen) -> dict[str, str]:
    """Every page and file the helpdesk can open for ``citizen``, as text."""
    pages = {}
    for name, url in [
        ("citizen page", page_url(citizen)),
        ("citizen page, filtered", page_url(citizen) + "?action=account_created&page=1"),
        ("funnel", reverse("helpdesk:funnel")),
        ("admin record", reverse("admin:keys_citizen_change", args=[citizen.pk])),
    ]:
        response = client.get(url)
        assert response.status_code == 200, name
        pages[name] = response.content.decode()
    for name, url in [
        ("activity csv", csv_url(citizen)),
        ("funnel csv", reverse("helpdesk:funnel-csv")),
    ]:
        response = client.get(url)
        pages[name] = b"".join(response.streaming_content).decode()
    open_activation = citizen.activations.open().get()
    key = DigitalKey.objects.filter(user=citizen.account, state="active").first()
    for name, url in [
        ("resend", reverse("helpdesk:resend", args=[citizen.pk, open_activation.pk])),
        ("revoke", reverse("helpdesk:revoke", args=[citizen.pk, open_activation.pk])),
        ("block", reverse("helpdesk:block", args=[citizen.pk, key.pk])),
        ("unlock", reverse("helpdesk:unlock", args=[citizen.pk])),
        ("unlock, no reason", reverse("helpdesk:unlock", args=[citizen.pk])),
    ]:
        data = {"confirm": "yes", "reason": ""} if "no reason" in name else {}
        response = client.post(url, data)
        assert response.status_code == 200, name
        pages[f"confirm {name}"] = response.content.decode()
    return pages


def test_no_code_token_hash_or_secret_on_any_helpdesk_page(client, helpdesk, citizen, clerk):
    """A citizen with a full history: the wizard with two keys, sign-ins, a lockout and a new
    open activation; then every helpdesk page is searched for every secret there is."""
    citizen_client = client.__class__()
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    token = issued.activation_link.rstrip("/").rsplit("/", 1)[1]
    open_link(citizen_client, issued.activation_link)
    post_step(citizen_client, "code", {"activation_code": issued.formatted_code})
    post_step(citizen_client, "key", {"kind": "email", "accept_terms": "on"})
    post_step(
        citizen_client,
        "account",
        {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    email_code = last_email_code()
    post_step(citizen_client, "verify", {"code": email_code})
    post_step(citizen_client, "activated", {"next_action": "another"})
    post_step(citizen_client, "key", {"kind": "totp", "accept_terms": "on"})
    seed = secret_from_page(citizen_client.get(step_url("verify")).content.decode())
    post_step(citizen_client, "verify", {"code": totp_code(seed)})
    post_step(citizen_client, "activated", {"next_action": "done"})
    citizen.refresh_from_db()
    browser = client.__class__()
    sign_in(browser, citizen.account)
    signin_code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body)
    for _ in range(5):
        browser.post("/nl/aanmelden/", {"username": "jan.peeters", "password": "wrong"})
    reissued = issuance.issue_activation(citizen, issued_by=clerk)
    new_token = reissued.activation_link.rstrip("/").rsplit("/", 1)[1]

    secrets = {
        "password": PASSWORD,
        "paper code": issued.activation_code,
        "paper code as printed": issued.formatted_code,
        "new paper code": reissued.activation_code,
        "new paper code as printed": reissued.formatted_code,
        "link token": token,
        "new link token": new_token,
        "e-mail code": email_code,
        "TOTP seed": seed.replace(" ", ""),
        "TOTP seed as shown": seed,
        "password hash": citizen.account.password,
    }
    if signin_code:
        secrets["sign-in code"] = signin_code.group(1)
    for activation in Activation.objects.all():
        secrets[f"code hash {activation.pk}"] = activation.code_hash
        secrets[f"token hash {activation.pk}"] = activation.link_token_hash
    for key in DigitalKey.objects.exclude(secret_encrypted=""):
        secrets[f"encrypted seed {key.pk}"] = key.secret_encrypted
    for one_time in OneTimeCode.objects.all():
        secrets[f"one-time code hash {one_time.pk}"] = one_time.code_hash
    for known in KnownBrowser.objects.all():
        secrets[f"browser hash {known.pk}"] = known.browser_hash
    assert SignInAttempt.objects.filter(succeeded=False).count() >= 5

    staff_login(client, helpdesk)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    pages = every_helpdesk_page(client, citizen)
    assert "Signing in is locked" in pages["citizen page"]
    for page, text in pages.items():
        for name, secret in secrets.items():
            assert secret not in text, f"{name} on the helpdesk's {page}"


def test_queries_per_page_do_not_grow_with_the_history(
    helpdesk_client, citizen, account, django_assert_max_num_queries
):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert helpdesk_client.get(page_url(citizen)).status_code == 200
        return len(queries)

    small = count()
    offices = RegistrationOffice.objects.bulk_create(
        RegistrationOffice(code=f"office-{n}", name=f"Office {n}") for n in range(5)
    )
    for n, office in enumerate(offices):
        activation = issuance.issue_activation(citizen, issued_by=None, office=office).activation
        DigitalKey.objects.create(user=account, kind="sms", state="removed", activation=activation)
        for _ in range(n + 3):
            audit.record(Action.SIGNIN_SUCCEEDED, actor=account, citizen=citizen, kind="sms")
            audit.record(Action.ACTIVATION_LINK_RENEWED, activation=activation)
    SignInAttempt.objects.bulk_create(
        SignInAttempt(username_canonical=account.username_canonical) for _ in range(30)
    )
    large = count()
    assert large == small
    assert small <= 15  # 14, and the count of recovery codes
    with django_assert_max_num_queries(small):
        helpdesk_client.get(page_url(citizen), {"action": ["signin_succeeded"], "page": 2})


def test_helpdesk_group_has_the_helpdesk_permissions(db):
    helpdesk = Group.objects.get(name="Helpdesk")
    codenames = set(helpdesk.permissions.values_list("codename", flat=True))
    assert {"use_helpdesk", "block_digitalkey", "unlock_signin", "view_funnel"} <= codenames
    clerks = Group.objects.get(name="Registration office")
    clerk_codenames = set(clerks.permissions.values_list("codename", flat=True))
    assert "view_funnel" in clerk_codenames
    assert not {"use_helpdesk", "block_digitalkey", "unlock_signin"} & clerk_codenames
