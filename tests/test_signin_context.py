"""What a sign-in leaves for a service asking how the citizen signed in: levels per kind of key,
the session's authentication record (``amr``, ``acr``, time) and the way back (``next``)."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from keys.digital_keys import KINDS, LEVELS, level_of
from keys.services.signin import AUTH_SESSION_KEY
from tests.test_signin import account, add_key, sign_in  # noqa: F401  (fixture)


def test_every_kind_has_a_level_and_the_setting_overrides_it(settings):
    assert {level_of(kind) for kind in KINDS} <= set(LEVELS)
    assert level_of("email") == "substantial"
    settings.DIGITAL_KEY_LEVELS = {"email": "low"}
    assert level_of("email") == "low"
    assert level_of("sms") == "substantial"
    settings.DIGITAL_KEY_LEVELS = {"email": "very high"}
    with pytest.raises(ImproperlyConfigured):
        level_of("email")


@pytest.mark.parametrize(("kind", "amr"), [("email", "email"), ("sms", "sms"), ("totp", "otp")])
def test_a_sign_in_records_how_it_was_made(client, account, kind, amr):  # noqa: F811
    if kind != "email":
        add_key(account, kind)
    sign_in(client, account, kind)
    record = client.session[AUTH_SESSION_KEY]
    assert record["user_id"] == account.pk
    assert record["amr"] == ["pwd", amr]
    assert record["acr"] == "substantial"
    assert record["at"] > 0


def test_next_brings_the_citizen_back_after_signing_in(client, account):  # noqa: F811
    client.get("/nl/aanmelden/?next=/nl/mijn-sleutels/?from=service")
    response = sign_in(client, account)
    assert response["Location"] == "/nl/mijn-sleutels/?from=service"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:x"])
def test_next_never_leaves_the_site(client, account, target):  # noqa: F811
    client.get("/nl/aanmelden/", {"next": target})
    response = sign_in(client, account)
    assert response["Location"] == "/nl/mijn-sleutels/"
