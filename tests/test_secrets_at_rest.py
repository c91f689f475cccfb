"""After a complete activation, no secret is anywhere in the database in clear."""

import re

import pytest
from django.apps import apps
from django.core import mail
from django.db import connection

from keys import crypto, sms
from keys.models import DigitalKey
from keys.services import issuance
from tests.test_oidc import Flow, query_of, service, signed_in_consented  # noqa: F401 - fixture
from tests.test_signin import account  # noqa: F401 - fixture
from tests.wizard_helpers import (
    last_email_code,
    last_sms_code,
    open_link,
    post_step,
    secret_from_page,
    step_url,
    totp_code,
)

PASSWORD = "Correct-Horse-9x"
TIMES = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?")


def every_stored_value() -> str:
    """Every text column of every row of every table (sessions decoded too).

    Numbers and timestamps cannot hold a secret and are left out, so that a six-digit code is
    not "found" in the microseconds of a timestamp.
    """
    chunks = []
    with connection.cursor() as cursor:
        for model in apps.get_models():
            table = model._meta.db_table
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                chunks.extend(
                    value if isinstance(value, str) else bytes(value).decode("latin-1")
                    for value in row
                    if isinstance(value, str | bytes | memoryview)
                )
    from django.contrib.sessions.models import Session

    chunks.extend(str(session.get_decoded()) for session in Session.objects.all())
    # Times (with their microseconds) are written as text in SQLite and inside JSON details.
    return TIMES.sub("<time>", "\n".join(chunks))


@pytest.mark.django_db
def test_no_secret_in_clear_after_a_complete_activation(client, citizen, clerk):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    token = issued.activation_link.rstrip("/").rsplit("/", 1)[1]
    open_link(client, issued.activation_link)
    post_step(client, "code", {"activation_code": issued.formatted_code})
    post_step(client, "key", {"kind": "email", "accept_terms": "on"})
    post_step(
        client,
        "account",
        {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    email_code = last_email_code()
    post_step(client, "verify", {"code": email_code})
    # Recovery codes, offered once the first key is active (issue 13): shown once, kept hashed.
    shown = client.post("/nl/activatie-herstelcodes/").content.decode()
    recovery_codes = re.findall(r"<code>([2-9A-Z]{5}-[2-9A-Z]{5})</code>", shown)
    assert len(recovery_codes) == 10
    post_step(client, "activated", {"next_action": "another"})
    post_step(client, "key", {"kind": "sms", "phone": "0475998877", "accept_terms": "on"})
    sms_code = last_sms_code()
    post_step(client, "verify", {"code": sms_code})
    post_step(client, "activated", {"next_action": "another"})
    post_step(client, "key", {"kind": "totp", "accept_terms": "on"})
    page = client.get(step_url("verify")).content.decode()
    seed = secret_from_page(page).replace(" ", "")
    app_code = totp_code(seed)
    post_step(client, "verify", {"code": app_code})
    assert DigitalKey.objects.filter(state="active").count() == 3
    post_step(client, "activated", {"next_action": "done"})

    stored = every_stored_value()
    secrets = {
        "password": PASSWORD,
        "paper code": issued.activation_code,
        "paper code as printed": issued.formatted_code,
        "link token": token,
        "e-mail code": email_code,
        "sms code": sms_code,
        "app code": app_code,
        "TOTP seed": seed,
    }
    for number, code in enumerate(recovery_codes):
        secrets[f"recovery code {number}"] = code
        secrets[f"recovery code {number} as typed"] = code.replace("-", "")
    for name, secret in secrets.items():
        assert secret not in stored, f"{name} found in the database"
    # the seed is there, but only encrypted
    key = DigitalKey.objects.get(kind="totp")
    assert crypto.decrypt(key.secret_encrypted) == seed
    assert mail.outbox and sms.outbox


@pytest.mark.django_db
def test_no_oauth_secret_in_clear_after_a_sign_in_at_a_service(client, account, service):  # noqa: F811
    from oauth2_provider.models import Grant

    flow = Flow(service)
    response = signed_in_consented(client, account, flow)
    code = query_of(response["Location"])["code"]
    assert Grant.objects.count() == 1  # the code is alive, its row scanned
    assert code not in every_stored_value(), "authorization code found in the database"
    tokens = flow.token(client, code).json()
    stored = every_stored_value()
    secrets = {
        "authorization code": code,
        "access token": tokens["access_token"],
        "ID token": tokens["id_token"],
        "client secret": service.client_secret,
        "PKCE verifier": flow.verifier,
    }
    for name, secret in secrets.items():
        assert secret not in stored, f"{name} found in the database"
