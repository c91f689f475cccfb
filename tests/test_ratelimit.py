"""Rate limits per IP and per activation on every endpoint that checks a secret."""

from datetime import timedelta

import pytest
from django.core.cache import caches
from django.test import override_settings
from django.utils import timezone

from keys import ratelimit
from keys.conf import DEFAULTS
from keys.models import AuditEvent
from keys.services import issuance
from tests.wizard_helpers import open_link, post_step, step_url


def small_limits(**overrides):
    table = dict(DEFAULTS["RATE_LIMITS"])
    table.update(overrides)
    return override_settings(CSAM={"RATE_LIMITS": table})


@pytest.fixture
def issued(citizen, clerk):
    return issuance.issue_activation(citizen, issued_by=clerk)


def test_link_per_ip_boundary(client, db, time_machine):
    start = timezone.now()
    time_machine.move_to(start.replace(second=0, microsecond=0), tick=False)
    with small_limits(**{"link:ip": (3, timedelta(minutes=10))}):
        for _ in range(3):
            assert client.get("/nl/activeren/guess/").status_code == 404
        response = client.get("/nl/activeren/guess/")
        assert response.status_code == 429
        assert int(response["Retry-After"]) > 0
        assert AuditEvent.objects.filter(action="rate_limited").count() == 1
        # another address is not affected
        assert client.get("/nl/activeren/guess/", REMOTE_ADDR="192.0.2.7").status_code == 404
        time_machine.move_to(
            start.replace(second=0, microsecond=0) + timedelta(minutes=10), tick=False
        )
        assert client.get("/nl/activeren/guess/").status_code == 404


def test_code_per_activation_across_addresses(client, issued, time_machine):
    time_machine.move_to(timezone.now(), tick=False)  # all in one window
    with small_limits(**{"code:activation": (2, timedelta(minutes=10))}):
        open_link(client, issued.activation_link)
        for ip in ["192.0.2.1", "192.0.2.2"]:
            response = post_step(client, "code", {"activation_code": "ZZZZZ-ZZZZY"}, REMOTE_ADDR=ip)
            assert response.status_code == 200
        response = post_step(
            client, "code", {"activation_code": issued.formatted_code}, REMOTE_ADDR="192.0.2.3"
        )
        assert response.status_code == 429
        assert "minu" in response.content.decode()  # minuut, minuten
        assert int(response["Retry-After"]) > 0


def test_verify_and_resend_are_limited(client, issued, time_machine):
    time_machine.move_to(timezone.now(), tick=False)  # all in one window
    with small_limits(
        **{"verify:key": (1, timedelta(minutes=10)), "resend:ip": (1, timedelta(minutes=10))}
    ):
        open_link(client, issued.activation_link)
        post_step(client, "code", {"activation_code": issued.formatted_code})
        post_step(client, "key", {"kind": "email", "accept_terms": "on"})
        post_step(
            client,
            "account",
            {
                "username": "jan.peeters",
                "password": "Correct-Horse-9x",
                "password_confirm": "Correct-Horse-9x",
            },
        )
        assert post_step(client, "verify", {"code": "000000"}).status_code == 200
        assert post_step(client, "verify", {"code": "000001"}).status_code == 429
        assert post_step(client, "verify", {"resend": "1"}).status_code == 302
        assert post_step(client, "verify", {"resend": "1"}).status_code == 429
        # the page itself (a GET) still works: progress is kept
        assert client.get(step_url("verify")).status_code == 200


def test_limiter_with_redis(settings):
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
            "KEY_PREFIX": f"csam-test-{timezone.now().timestamp()}",
        }
    }
    caches["default"].clear()
    with small_limits(**{"link:ip": (2, timedelta(minutes=1))}):
        results = [ratelimit.hit("link:ip", "198.51.100.1").allowed for _ in range(3)]
    assert results == [True, True, False]
    caches["default"].clear()
