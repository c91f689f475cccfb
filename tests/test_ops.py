"""Operating the service (ops/): probes, request ids, JSON logs without secrets, metrics."""

import copy
import io
import json
import logging
import logging.config
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import OperationalError, connections
from django.test import override_settings
from django.utils import timezone
from prometheus_client import REGISTRY

from keys import delivery
from keys.models import DigitalKey
from keys.services import issuance
from ops import metrics
from tests.test_issuance import FAILING_MAILERS
from tests.test_settings import PRODUCTION, ROOT
from tests.wizard_helpers import last_email_code, open_link, post_step

PASSWORD = "Correct-Horse-9x"


def no_session_touched(response) -> None:
    assert not response.cookies, response.cookies  # no Set-Cookie at all
    assert not response.wsgi_request.session.accessed
    assert "Cookie" not in response.get("Vary", "")


# --- health and readiness -----------------------------------------------------------------


def test_healthz_answers_without_database_session_or_language(client):
    response = client.get("/healthz")  # without the db fixture: a query would raise
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert "no-store" in response["Cache-Control"]
    no_session_touched(response)
    assert client.get("/nl/healthz").status_code == 404  # outside the language prefix


def test_probes_are_not_redirected_to_https(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True  # as in production; a probe asks gunicorn over HTTP
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/nl/").status_code == 301  # everything else still is


def test_readyz_ok(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "failed": [],
        "checks": {"database": "ok", "cache": "ok"},
    }
    assert "no-store" in response["Cache-Control"]
    no_session_touched(response)


def test_readyz_names_a_cache_that_does_not_answer(client, db):
    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://:cache-password-123@127.0.0.1:1/0",
        }
    }
    with override_settings(CACHES=unreachable):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["cache"]
    assert response.json()["checks"] == {"database": "ok", "cache": "failed"}
    body = response.content.decode()
    assert "127.0.0.1" not in body and "password" not in body and "Error" not in body
    assert "no-store" in response["Cache-Control"]


def test_readyz_names_a_database_that_does_not_answer(client, db, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError('connection to server at "db.internal" failed: password for csam')

    with monkeypatch.context() as patched:
        patched.setattr(connections["default"], "cursor", down)
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failed": ["database"],
        "checks": {"database": "failed", "cache": "ok"},
    }
    assert "db.internal" not in response.content.decode()
    no_session_touched(response)


# --- request ids --------------------------------------------------------------------------


def test_a_well_formed_request_id_is_kept_and_returned(client):
    nginx_id = "0123456789abcdef0123456789abcdef"
    response = client.get("/healthz", headers={"X-Request-ID": nginx_id})
    assert response["X-Request-ID"] == nginx_id
    assert response.wsgi_request.request_id == nginx_id


@pytest.mark.parametrize(
    "bad", ["", "short", "has spaces in it", "x" * 65, "abcdefgh\n{json}", "ümlautsümlauts"]
)
def test_a_malformed_request_id_is_replaced(client, bad):
    response = client.get("/healthz", headers={"X-Request-ID": bad} if bad else {})
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert response["X-Request-ID"] != bad
    # a new one for every request
    assert client.get("/healthz")["X-Request-ID"] != response["X-Request-ID"]


# --- structured logs ----------------------------------------------------------------------


@contextmanager
def json_logs(level: str = "DEBUG"):
    """The project's LOGGING as LOG_FORMAT=json makes it, writing to a buffer."""
    config = copy.deepcopy(django_settings.LOGGING)
    buffer = io.StringIO()
    for name, handler in config["handlers"].items():
        handler["formatter"] = "json"
        handler["stream"] = buffer
        assert "redact_link_tokens" in handler["filters"], name
        assert "mask_personal_data" in handler["filters"], name
    config["root"]["level"] = level
    logging.config.dictConfig(config)
    try:
        yield buffer
    finally:
        logging.config.dictConfig(django_settings.LOGGING)


def json_lines(buffer: io.StringIO) -> list[dict]:
    lines = buffer.getvalue().splitlines()
    return [json.loads(line) for line in lines]  # every line one JSON object


def test_json_log_line_shape_with_the_request_id(client, db):
    with json_logs() as buffer:
        response = client.get(
            "/nl/activeren/SomeToken123abc/", headers={"X-Request-ID": "req-id-from-nginx-1"}
        )
        logging.getLogger("keys.test").info("outside a request")
    assert response.status_code == 404
    entries = json_lines(buffer)
    not_found = next(e for e in entries if e["logger"] == "django.request")
    assert set(not_found) == {"time", "level", "logger", "message", "request_id"}
    assert not_found["level"] == "WARNING"
    assert not_found["request_id"] == "req-id-from-nginx-1"
    assert not_found["message"] == "Not Found: /nl/activeren/[redacted]/"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", not_found["time"])
    assert entries[-1]["message"] == "outside a request"
    assert entries[-1]["request_id"] is None  # the request was over


def test_json_log_masks_addresses_and_carries_the_exception(db):
    logger = logging.getLogger("keys.delivery")
    with json_logs() as buffer:
        try:
            raise RuntimeError("550 mailbox jan.peeters@example.be is full")
        except RuntimeError:
            logger.exception("Sending to %s (%s) failed", "jan.peeters@example.be", "+32470123456")
    (entry,) = json_lines(buffer)
    assert entry["message"] == "Sending to ja…@example.be (+32…56) failed"
    assert "RuntimeError: 550 mailbox ja…@example.be is full" in entry["exception"]
    assert "jan.peeters@example.be" not in buffer.getvalue()
    assert "470123456" not in buffer.getvalue()


def test_log_format_json_is_wired_for_management_commands():
    code = (
        "import logging; logging.getLogger('keys.delivery').warning("
        "'to %s via /nl/activeren/Tok3nTok3nTok3n/', 'jan.peeters@example.be')"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **PRODUCTION, "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    entry = json.loads(line)
    assert entry["logger"] == "keys.delivery"
    assert entry["level"] == "WARNING"
    assert entry["request_id"] is None
    assert entry["message"] == "to ja…@example.be via /nl/activeren/[redacted]/"


class LoggingLocmemBackend(LocmemBackend):
    """The test mail backend, logging each recipient as a careless library might."""

    def send_messages(self, messages):
        for message in messages:
            logging.getLogger("tests.mail").info("Sending %r to %s", message.subject, message.to)
        return super().send_messages(messages)


def test_no_secret_in_the_json_log_of_a_full_activation(client, citizen, clerk, settings):
    settings.MAILERS = {"default": {"BACKEND": "tests.test_ops.LoggingLocmemBackend"}}
    with json_logs() as buffer:
        issued = issuance.issue_activation(citizen, issued_by=clerk)
        token = issued.activation_link.rstrip("/").rsplit("/", 1)[1]
        client.get(f"/nl/activeren/{token}x/")  # a mistyped link: Django logs "Not Found"
        open_link(client, issued.activation_link)
        post_step(client, "code", {"activation_code": issued.formatted_code})
        post_step(client, "key", {"kind": "email", "accept_terms": "on"})
        post_step(
            client,
            "account",
            {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
        )
        email_code = last_email_code()
        post_step(client, "verify", {"code": "000000" if email_code != "000000" else "111111"})
        post_step(client, "verify", {"code": email_code})
        post_step(client, "activated", {"next_action": "done"})
    assert DigitalKey.objects.filter(state="active").count() == 1
    assert len(mail.outbox) >= 3

    text = buffer.getvalue()
    entries = json_lines(buffer)
    assert any(e["logger"] == "django.request" and e["request_id"] for e in entries)
    assert all(line.isascii() for line in text.splitlines())  # whatever the stream's encoding
    mailed = [e["message"] for e in entries if e["logger"] == "tests.mail"]
    assert len(mailed) == len(mail.outbox)
    assert all("['ja…@example.be']" in message for message in mailed)  # masked, not dropped
    for name, secret in {
        "e-mail address": citizen.email,
        "link token": token,
        "paper code": issued.activation_code,
        "paper code as printed": issued.formatted_code,
        "e-mail code": email_code,
        "password": PASSWORD,
        "phone": citizen.phone,
    }.items():
        assert secret not in text, f"{name} in the log"
        assert all(secret not in str(value) for e in entries for value in e.values()), name


# --- metrics ------------------------------------------------------------------------------


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    "meta",
    [
        {"REMOTE_ADDR": "192.0.2.1"},
        {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1"},  # spoofed
        {"REMOTE_ADDR": "2001:db8::1"},
    ],
)
def test_metrics_are_not_found_from_other_addresses(client, db, meta):
    response = client.get("/metrics", **meta)
    assert response.status_code == 404
    assert b"csam_" not in response.content
    assert not response.cookies


def test_metrics_are_not_served_through_the_public_proxy(client, db, settings):
    # nginx on loopback is a trusted proxy; the citizen behind it is not allowed
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 404
    # Prometheus on the same host, straight to gunicorn
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_metrics_allowed_is_a_setting(client, db, settings):
    settings.METRICS_ALLOWED = ["10.1.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404


def test_metrics_after_a_wizard_request(client, citizen, clerk):
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    token = issued.activation_link.rstrip("/").rsplit("/", 1)[1]
    before = sample(
        "csam_http_requests_total", view="keys:activation-link", method="GET", status="302"
    )
    assert open_link(client, issued.activation_link).status_code == 302

    for remote in ("127.0.0.1", "::1"):
        response = client.get("/metrics", REMOTE_ADDR=remote)
        assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "no-store" in response["Cache-Control"]
    no_session_touched(response)
    text = response.content.decode()
    for name in (
        'csam_http_requests_total{method="GET",status="302",view="keys:activation-link"}',
        'csam_http_request_duration_seconds_bucket{le="0.005",method="GET",view="keys:'
        'activation-link"}',
        'csam_activations_total{event="issued"}',
        'csam_activations_total{event="opened"}',
        'csam_audit_events_total{action="link_opened"}',
        'csam_deliveries_total{channel="email",outcome="queued"}',
        'csam_deliveries_total{channel="email",outcome="sent"}',
        'csam_outbox_messages{channel="email",status="pending"}',
    ):
        assert name in text, name
    assert token not in text and "activeren" not in text  # views by name, never a path
    after = sample(
        "csam_http_requests_total", view="keys:activation-link", method="GET", status="302"
    )
    assert after == before + 1


def test_activation_code_and_rate_limit_metrics(client, citizen, clerk, settings, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    counted = {
        "issued": ("csam_activations_total", {"event": "issued"}),
        "opened": ("csam_activations_total", {"event": "opened"}),
        "completed": ("csam_activations_total", {"event": "completed"}),
        "code sent": ("csam_codes_total", {"kind": "email", "outcome": "sent"}),
        "code rejected": ("csam_codes_total", {"kind": "email", "outcome": "rejected"}),
        "rate limited": ("csam_rate_limited_total", {"scope": "link:ip"}),
    }
    before = {key: sample(name, **labels) for key, (name, labels) in counted.items()}

    issued = issuance.issue_activation(citizen, issued_by=clerk)
    open_link(client, issued.activation_link)
    post_step(client, "code", {"activation_code": issued.formatted_code})
    post_step(client, "key", {"kind": "email", "accept_terms": "on"})
    post_step(
        client,
        "account",
        {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    email_code = last_email_code()
    post_step(client, "verify", {"code": "000000" if email_code != "000000" else "111111"})
    post_step(client, "verify", {"code": email_code})
    from keys.conf import DEFAULTS

    settings.CSAM = {
        "RATE_LIMITS": {**DEFAULTS["RATE_LIMITS"], "link:ip": (1, timedelta(minutes=10))}
    }
    assert client.get("/nl/activeren/guess/", REMOTE_ADDR="192.0.2.99").status_code == 404
    assert client.get("/nl/activeren/guess/", REMOTE_ADDR="192.0.2.99").status_code == 429

    after = {key: sample(name, **labels) for key, (name, labels) in counted.items()}
    assert {key: after[key] - before[key] for key in counted} == dict.fromkeys(counted, 1.0)


def test_delivery_metrics_retried_and_dead(settings, citizen, clerk, time_machine):
    settings.MAILERS = FAILING_MAILERS
    settings.CSAM = {"DELIVERY_MAX_ATTEMPTS": 2}
    time_machine.move_to(timezone.now(), tick=False)
    outcomes = ("queued", "retried", "dead", "sent")
    before = {o: sample("csam_deliveries_total", channel="email", outcome=o) for o in outcomes}

    issuance.issue_activation(citizen, issued_by=clerk)  # queued, first attempt fails
    time_machine.shift(timedelta(minutes=5))
    assert delivery.retry_due() == 1  # second and last attempt fails: given up

    after = {o: sample("csam_deliveries_total", channel="email", outcome=o) for o in outcomes}
    assert {o: after[o] - before[o] for o in outcomes} == {
        "queued": 1,
        "retried": 1,
        "dead": 1,
        "sent": 0,
    }


def test_metrics_never_break_the_audit_trail(monkeypatch, citizen, clerk):
    def broken(*args, **kwargs):
        raise OSError("multiprocess directory is gone")

    monkeypatch.setattr(metrics.AUDIT_EVENTS, "labels", broken)
    issued = issuance.issue_activation(citizen, issued_by=clerk)  # audited, counted: no error
    assert issued.activation.pk


def test_multiprocess_mode_adds_up_every_process(tmp_path):
    """Two processes count into PROMETHEUS_MULTIPROC_DIR; a third serves the sum."""
    count = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'csam_activation.settings';"
        "django.setup(); from ops import metrics;"
        "metrics.count_event('activation_issued', {})"
    )
    render = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'csam_activation.settings';"
        "django.setup(); from ops import metrics; print(metrics.render().decode())"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        **PRODUCTION,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], cwd=ROOT, env=env, check=True, timeout=60)
    assert len(list((tmp_path / "prometheus").glob("counter_*.db"))) == 2
    result = subprocess.run(
        [sys.executable, "-c", render], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert 'csam_activations_total{event="issued"} 2.0' in result.stdout, result.stderr


def test_gunicorn_logs_as_json_with_the_request_id(monkeypatch):
    import importlib.util

    from gunicorn.config import Config

    from ops.logging import use_json_for_gunicorn

    path = ROOT / "csam_activation" / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("csam_gunicorn_conf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = Config()
    cfg.set("accesslog", "-")
    glogger = module.RedactingLogger(cfg)
    buffer = io.StringIO()
    for log in (glogger.error_log, glogger.access_log):
        # gunicorn's loggers are process-wide: only this Logger's handler, writing to the buffer
        handler = next(h for h in log.handlers if getattr(h, "_gunicorn", False))
        handler.setStream(buffer)
        monkeypatch.setattr(log, "handlers", [handler])
        monkeypatch.setattr(log, "propagate", False)
        monkeypatch.setattr(log, "filters", list(log.filters))
    use_json_for_gunicorn(glogger)
    use_json_for_gunicorn(glogger)  # gunicorn reopening its logs: nothing doubled
    atoms = {
        "r": "GET /nl/activeren/Tok3nTok3nTok3n/?to=jan.peeters@example.be HTTP/1.1",
        "s": "302",
        "{x-request-id}o": "0123456789abcdef0123456789abcdef",
    }
    glogger.access_log.info('"%(r)s" %(s)s', atoms)
    glogger.error_log.warning("Worker for jan.peeters@example.be timed out")
    access, error = json_lines(buffer)
    assert access["logger"] == "gunicorn.access"
    assert access["request_id"] == "0123456789abcdef0123456789abcdef"
    assert access["message"] == '"GET /nl/activeren/[redacted]/?to=ja…@example.be HTTP/1.1" 302'
    assert error["logger"] == "gunicorn.error"
    assert error["message"] == "Worker for ja…@example.be timed out"
    assert error["request_id"] is None
