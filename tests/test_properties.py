"""Property-based tests: arbitrary, forged and malformed posts never break the wizard.

Whatever is posted to whichever step (forged management fields, later steps' names, missing or
repeated fields, oversized or non-UTF-8 values, look-alike usernames): never a 500, never a step
skipped, never a record changed that should not change.
"""

from urllib.parse import quote_from_bytes

import pytest
from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keys.models import Activation, DigitalKey, User
from keys.services import issuance
from tests.wizard_helpers import open_link, post_step, step_url

STEPS = ["code", "key", "account", "verify", "activated", "done", "nonsense"]
FIELD_NAMES = [
    "activation_wizard-current_step",
    "wizard_goto_step",
    "code-activation_code",
    "key-kind",
    "key-phone",
    "key-accept_terms",
    "account-username",
    "account-password",
    "account-password_confirm",
    "verify-code",
    "activated-next_action",
    "resend",
]
VALUES = st.one_of(
    st.sampled_from([*STEPS, "email", "sms", "totp", "on", "another", "done", "1", ""]),
    st.text(max_size=40),
    st.text(min_size=1000, max_size=5000),
    st.from_regex(r"[0-9]{6}", fullmatch=True),
)
POSTS = st.dictionaries(
    st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=20)),
    st.one_of(VALUES, st.lists(VALUES, min_size=2, max_size=3)),
    max_size=8,
)
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def fresh_visit(citizen, clerk) -> tuple[Client, issuance.IssuedActivation]:
    cache.clear()
    client = Client()
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    open_link(client, issued.activation_link)
    return client, issued


@pytest.mark.django_db
@SETTINGS
@given(step=st.sampled_from(STEPS), data=POSTS)
def test_arbitrary_posts_before_the_code(citizen, clerk, step, data):
    client, issued = fresh_visit(citizen, clerk)
    response = client.post(step_url(step), data)
    assert response.status_code in {200, 302, 403, 429}
    activation = Activation.objects.get(pk=issued.activation.pk)
    assert activation.state in {Activation.State.OPENED, Activation.State.LOCKED}
    assert not User.objects.filter(citizen=citizen).exists()
    assert not DigitalKey.objects.exists()
    assert client.session.get("csam_wizard", {}).get("code_verified") in (False, None)
    if response.status_code == 302:
        assert response["Location"] == step_url("code")


@pytest.mark.django_db
@SETTINGS
@given(step=st.sampled_from(STEPS), data=POSTS)
def test_arbitrary_posts_at_the_verification(citizen, clerk, step, data):
    client, issued = fresh_visit(citizen, clerk)
    post_step(client, "code", {"activation_code": issued.formatted_code})
    response = post_step(client, "key", {"kind": "email", "accept_terms": "on"})
    if response["Location"] == step_url("account"):
        # a new account, or a new password for the account of an earlier example
        post_step(
            client,
            "account",
            {
                "username": "jan.peeters",
                "password": "Correct-Horse-9x",
                "password_confirm": "Correct-Horse-9x",
            },
        )
    accounts = User.objects.count()
    response = client.post(step_url(step), data)
    assert response.status_code in {200, 302, 429}
    assert User.objects.count() == accounts
    # a key is active only if a right code was posted, which an arbitrary 6-digit guess is not
    # likely to be; either way at most one e-mail key is active
    assert DigitalKey.objects.filter(kind="email", state="active").count() <= 1
    if response.status_code == 302:
        assert response["Location"] in {
            step_url(s) for s in ["code", "key", "account", "verify", "activated"]
        }


@pytest.mark.django_db
@SETTINGS
@given(raw=st.binary(max_size=300))
def test_non_utf8_bodies(citizen, clerk, raw):
    client, issued = fresh_visit(citizen, clerk)
    body = (
        b"activation_wizard-current_step=code&code-activation_code="
        + quote_from_bytes(raw).encode()
    )
    response = client.post(step_url("code"), body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in {200, 302, 429}
    assert Activation.objects.get(pk=issued.activation.pk).state in {
        Activation.State.OPENED,
        Activation.State.LOCKED,
    }


def choose_username(client, issued, username: str, password: str):
    """Go through the code and key steps and post ``username`` on the account step."""
    post_step(client, "code", {"activation_code": issued.formatted_code})
    post_step(client, "key", {"kind": "email", "accept_terms": "on"})
    data = {"username": username, "password": password, "password_confirm": password}
    return post_step(client, "account", data)


LOOKALIKES = [
    "јаn.peeters",
    "JAN.PEETERS",
    "jan.peeters\u200b",
    "ｊａｎ.ｐｅｅｔｅｒｓ",
    "jan.peeters ",
    "jаn.pееtеrs",
]


@pytest.mark.django_db
@pytest.mark.parametrize("username", LOOKALIKES)
def test_lookalike_usernames_are_refused(client, citizen, clerk, django_user_model, username):
    django_user_model.objects.create_user("jan.peeters", "Other-Pass-1!")
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    open_link(client, issued.activation_link)
    response = choose_username(client, issued, username, "Correct-Horse-9x")
    assert response.status_code == 200
    assert response.context["form"].errors["username"]
    assert User.objects.filter(is_staff=False).count() == 1


@pytest.mark.django_db
@SETTINGS
@given(username=st.text(max_size=80))
def test_any_username_is_refused_or_unique(citizen, clerk, username):
    client, issued = fresh_visit(citizen, clerk)
    response = choose_username(client, issued, username, "Correct-Horse-9x!")
    assert response.status_code in {200, 302}
    canonicals = list(User.objects.values_list("username_canonical", flat=True))
    assert len(canonicals) == len(set(canonicals))
