"""manage.py prune_records: retention of sign-in records and audit events (issue 11 §4)."""

import io
import logging
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from keys.models import AuditEvent, SignInAttempt

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def records(citizen):
    """Rows of every age around the two limits (183 and 730 days)."""
    now = timezone.now()

    def signin(days: float) -> SignInAttempt:
        return SignInAttempt.objects.create(
            username_canonical="jan.peeters", ip_address="81.82.1.2", created_at=now - days * DAY
        )

    def event(days: float, action: str) -> AuditEvent:
        return AuditEvent.objects.create(
            action=action, citizen=citizen, ip_address="81.82.1.2", created_at=now - days * DAY
        )

    A = AuditEvent.Action
    return {
        "old": [
            signin(184),
            signin(190),
            signin(400),
            signin(800),
            event(184, A.SIGNIN_SUCCEEDED),
            event(300, A.SIGNIN_FAILED),
            event(200, A.NEW_BROWSER),
            event(731, A.ACTIVATION_ISSUED),
            event(900, A.CITIZEN_REGISTERED),
        ],
        "kept": [
            signin(0),
            signin(30),
            signin(182),
            event(182, A.SIGNIN_SUCCEEDED),
            event(10, A.SIGNED_OUT),
            event(184, A.ACTIVATION_ISSUED),  # not a sign-in: 24 months
            event(400, A.KEY_BLOCKED),
            event(729, A.CITIZEN_REGISTERED),
        ],
    }


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("prune_records", *args, stdout=out)
    return out.getvalue()


def remaining() -> set[tuple[str, int]]:
    return {("signin", pk) for pk in SignInAttempt.objects.values_list("pk", flat=True)} | {
        ("event", pk) for pk in AuditEvent.objects.values_list("pk", flat=True)
    }


def keys(rows) -> set[tuple[str, int]]:
    return {("signin" if isinstance(r, SignInAttempt) else "event", r.pk) for r in rows}


def test_deletes_exactly_what_is_past_its_retention(records, caplog):
    with caplog.at_level(logging.INFO, logger="keys.prune"):
        output = run()
    assert remaining() == keys(records["kept"])
    assert "deleted 4 sign-in attempts, 3 sign-in audit events, 2 other audit events" in output
    assert "prune_records deleted 4 sign-in attempts" in caplog.text


def test_dry_run_counts_and_deletes_nothing(records):
    before = remaining()
    output = run("--dry-run")
    assert remaining() == before
    assert "would delete 4 sign-in attempts, 3 sign-in audit events, 2 other audit events" in output


def test_a_second_run_deletes_nothing_more(records):
    run()
    after = remaining()
    assert "deleted 0 sign-in attempts, 0 sign-in audit events, 0 other audit events" in run()
    assert remaining() == after


def test_in_batches_each_its_own_short_delete(records):
    with CaptureQueriesContext(connection) as queries:
        run("--batch-size", "2")
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    signin_deletes = [sql for sql in deletes if "keys_signinattempt" in sql]
    audit_deletes = [sql for sql in deletes if "keys_auditevent" in sql]
    assert len(signin_deletes) == 2  # 4 old attempts, 2 a batch
    assert len(audit_deletes) == 3  # 3 sign-in events (2 + 1), 2 others (2)
    # by primary key, never by a date range that could take a long lock
    assert all('"id" IN (' in sql.replace("`", '"') for sql in deletes), deletes
    assert remaining() == keys(records["kept"])


def test_the_periods_are_configurable(records):
    with override_settings(
        CSAM={"SIGNIN_RECORD_RETENTION": timedelta(days=20), "AUDIT_EVENT_RETENTION": 300 * DAY}
    ):
        run()
    left = {
        (kind, pk)
        for kind, pk in keys(records["kept"])
        if kind == "signin" and SignInAttempt.objects.filter(pk=pk).exists()
    }
    assert {SignInAttempt.objects.get(pk=pk).created_at.date() for _kind, pk in left} == {
        timezone.now().date()
    }
    events = AuditEvent.objects.values_list("action", flat=True)
    assert sorted(events) == ["activation_issued", "signed_out"]


def test_the_providers_codes_and_tokens_go_a_day_after_they_expired(citizen):
    """The OpenID Connect provider's tables do not grow with every sign-in at a service."""
    from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken

    from keys.models import User
    from oidc.models import UsedCode

    user = User.objects.create(username="jan.peeters")
    app = Application.objects.create(
        name="Service",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://service.example/cb",
        algorithm=Application.RS256_ALGORITHM,
    )
    now = timezone.now()

    def made(days_ago: float, n: int) -> dict:
        expires = now - days_ago * DAY
        id_token = IDToken.objects.create(
            user=user, application=app, jti=uuid.UUID(int=n), expires=expires
        )
        return {
            "grant": Grant.objects.create(
                user=user,
                application=app,
                code=f"{n:064x}",
                expires=expires,
                redirect_uri="https://service.example/cb",
            ),
            "access": AccessToken.objects.create(
                user=user, application=app, token=f"token-{n}", expires=expires, id_token=id_token
            ),
            "id": id_token,
            "used": UsedCode.objects.create(
                code_hash=f"{n:064x}", application=app, user=user, used_at=expires
            ),
        }

    old, recent, live = made(1.5, 1), made(0.5, 2), made(-0.01, 3)
    revoked_long_ago = RefreshToken.objects.create(
        user=user, application=app, token="r-1", revoked=now - 2 * DAY
    )
    output = run()
    assert (
        "1 expired authorization codes, 1 expired access tokens, 1 expired ID tokens, "
        "1 revoked refresh tokens, 1 exchanged authorization codes" in output
    )
    for rows, kept in ((old, False), (recent, True), (live, True)):
        for row in rows.values():
            assert type(row).objects.filter(pk=row.pk).exists() is kept, (row, kept)
    assert not RefreshToken.objects.filter(pk=revoked_long_ago.pk).exists()
    assert "deleted 0 sign-in attempts" in run() and "0 expired access tokens" in run()
