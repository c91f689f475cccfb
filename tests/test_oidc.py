"""The OpenID Connect provider (oidc/): the whole code flow through Django's test client, the
ID token checked with Authlib against the JWKS, and every refusal."""

import base64
import hashlib
import json
import secrets
from io import StringIO
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.jose import JsonWebKey, jwt
from django.core.management import call_command
from django.db import connection
from django.test import Client
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError

from keys.models import AuditEvent
from oidc.models import Consent, Service, UsedCode
from oidc.services.claims import pairwise_sub
from oidc.services.registration import register
from oidc.validators import CitizenValidator
from tests.conftest import staff_login
from tests.test_signin import account, add_key, sign_in  # noqa: F401 - fixtures

REDIRECT = "https://service.example/callback"
ISSUER = "http://testserver"
Action = AuditEvent.Action


@pytest.fixture
def service(db):
    return register(name="Tax on web", redirect_uris=[REDIRECT], allow_nrn=False)


@pytest.fixture
def nrn_service(db):
    return register(name="Pensions", redirect_uris=["https://pensions.example/cb"], allow_nrn=True)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


class Flow:
    def __init__(self, registered, redirect_uri=REDIRECT, scope="openid profile", **extra):
        self.registered = registered
        self.verifier, challenge = pkce()
        self.state = secrets.token_urlsafe(12)
        self.nonce = secrets.token_urlsafe(12)
        self.redirect_uri = redirect_uri
        params = {
            "response_type": "code",
            "client_id": registered.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(extra)
        self.params = {key: value for key, value in params.items() if value is not None}

    @property
    def url(self) -> str:
        return "/oidc/authorize/?" + urlencode(self.params)

    def token(self, client, code, verifier=None):
        credentials = f"{self.registered.client_id}:{self.registered.client_secret}"
        return client.post(
            "/oidc/token/",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier or self.verifier,
            },
            HTTP_AUTHORIZATION="Basic " + base64.b64encode(credentials.encode()).decode(),
        )


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def signed_in_consented(client, account, flow, kind="email"):  # noqa: F811
    """Through sign-in and consent; the redirect back to the service."""
    response = client.get(flow.url)
    assert response.status_code == 302
    assert response["Location"].startswith("/nl/aanmelden/?next=")
    client.get(response["Location"])
    response = sign_in(client, account, kind)
    assert response["Location"] == flow.url.replace("/oidc/authorize/?", "/oidc/authorize/?", 1)
    response = client.get(response["Location"])
    if response.status_code == 200:  # the consent page
        assert "Tax on web" in response.content.decode() or "Pensions" in response.content.decode()
        response = client.post(flow.url, {"answer": "allow"})
    return response


def verify_id_token(client, id_token, registered, nonce):
    jwks = client.get("/oidc/jwks/").json()
    claims = jwt.decode(
        id_token,
        JsonWebKey.import_key_set(jwks),
        claims_options={
            "iss": {"essential": True, "value": ISSUER},
            "aud": {"essential": True, "value": registered.client_id},
            "nonce": {"essential": True, "value": nonce},
        },
    )
    claims.validate()
    return claims


def test_the_whole_code_flow(client, account, service):  # noqa: F811
    flow = Flow(service)
    response = signed_in_consented(client, account, flow)
    assert response.status_code == 302
    assert response["Location"].startswith(REDIRECT + "?")
    answer = query_of(response["Location"])
    assert answer["state"] == flow.state
    assert answer["iss"] == ISSUER
    tokens = flow.token(client, answer["code"])
    assert tokens.status_code == 200, tokens.content
    body = tokens.json()
    claims = verify_id_token(client, body["id_token"], service, flow.nonce)
    assert claims["acr"] == "urn:be:fedict:iam:fas:citizen:Level400"
    assert claims["amr"] == ["pwd", "email"]
    assert claims["sub"] == pairwise_sub(service.service, account)
    assert claims["sub"] != str(account.pk)
    assert isinstance(claims["auth_time"], int)
    info = client.get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert info.status_code == 200
    data = info.json()
    assert data["sub"] == claims["sub"]
    assert data["given_name"] == "Jan" and data["family_name"] == "Peeters"
    assert data["locale"] == "nl"
    assert "egovNRN" not in data
    event = AuditEvent.objects.get(action=Action.OIDC_SIGNIN)
    assert event.detail["service"] == "Tax on web"
    assert event.detail["level"] == "substantial"
    assert event.detail["amr"] == ["pwd", "email"]
    # tokens are not stored in clear
    assert not AccessToken.objects.filter(token=body["access_token"]).exists()
    # a second sign-in at the service asks no consent again
    flow2 = Flow(service)
    response = client.get(flow2.url)
    assert response.status_code == 302 and response["Location"].startswith(REDIRECT)


def test_pairwise_sub_differs_between_sectors(account, service, nrn_service):  # noqa: F811
    assert pairwise_sub(service.service, account) != pairwise_sub(nrn_service.service, account)


def test_the_app_key_gives_otp_and_nrn_only_when_allowed(client, account, nrn_service):  # noqa: F811
    add_key(account, "totp")
    flow = Flow(nrn_service, redirect_uri="https://pensions.example/cb", scope="openid egovnrn")
    response = signed_in_consented(client, account, flow, kind="totp")
    answer = query_of(response["Location"])
    body = flow.token(client, answer["code"]).json()
    claims = verify_id_token(client, body["id_token"], nrn_service, flow.nonce)
    assert claims["amr"] == ["pwd", "otp"]
    info = client.get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert info.json()["egovNRN"] == account.citizen.national_number
    assert "name" not in info.json()


def test_unknown_client_is_an_error_page_not_a_redirect(client, service):
    flow = Flow(service)
    flow.params["client_id"] = "nobody"
    response = client.get(flow.url)
    assert response.status_code == 400
    assert "cannot be handled" in response.content.decode() or response.templates
    assert "Location" not in response


def test_wrong_redirect_uri_is_an_error_page_not_a_redirect(client, service):
    flow = Flow(service, redirect_uri="https://service.example/callback/other")
    response = client.get(flow.url)
    assert response.status_code == 400
    assert "Location" not in response
    flow = Flow(service, redirect_uri="https://evil.example/callback")
    assert client.get(flow.url).status_code == 400


def test_missing_pkce_is_refused_to_the_service(client, service):
    flow = Flow(service, code_challenge=None, code_challenge_method=None)
    response = client.get(flow.url)
    assert response.status_code == 302
    answer = query_of(response["Location"])
    assert response["Location"].startswith(REDIRECT)
    assert answer["error"] == "invalid_request"
    assert answer["state"] == flow.state


def test_plain_pkce_is_refused(client, service):
    flow = Flow(service, code_challenge_method="plain")
    flow.params["code_challenge"] = "a" * 50
    response = client.get(flow.url)
    assert response.status_code == 302
    assert query_of(response["Location"])["error"] == "invalid_request"


def test_implicit_and_hybrid_flows_are_refused(client, service):
    for response_type in ("token", "id_token", "code id_token"):
        flow = Flow(service, response_type=response_type)
        response = client.get(flow.url)
        assert response.status_code in (302, 400)
        if response.status_code == 302:
            assert "error=" in response["Location"], response_type
            assert "code=" not in response["Location"]


def test_a_reused_code_is_refused_and_revokes_its_tokens(client, account, service):  # noqa: F811
    flow = Flow(service)
    response = signed_in_consented(client, account, flow)
    code = query_of(response["Location"])["code"]
    first = flow.token(client, code)
    assert first.status_code == 200
    access = first.json()["access_token"]
    assert AccessToken.objects.count() == 1
    second = flow.token(client, code)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert AccessToken.objects.count() == 0
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert client.get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 401
    assert UsedCode.objects.count() == 1


def test_two_exchanges_of_one_code_at_once_are_a_replay_never_a_500(client, account, service):  # noqa: F811
    """Both exchanges passed validate_code before either invalidated the code (the race of
    two token requests at once): the second one to invalidate it is refused with invalid_grant
    and every token the code gave is revoked, whichever side of the race it lost on."""
    from oauthlib.common import Request

    flow = Flow(service)
    code = query_of(signed_in_consented(client, account, flow)["Location"])["code"]
    grant = Grant.objects.get()
    saved = {f.attname: getattr(grant, f.attname) for f in Grant._meta.concrete_fields}
    first = flow.token(client, code)
    assert first.status_code == 200
    access = first.json()["access_token"]
    request = Request("http://testserver/oidc/token/", http_method="POST")
    request.client = Application.objects.get(client_id=service.client_id)
    validator = CitizenValidator()

    # Lost after the other exchange deleted the grant.
    with pytest.raises(InvalidGrantError):
        validator.invalidate_authorization_code(service.client_id, code, request)
    assert AccessToken.objects.count() == 0
    assert client.get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 401

    # Lost between reading the grant and recording the code as used.
    Grant.objects.create(**saved)
    with pytest.raises(InvalidGrantError):
        validator.invalidate_authorization_code(service.client_id, code, request)
    assert UsedCode.objects.count() == 1


def grant_rows() -> list[tuple]:
    """The Grant table as stored: every column of every row."""
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(Grant._meta.db_table)
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
        return cursor.fetchall()


def test_a_code_is_stored_only_as_its_hash(client, account, service):  # noqa: F811
    flow = Flow(service)
    response = signed_in_consented(client, account, flow)
    code = query_of(response["Location"])["code"]
    rows = grant_rows()
    assert len(rows) == 1
    stored = [str(value) for value in rows[0] if value is not None]
    assert not any(code in value for value in stored)
    assert hashlib.sha256(code.encode()).hexdigest() in stored
    # the hash read from the database is no code
    assert flow.token(client, Grant.objects.get().code).status_code == 400
    # the code itself serves, once
    first = flow.token(client, code)
    assert first.status_code == 200, first.content
    verify_id_token(client, first.json()["id_token"], service, flow.nonce)
    assert grant_rows() == []
    access = first.json()["access_token"]
    second = flow.token(client, code)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert AccessToken.objects.count() == 0
    assert client.get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 401


def test_every_lookup_of_a_grant_by_its_code_is_given_the_hash():
    """DOT's validator reads and writes ``Grant`` by its code in these methods; each must be
    overridden to hand it the hash (a newer DOT adding one fails here, not in production)."""
    import inspect

    touching = {
        name
        for name, member in vars(OAuth2Validator).items()
        if inspect.isfunction(member) and "Grant.objects" in inspect.getsource(member)
    }
    assert "validate_code" in touching and "_create_authorization_code" in touching
    assert touching <= set(vars(CitizenValidator)), touching - set(vars(CitizenValidator))


def test_the_token_response_has_no_refresh_token(client, account, service):  # noqa: F811
    flow = Flow(service)
    response = signed_in_consented(client, account, flow)
    tokens = flow.token(client, query_of(response["Location"])["code"])
    assert tokens.status_code == 200
    body = tokens.json()
    assert "access_token" in body and "id_token" in body
    assert "refresh_token" not in body
    assert RefreshToken.objects.count() == 0


def test_a_wrong_code_verifier_is_refused(client, account, service):  # noqa: F811
    flow = Flow(service)
    response = signed_in_consented(client, account, flow)
    code = query_of(response["Location"])["code"]
    other, _challenge = pkce()
    assert flow.token(client, code, verifier=other).status_code == 400


def test_a_level_above_every_key_is_refused_with_a_page(client, account, service):  # noqa: F811
    # Level500 is the eID card: no key of this site gives it.
    flow = Flow(service, acr_values="urn:be:fedict:iam:fas:citizen:Level500")
    response = client.get(flow.url)
    assert response.status_code == 403
    page = response.content.decode()
    back = response.context["back"]
    assert back.startswith(REDIRECT)
    assert query_of(back)["error"] == "unmet_authentication_requirements"
    assert query_of(back)["state"] == flow.state
    assert "eID" in page


def test_a_passkey_gives_level400_and_swk_and_level500_is_refused_at_once(client, account, service):  # noqa: F811
    """Level500 (the eID card) and Level450 (itsme) are within no key's reach: the citizen is
    refused before any sign-in. A passkey registered without attestation proves no hardware:
    it gives Level400 ("substantial") and ``swk``, like the other keys their level."""
    from tests.soft_authenticator import SoftAuthenticator
    from tests.test_passkeys import (
        ORIGIN,
        add_passkey,
        options_in,
        sign_in_with_passkey_page,
        signed_in_client,
    )

    for high in ("urn:be:fedict:iam:fas:citizen:Level500", "urn:be:fedict:iam:fas:Level450"):
        response = client.get(Flow(service, acr_values=high).url)
        assert response.status_code == 403
        assert response.context["beyond"] and response.context["again"] == ""

    substantial = "urn:be:fedict:iam:fas:citizen:Level400"
    authenticator = SoftAuthenticator(ORIGIN, "testserver")
    key = add_passkey(signed_in_client(account), account, authenticator)
    browser = Client()
    flow = Flow(service, acr_values=substantial)
    browser.get(browser.get(flow.url)["Location"])
    page = sign_in_with_passkey_page(browser, account, key)
    response = browser.post("/nl/aanmelden/code/", {"code": authenticator.sign(options_in(page))})
    response = browser.get(response["Location"])
    assert response.status_code == 200, response.status_code
    assert "oidc/consent.html" in [t.name for t in response.templates]
    response = browser.post(flow.url, {"answer": "allow"})
    tokens = flow.token(browser, query_of(response["Location"])["code"]).json()
    claims = verify_id_token(browser, tokens["id_token"], service, flow.nonce)
    assert claims["acr"] == substantial
    assert claims["amr"] == ["pwd", "swk"]


def test_a_level_the_sign_in_did_not_reach(client, account, service, settings):  # noqa: F811
    settings.DIGITAL_KEY_LEVELS = {"email": "low", "totp": "substantial"}
    flow = Flow(service, acr_values="urn:be:fedict:iam:fas:citizen:Level400")
    client.get(client.get(flow.url)["Location"])
    response = sign_in(client, account, "email")
    response = client.get(response["Location"])
    assert response.status_code == 403
    assert response.context["again"] == ""  # no other key of theirs gives it
    add_key(account, "totp")
    response = client.get(flow.url)
    assert "prompt=login" in response.context["again"]


def test_egovnrn_for_a_service_not_allowed_it_is_refused(client, service):
    flow = Flow(service, scope="openid egovnrn")
    response = client.get(flow.url)
    assert response.status_code == 302
    assert query_of(response["Location"])["error"] == "invalid_scope"


def test_consent_denied_and_withdrawn(client, account, service):  # noqa: F811
    flow = Flow(service)
    client.get(client.get(flow.url)["Location"])
    sign_in(client, account)
    assert client.get(flow.url).status_code == 200
    response = client.post(flow.url, {"answer": "deny"})
    assert query_of(response["Location"])["error"] == "access_denied"
    assert not Consent.objects.exists()
    response = client.post(flow.url, {"answer": "allow"})
    code = query_of(response["Location"])["code"]
    access = flow.token(client, code).json()["access_token"]
    consent = Consent.objects.get()
    page = client.get("/nl/mijn-sleutels/")
    assert "Tax on web" in page.content.decode()
    response = client.post(f"/nl/mijn-sleutels/diensten/{consent.pk}/intrekken/")
    assert response["Location"] == "/nl/mijn-sleutels/"
    assert not Consent.objects.exists()
    assert client.get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 401
    assert AuditEvent.objects.filter(action=Action.OIDC_CONSENT_WITHDRAWN).exists()
    # the next sign-in at the service asks again
    assert client.get(Flow(service).url).status_code == 200


def test_someone_else_cannot_withdraw_a_consent(client, account, service):  # noqa: F811
    other = Consent.objects.create(user=account, service=service.service, scopes="openid")
    assert client.post(f"/nl/mijn-sleutels/diensten/{other.pk}/intrekken/").status_code == 302
    assert Consent.objects.filter(pk=other.pk).exists()


def test_prompt_login_and_max_age_force_a_fresh_sign_in(client, account, service):  # noqa: F811
    flow = Flow(service)
    signed_in_consented(client, account, flow)
    response = client.get(Flow(service, prompt="login").url)
    assert response["Location"].startswith("/nl/aanmelden/?next=")
    assert "prompt" not in parse_qs(urlsplit(response["Location"]).query)["next"][0]
    assert client.session.get("_auth_user_id")  # kept until a new sign-in (test_oidc_edges)
    client.get(response["Location"])
    client.get(sign_in(client, account)["Location"])
    response = client.get(Flow(service, max_age="100").url)
    assert response["Location"].startswith(REDIRECT)
    response = client.get(Flow(service, max_age="0").url)
    assert response["Location"].startswith("/nl/aanmelden/")


def test_prompt_none_without_sign_in(client, service):
    response = client.get(Flow(service, prompt="none").url)
    assert query_of(response["Location"])["error"] == "login_required"


def test_ui_locales_chooses_the_language(client, service):
    response = client.get(Flow(service, ui_locales="fr-BE en").url)
    assert response["Location"].startswith("/fr/aanmelden/")


def test_consent_page_lets_its_form_return_to_the_service(client, account, service):  # noqa: F811
    flow = Flow(service)
    client.get(client.get(flow.url)["Location"])
    sign_in(client, account)
    response = client.get(flow.url)
    policy = response["Content-Security-Policy"]
    assert "form-action 'self' https://service.example" in policy


def test_discovery_has_the_required_fields(client):
    data = client.get("/.well-known/openid-configuration").json()
    for field in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "userinfo_endpoint",
        "end_session_endpoint",
        "revocation_endpoint",
    ):
        assert data[field], field
    assert data["issuer"] == ISSUER
    assert data["response_types_supported"] == ["code"]
    assert data["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in data["id_token_signing_alg_values_supported"]
    assert "implicit" not in data["grant_types_supported"]
    assert "password" not in data["grant_types_supported"]
    for url in (data["authorization_endpoint"], data["token_endpoint"], data["jwks_uri"]):
        assert url.startswith(ISSUER + "/")


def test_jwks_publishes_the_current_and_previous_keys(client, settings):
    keys = client.get("/oidc/jwks/").json()["keys"]
    assert len(keys) >= 1
    for key in keys:
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
        assert key["kid"] and key["n"] and key["e"]
        assert "d" not in key and "p" not in key


def test_register_service_prints_a_secret_stored_hashed(db):
    out = StringIO()
    call_command(
        "register_service",
        "--name",
        "Demo",
        "--redirect-uri",
        "https://demo.example/cb",
        "--allow-nrn",
        "--min-level",
        "substantial",
        "--json",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    application = Application.objects.get(client_id=data["client_id"])
    assert application.client_secret != data["client_secret"]
    assert application.client_secret.startswith(("argon2", "pbkdf2", "sha"))
    assert Service.objects.get(application=application).allow_nrn
    assert application.algorithm == "RS256"


def test_tokens_never_reach_the_logs():
    from keys.logging import redact

    line = "GET /oidc/logout/?id_token_hint=eyJabc.def.ghi&state=x HTTP/1.1"
    assert "eyJabc" not in redact(line)
    assert "code=SECRET" not in redact("GET /cb?code=SECRET&state=s")


def test_a_code_lives_one_minute(client, account, service):  # noqa: F811
    import time_machine
    from django.utils import timezone

    flow = Flow(service)
    response = signed_in_consented(client, account, flow)
    code = query_of(response["Location"])["code"]
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=61)):
        assert flow.token(client, code).status_code == 400
    # refused for its age, not as unknown: within its minute it still serves
    assert flow.token(client, code).status_code == 200


def test_the_token_endpoint_is_rate_limited(client, service, settings, time_machine):
    import datetime
    import time

    from django.core.cache import cache

    # The limits count in fixed windows (keys/ratelimit.py): start at the beginning of the next
    # one, the clock still, so that the 62 requests cannot straddle two windows.
    window = 600
    start = (int(time.time()) // window + 1) * window + 1
    time_machine.move_to(datetime.datetime.fromtimestamp(start, tz=datetime.UTC), tick=False)
    cache.clear()
    wrong = "Basic " + base64.b64encode(f"{service.client_id}:wrong".encode()).decode()
    statuses = [
        client.post(
            "/oidc/token/",
            {"grant_type": "authorization_code", "code": f"nothing-{i}"},
            HTTP_AUTHORIZATION=wrong,
        ).status_code
        for i in range(62)
    ]
    assert statuses[:60] == [401] * 60
    assert statuses[-1] == 429
    assert AuditEvent.objects.filter(action=Action.RATE_LIMITED).exists()
    cache.clear()


def test_jwks_publishes_a_previous_key_during_a_rotation(client, settings):
    from oidc.keyconfig import generate_pem

    current = settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"]
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_RSA_PRIVATE_KEY": generate_pem(),
        "OIDC_RSA_PRIVATE_KEYS_INACTIVE": [current],
    }
    keys = client.get("/oidc/jwks/").json()["keys"]
    assert len(keys) == 2
    assert len({key["kid"] for key in keys}) == 2


def test_the_admin_lists_the_services(client, service):
    from tests.conftest import make_staff

    administrator = make_staff("administrator", None, None)
    administrator.is_superuser = True
    administrator.save()
    staff_login(client, administrator)
    page = client.get("/admin/oidc/service/")
    assert page.status_code == 200
    assert "Tax on web" in page.content.decode()
    assert service.client_id in page.content.decode()
    assert service.client_secret not in page.content.decode()


def test_no_refresh_grant(client, account, service):  # noqa: F811
    flow = Flow(service)
    response = signed_in_consented(client, account, flow)
    body = flow.token(client, query_of(response["Location"])["code"]).json()
    credentials = f"{service.client_id}:{service.client_secret}"
    refreshed = client.post(
        "/oidc/token/",
        {"grant_type": "refresh_token", "refresh_token": body.get("refresh_token", "x")},
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(credentials.encode()).decode(),
    )
    assert refreshed.status_code in (400, 401)
    assert refreshed.json()["error"] in ("unauthorized_client", "unsupported_grant_type")


def test_revoked_access_token_is_refused(client, account, service):  # noqa: F811
    flow = Flow(service)
    response = signed_in_consented(client, account, flow)
    access = flow.token(client, query_of(response["Location"])["code"]).json()["access_token"]
    credentials = f"{service.client_id}:{service.client_secret}"
    revoked = client.post(
        "/oidc/revoke/",
        {"token": access, "token_type_hint": "access_token"},
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(credentials.encode()).decode(),
    )
    assert revoked.status_code == 200
    assert client.get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 401


def test_the_sign_in_pages_may_send_their_last_form_on_to_the_service(client, service):
    response = client.get(Flow(service).url)
    page = client.get(response["Location"])
    assert "form-action 'self' https://service.example" in page["Content-Security-Policy"]
    other = Client()
    assert "https://service.example" not in other.get("/nl/aanmelden/")["Content-Security-Policy"]
