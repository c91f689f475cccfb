"""The provider's edges (issue 25 §2 and §4), each through the real endpoints: levels as FAS
gives them (no Level450/500 here, acr values anchored), the token endpoint's limits, logout,
userinfo's token transport, prompt=none, prompt=login and max_age, RFC 7636 and OIDC Core
refusals, and the settings a production provider needs."""

import base64
import datetime
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.test import Client
from oauth2_provider.models import AccessToken, Grant

from keys.conf import DEFAULTS
from keys.digital_keys import level_of
from keys.models import AuditEvent
from oidc import levels
from oidc.services.registration import register
from tests.test_oidc import REDIRECT, Flow, pkce, query_of, signed_in_consented
from tests.test_signin import account, add_key, sign_in  # noqa: F401 - fixtures

Action = AuditEvent.Action
L400 = "urn:be:fedict:iam:fas:citizen:Level400"


@pytest.fixture
def service(db):
    return register(name="Tax on web", redirect_uris=[REDIRECT])


@pytest.fixture
def other_service(db):
    return register(name="Pensions", redirect_uris=["https://pensions.example/cb"])


@pytest.fixture
def window(time_machine):
    """The clock still at the start of a fresh 10-minute window, the counts empty: the
    limits count in fixed windows (keys/ratelimit.py)."""
    start = (int(time.time()) // 600 + 1) * 600 + 1
    time_machine.move_to(datetime.datetime.fromtimestamp(start, tz=datetime.UTC), tick=False)
    cache.clear()
    yield
    cache.clear()


def peek(name: str, identity: str):
    from keys.ratelimit import peek

    return peek(name, identity)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# --- §2 levels as FAS gives them -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("urn:be:fedict:iam:fas:citizen:Level400", "substantial"),
        ("urn:be:fedict:iam:fas:Level400", "substantial"),
        ("Level400", "substantial"),
        ("urn:be:fedict:iam:fas:citizen:Level300", "substantial"),
        ("urn:be:fedict:iam:fas:Level100", "low"),
        ("urn:be:fedict:iam:fas:citizen:Level200", "low"),
        ("urn:be:fedict:iam:fas:citizen:Level450", "high"),
        ("urn:be:fedict:iam:fas:Level500", "high"),
        ("urn:be:fedict:iam:fas:citizen:Level600", None),
    ],
)
def test_acr_values_in_fas_forms_compare_by_their_number(value, level):
    assert levels.level_for_acr(value) == level


@pytest.mark.parametrize(
    "value",
    [
        "xLevel500",
        "Level500x",
        "fooLevel400",
        "urn:be:fedict:iam:fas:citizen:Level500x",
        "urn:x:urn:be:fedict:iam:fas:Level400",
        "urn:be:fedict:iam:fas:other:Level400",
        "level400",
        "Level40",
        "Level4000",
        "Level0400",
        "Level\u0664\u0660\u0660",  # Arabic-Indic digits are no FAS number
        "Level400\n",
    ],
)
def test_an_acr_value_outside_those_forms_is_no_level(value):
    with pytest.raises(levels.UnknownAcr):
        levels.level_for_acr(value)


@pytest.mark.parametrize("value", ["xLevel500", "Level500x", "fooLevel400"])
def test_an_unknown_acr_value_is_refused_before_any_sign_in(client, service, value):
    response = client.get(Flow(service, acr_values=value).url)
    assert response.status_code == 403
    assert response.context["unknown"]
    assert query_of(response.context["back"])["error"] == "unmet_authentication_requirements"
    assert "niet kent" in response.content.decode()


def test_an_acr_value_in_the_form_without_citizen_is_honoured(client, service):
    response = client.get(Flow(service, acr_values="urn:be:fedict:iam:fas:Level400").url)
    assert response.status_code == 302 and "/aanmelden/" in response["Location"]


@pytest.mark.parametrize(
    "value", ["urn:be:fedict:iam:fas:citizen:Level450", "urn:be:fedict:iam:fas:Level500"]
)
def test_itsme_and_eid_levels_are_refused_at_once_in_every_language(client, service, value):
    for language, words in (
        ("nl", "eID-kaart of itsme"),
        ("fr", "carte eID ou d'itsme"),
        ("de", "eID-Karte oder von itsme"),
        ("en", "eID card or itsme"),
    ):
        response = client.get(Flow(service, acr_values=value, ui_locales=language).url)
        assert response.status_code == 403, language
        assert response.context["beyond"]
        assert words in response.content.decode(), language


def test_no_key_gives_high_and_the_discovery_says_so(client, settings):
    assert level_of("passkey") == "substantial"
    assert {level_of(kind) for kind in ("totp", "sms", "email", "passkey")} == {"substantial"}
    data = client.get("/.well-known/openid-configuration").json()
    assert data["acr_values_supported"] == [
        "urn:be:fedict:iam:fas:citizen:Level200",
        "urn:be:fedict:iam:fas:citizen:Level400",
    ]


def test_a_passkey_alone_gives_swk(client, account):  # noqa: F811
    from keys.digital_keys.passkey.views import USERNAMELESS_AMR

    assert USERNAMELESS_AMR == ["swk", "user"]


def test_digital_key_levels_naming_high_is_a_system_check_error(db, settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from keys.checks import digital_key_levels

    settings.DIGITAL_KEY_LEVELS = {"passkey": "high"}
    errors = digital_key_levels()
    assert [error.id for error in errors] == ["keys.E001"]
    assert "Level500" in errors[0].msg
    with pytest.raises(SystemCheckError):
        call_command("check")
    with pytest.raises(ImproperlyConfigured):
        level_of("passkey")
    settings.DIGITAL_KEY_LEVELS = {"pigeon": "low"}
    assert [error.id for error in digital_key_levels()] == ["keys.E001"]
    settings.DIGITAL_KEY_LEVELS = {"sms": "low"}
    assert digital_key_levels() == []


def test_a_service_cannot_be_registered_for_the_high_level(db):
    with pytest.raises(ValidationError):
        register(name="eID only", redirect_uris=[REDIRECT], min_level="high")


def test_a_session_that_counted_as_high_is_not_told_to_a_service(client, account, service):  # noqa: F811
    """A session signed in with a passkey before the upgrade recorded the level "high": a
    service is not sent it, the citizen signs in again."""
    signed_in_consented(client, account, Flow(service))
    session = client.session
    session["csam_auth"] = {**session["csam_auth"], "acr": "high", "amr": ["pwd", "hwk"]}
    session.save()
    response = client.get(Flow(service).url)
    assert response.status_code == 302 and "/aanmelden/" in response["Location"]


# --- §4 the token endpoint's limits -----------------------------------------------------------


def junk(client, service, *, address, secret=None, body_client=False):
    data = {"grant_type": "authorization_code", "code": "junk", "redirect_uri": REDIRECT}
    extra = {"REMOTE_ADDR": address}
    if body_client:
        data["client_id"] = service.client_id
    else:
        extra["HTTP_AUTHORIZATION"] = basic(service.client_id, secret or "wrong")
    return client.post("/oidc/token/", data, **extra)


def test_strangers_naming_a_service_cannot_spend_its_budget(client, account, service, window):  # noqa: F811
    """360 junk requests naming the service (from 12 addresses, each under its own limit):
    the service's real code exchange still succeeds, its own budget untouched."""
    flow = Flow(service)
    code = query_of(signed_in_consented(client, account, flow)["Location"])["code"]
    statuses = set()
    for number in range(12):
        for _ in range(30):
            response = junk(client, service, address=f"203.0.113.{number}", body_client=True)
            statuses.add(response.status_code)
    assert statuses <= {400, 401, 429}
    # the service authenticates with client_secret_post (client_id in the body, as the junk)
    tokens = client.post(
        "/oidc/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": flow.verifier,
            "client_id": service.client_id,
            "client_secret": service.client_secret,
        },
    )
    assert tokens.status_code == 200, tokens.content
    # its own budget counts its own request only
    assert peek("oidc-token:client", service.client_id)[0] == 1


def test_a_wrong_secret_counts_against_the_client_s_failures_not_its_budget(
    client,
    account,  # noqa: F811
    service,
    window,
):
    limit = 60  # RATE_LIMITS["oidc-token:client-failures"]
    for index in range(limit):
        response = junk(client, service, address=f"198.51.100.{index % 2}")
        assert response.status_code == 401, index
        assert response.json()["error"] == "invalid_client"
    # Over the failures naming the service: an address that failed is refused for it...
    refused = junk(client, service, address="198.51.100.1")
    assert refused.status_code == 429
    assert refused.json()["error"] == "invalid_request"
    assert int(refused["Retry-After"]) > 0
    event = AuditEvent.objects.filter(action=Action.RATE_LIMITED).latest("pk")
    assert event.detail["scope"] == "oidc-token:client-failures"
    # ...the service's own address (no failure of its own) is not.
    flow = Flow(service)
    code = query_of(signed_in_consented(client, account, flow)["Location"])["code"]
    assert flow.token(client, code).status_code == 200
    assert DEFAULTS["RATE_LIMITS"]["oidc-token:client-failures"][0] == limit
    assert peek("oidc-token:client-failures", service.client_id)[0] == limit
    assert peek("oidc-token:client", service.client_id)[0] == 1


def test_an_address_s_failures_are_limited(client, service, window):
    limit = DEFAULTS["RATE_LIMITS"]["oidc-token:ip"][0]
    for _ in range(limit):
        assert junk(client, service, address="192.0.2.7", body_client=True).status_code == 401
    refused = junk(client, service, address="192.0.2.7", body_client=True)
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "invalid_request"  # RFC 6749 §5.2's codes; no slow_down
    assert "Too many requests" in body["error_description"]
    assert refused["Retry-After"].isdigit()
    assert "no-store" in refused["Cache-Control"]
    # another address is not concerned
    assert junk(client, service, address="192.0.2.8", body_client=True).status_code == 401


def test_the_service_s_own_budget_counts_its_authenticated_requests(
    client, service, window, settings
):
    settings.CSAM = {
        "RATE_LIMITS": {
            **DEFAULTS["RATE_LIMITS"],
            "oidc-token:client": (3, datetime.timedelta(minutes=10)),
        }
    }
    statuses = [
        junk(client, service, address="192.0.2.9", secret=service.client_secret).status_code
        for _ in range(4)
    ]
    assert statuses == [400, 400, 400, 429]  # invalid_grant, then over its own budget
    assert peek("oidc-token:ip", "192.0.2.9")[0] == 0  # not the address's failures


# --- §4 logout -------------------------------------------------------------------------------


def test_logout_with_one_service_s_hint_revokes_that_service_s_tokens_only(
    client,
    account,  # noqa: F811
    service,
    other_service,
):
    flow = Flow(service)
    body = flow.token(
        client, query_of(signed_in_consented(client, account, flow)["Location"])["code"]
    ).json()
    other = Flow(other_service, redirect_uri="https://pensions.example/cb")
    response = client.get(other.url)
    if response.status_code == 200:  # the consent page
        response = client.post(other.url, {"answer": "allow"})
    other_body = other.token(client, query_of(response["Location"])["code"]).json()
    response = client.get("/oidc/logout/", {"id_token_hint": body["id_token"]})
    assert response.status_code == 302
    assert not client.session.get("_auth_user_id")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {body['access_token']}"}
    assert client.get("/oidc/userinfo/", **bearer).status_code == 401
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {other_body['access_token']}"}
    assert client.get("/oidc/userinfo/", **bearer).status_code == 200
    assert AccessToken.objects.count() == 1


def test_logout_naming_an_unknown_client_is_the_error_page(db):
    client = Client(raise_request_exception=False)
    for language, words in (("nl", "afmeld"), ("en", "sign-out request")):
        response = client.get(
            "/oidc/logout/", {"client_id": "doesnotexist", "ui_locales": language}
        )
        assert response.status_code == 400
        assert words in response.content.decode().lower()


# --- §4 userinfo: the header only ------------------------------------------------------------


def test_userinfo_takes_the_token_in_the_header_only(client, account, service):  # noqa: F811
    flow = Flow(service)
    code = query_of(signed_in_consented(client, account, flow)["Location"])["code"]
    access = flow.token(client, code).json()["access_token"]
    for response in (
        client.get("/oidc/userinfo/", {"access_token": access}),
        client.post("/oidc/userinfo/", {"access_token": access}),
        client.post(
            "/oidc/userinfo/", {"access_token": access}, HTTP_AUTHORIZATION=f"Bearer {access}"
        ),
    ):
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        assert response["WWW-Authenticate"].startswith('Bearer error="invalid_request"')
        assert "sub" not in response.json()
    assert client.get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 200
    assert client.post("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 200


# --- §4 prompt=none with a level that cannot be met -----------------------------------------


def test_prompt_none_with_a_level_no_key_gives_goes_back_with_the_error(client, service):
    flow = Flow(service, acr_values="urn:be:fedict:iam:fas:citizen:Level500", prompt="none")
    response = client.get(flow.url)
    assert response.status_code == 302
    assert response["Location"].startswith(REDIRECT + "?")
    answer = query_of(response["Location"])
    assert answer["error"] == "unmet_authentication_requirements"
    assert answer["state"] == flow.state


def test_prompt_none_signed_in_below_the_level_asks_for_a_sign_in(
    client,
    account,  # noqa: F811
    service,
    settings,
):
    settings.DIGITAL_KEY_LEVELS = {"email": "low"}
    add_key(account, "totp")  # a key that gives it
    client.get(client.get(Flow(service).url)["Location"])
    sign_in(client, account, "email")
    flow = Flow(service, acr_values=L400, prompt="none")
    response = client.get(flow.url)
    assert response.status_code == 302 and response["Location"].startswith(REDIRECT + "?")
    answer = query_of(response["Location"])
    assert answer["error"] == "login_required"
    assert answer["state"] == flow.state


# --- §4 prompt=login and max_age: a fresh sign-in, the session kept until then ---------------


def next_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["next"][0]


@pytest.mark.parametrize("fresh", [{"prompt": "login"}, {"max_age": "0"}])
def test_a_fresh_sign_in_keeps_the_session_until_it_is_made(client, account, service, fresh):  # noqa: F811
    signed_in_consented(client, account, Flow(service))
    user_id = client.session["_auth_user_id"]
    flow = Flow(service, **fresh)
    time.sleep(1.01)  # the new sign-in is in a later second than the old one
    response = client.get(flow.url)
    assert response["Location"].startswith("/nl/aanmelden/?next=")
    # a cross-site GET ends nothing: still signed in here
    assert client.session["_auth_user_id"] == user_id
    assert client.get("/nl/mijn-sleutels/").status_code == 200
    target = next_of(response["Location"])
    assert "prompt" not in target and "max_age" not in target
    assert "csam_fresh_after=" in target
    # the way back without a new sign-in asks for it again
    again = client.get(target)
    assert again["Location"].startswith("/nl/aanmelden/?next=")
    # the new sign-in returns to the service
    client.get(response["Location"])
    response = sign_in(client, account)
    assert response["Location"] == target
    response = client.get(target)
    assert response["Location"].startswith(REDIRECT + "?")
    assert "code" in query_of(response["Location"])


def test_prompt_login_lets_another_citizen_sign_in_and_return(
    client,
    account,  # noqa: F811
    service,
    citizen2_account,
):
    signed_in_consented(client, account, Flow(service))
    response = client.get(Flow(service, prompt="login").url)
    target = next_of(response["Location"])
    client.get(response["Location"])
    response = sign_in(client, citizen2_account)
    assert response["Location"] == target


@pytest.fixture
def citizen2_account(office, clerk, rf):
    from django.core import mail
    from django.utils import timezone

    from keys.models import Citizen, DigitalKey
    from keys.services import activation as activation_flow
    from keys.services import issuance
    from tests.test_signin import PASSWORD

    first9 = 900201997
    citizen = Citizen.objects.create(
        first_name="An",
        last_name="Claes",
        national_number=f"{first9}{97 - first9 % 97:02d}",
        email="an.claes@example.be",
        phone="+32470999888",
        language="nl",
        id_document_type="id_card",
        id_document_number="592123456780",
        office=office,
        registered_by=clerk,
    )
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    request = rf.post("/", REMOTE_ADDR="127.0.0.1")
    activation_flow.redeem_activation_code(issued.activation.pk, issued.activation_code, request)
    user = activation_flow.create_account(issued.activation, "an.claes", PASSWORD, request)
    key = activation_flow.enrol_key(user, "email", issued.activation)
    DigitalKey.objects.filter(pk=key.pk).update(state="active", activated_at=timezone.now())
    mail.outbox.clear()
    return user


# --- §4 RFC 7636 and OIDC Core refusals -------------------------------------------------------


@pytest.mark.parametrize(
    "challenge",
    ["a" * 42, "a" * 129, "a" * 42 + "+", "a" * 42 + "/", "a" * 42 + "=", "é" * 43, ""],
)
def test_a_code_challenge_outside_rfc_7636_is_refused(client, service, challenge):
    flow = Flow(service)
    flow.params["code_challenge"] = challenge
    response = client.get(flow.url)
    assert response.status_code == 302
    answer = query_of(response["Location"])
    assert response["Location"].startswith(REDIRECT)
    assert answer["error"] == "invalid_request"
    assert answer["state"] == flow.state


@pytest.mark.parametrize("challenge", ["a" * 43, "A-._~" * 25 + "abc"])
def test_a_code_challenge_within_rfc_7636_is_accepted(client, service, challenge):
    flow = Flow(service)
    flow.params["code_challenge"] = challenge
    response = client.get(flow.url)
    assert response["Location"].startswith("/nl/aanmelden/")


def test_a_request_without_redirect_uri_is_refused_with_the_error_page(client, service):
    flow = Flow(service)
    del flow.params["redirect_uri"]
    response = client.get(flow.url)
    assert response.status_code == 400
    assert "Location" not in response
    assert response.context["error"] == "invalid_request"


@pytest.mark.parametrize("max_age", ["abc", "-1", "1.5", "", " 5", "1e3"])
def test_a_max_age_that_is_no_non_negative_integer_is_refused(client, service, max_age):
    flow = Flow(service, max_age=max_age)
    response = client.get(flow.url)
    assert response.status_code == 302
    assert query_of(response["Location"])["error"] == "invalid_request"


def test_a_wrong_code_verifier_voids_the_code(client, account, service):  # noqa: F811
    flow = Flow(service)
    code = query_of(signed_in_consented(client, account, flow)["Location"])["code"]
    other, _challenge = pkce()
    wrong = flow.token(client, code, verifier=other)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert not Grant.objects.exists()
    right = flow.token(client, code)
    assert right.status_code == 400
    assert right.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()
