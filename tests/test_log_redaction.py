"""The activation link's token never reaches a log the application controls.

``/nl/activeren/<token>/`` is redacted to ``/nl/activeren/[redacted]/`` in runserver's request
log (``django.server``), in Django's request errors (``django.request``, 404 and 500, with the
traceback), in any record reaching the root handler, and in gunicorn's access and error logs.
"""

import datetime
import io
import logging
import os
import runpy
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.servers.basehttp import WSGIRequestHandler
from django.urls import reverse
from django.utils import translation

from keys.logging import REDACTED, RedactLinkTokens, contains_link_token, redact

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "csam_activation" / "gunicorn.conf.py"


def new_token() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def token():
    return new_token()


def captured(handler: logging.Handler):
    """Swap a configured stream handler's stream for a buffer (its filters and formatter stay)."""

    class Capture:
        def __enter__(self):
            self.buffer = io.StringIO()
            self.previous = handler.setStream(self.buffer)
            return self.buffer

        def __exit__(self, *exc):
            handler.setStream(self.previous)

    return Capture()


def configured_handler(logger_name: str) -> logging.StreamHandler:
    """The handler LOGGING put on ``logger_name`` (pytest adds its own to the root)."""
    for handler in logging.getLogger(logger_name).handlers:
        if any(isinstance(f, RedactLinkTokens) for f in handler.filters):
            return handler
    raise AssertionError(f"no redacting handler on {logger_name or 'root'}")


class TestRedact:
    def test_paths_urls_and_request_lines(self, token):
        assert redact(f"/nl/activeren/{token}/") == "/nl/activeren/[redacted]/"
        assert (
            redact(f"GET /fr/activeren/{token}/?utm=mail HTTP/1.1")
            == "GET /fr/activeren/[redacted]/?utm=mail HTTP/1.1"
        )
        assert redact(f"https://sleutels.example.be/de/activeren/{token}") == (
            "https://sleutels.example.be/de/activeren/[redacted]"
        )
        assert redact(f"next=%2Fnl%2Factiveren%2F{token}%2F") == (
            "next=%2Fnl%2Factiveren%2F[redacted]%2F"
        )
        assert redact(f'"/en/activeren/{token}" x') == '"/en/activeren/[redacted]" x'

    def test_leaves_everything_else(self):
        for text in ["/nl/activatie/code/", "/nl/activeren/", "activeren", "GET /nl/ HTTP/1.1"]:
            assert redact(text) == text
            assert not contains_link_token(text)

    def test_idempotent(self, token):
        once = redact(f"/nl/activeren/{token}/")
        assert redact(once) == once
        assert not contains_link_token(once)
        assert contains_link_token(f"/nl/activeren/{token}/")

    @pytest.mark.parametrize("language", ["nl", "fr", "de", "en"])
    def test_the_routed_link_is_what_is_redacted(self, token, language):
        """If the link's URL changes, keys.logging.LINK_PATH_SEGMENTS must change with it."""
        with translation.override(language):
            path = reverse("keys:activation-link", kwargs={"token": token})
        assert token in path
        assert token not in redact(path)
        assert redact(path).endswith(f"/{REDACTED}/")


class TestFilter:
    def record(self, msg, args=(), exc_info=None) -> logging.LogRecord:
        return logging.LogRecord("x", logging.INFO, __file__, 1, msg, args, exc_info)

    def test_tuple_dict_and_object_args(self, token):
        for msg, args in [
            ('"%s" %s %s', (f"GET /nl/activeren/{token}/ HTTP/1.1", "302", "0")),
            ("%(r)s %(s)s", {"r": f"GET /nl/activeren/{token}/ HTTP/1.1", "s": "302"}),
            (f"plain /nl/activeren/{token}/", ()),
        ]:
            record = self.record(msg, args)
            assert RedactLinkTokens().filter(record) is True
            assert token not in record.getMessage()

    def test_object_whose_text_holds_the_token(self, token):
        class Path:
            def __str__(self):
                return f"/nl/activeren/{token}/"

        record = self.record("Not Found: %s", (Path(),))
        RedactLinkTokens().filter(record)
        assert record.getMessage() == "Not Found: /nl/activeren/[redacted]/"

    def test_args_that_do_not_fit_the_format(self, token):
        record = self.record("%s %s", (f"/nl/activeren/{token}/",))
        RedactLinkTokens().filter(record)
        assert token not in str(record.msg) + str(record.args)

    def test_traceback_and_stack(self, token):
        try:
            raise ValueError(f"bad /nl/activeren/{token}/")
        except ValueError:
            record = self.record("boom", exc_info=sys.exc_info())
        record.stack_info = f"Stack: /nl/activeren/{token}/"
        RedactLinkTokens().filter(record)
        text = logging.Formatter().format(record)
        assert "ValueError: bad /nl/activeren/[redacted]/" in text
        assert token not in text


class TestDjangoLogs:
    def test_runserver_request_log(self, token):
        """What runserver's handler logs for each request, through the configured handler."""
        fake_handler = SimpleNamespace(
            request=None, log_date_time_string=lambda: "01/Jan/2026 12:00:00"
        )
        with captured(configured_handler("django.server")) as out:
            WSGIRequestHandler.log_message(
                fake_handler, '"%s" %s %s', f"GET /nl/activeren/{token}/ HTTP/1.1", "302", "0"
            )
        assert '"GET /nl/activeren/[redacted]/ HTTP/1.1" 302 0' in out.getvalue()
        assert token not in out.getvalue()

    def test_not_found(self, client, db, token, caplog):
        with captured(configured_handler("")) as out, caplog.at_level(logging.WARNING):
            response = client.get(f"/nl/activeren/{token}/")
            client.get(f"/nl/nergens/activeren/{token}/")
        assert response.status_code == 404
        assert "/nl/activeren/[redacted]/" in out.getvalue()
        assert "Not Found: /nl/nergens/activeren/[redacted]/" in caplog.text
        assert token not in out.getvalue() + caplog.text

    def test_server_error_with_traceback(self, client, db, token, caplog, monkeypatch):
        from keys.services import activation as flow

        def broken(value):
            raise RuntimeError(f"cannot look up /nl/activeren/{value}/")

        monkeypatch.setattr(flow, "find_by_token", broken)
        client.raise_request_exception = False
        with captured(configured_handler("")) as out, caplog.at_level(logging.ERROR):
            response = client.get(f"/nl/activeren/{token}/")
        assert response.status_code == 500
        text = out.getvalue()
        assert "Internal Server Error: /nl/activeren/[redacted]/" in text
        assert "RuntimeError: cannot look up /nl/activeren/[redacted]/" in text
        assert token not in text + caplog.text

    def test_any_logger_through_the_root_handler(self, token):
        with captured(configured_handler("")) as out:
            logging.getLogger("keys.anything").warning("opened %s", f"/nl/activeren/{token}/")
        assert "opened /nl/activeren/[redacted]/" in out.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, **headers: str) -> int:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - a local http URL
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_until_up(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"server did not start:\n{log.read_text()}")


def server_env(tmp_path: Path) -> dict:
    """A served application on an empty SQLite file: the link's view fails with a 500 (no
    tables), so one request exercises the request log, the error log and a traceback."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DEBUG": "true",
        "SECRET_KEY": "log-redaction-test-key-0123456789-abcdefghijklmnop",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "ALLOWED_HOSTS": "127.0.0.1",
        "PYTHONPATH": str(ROOT),
    }


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_runserver_logs_no_token(tmp_path, token):
    port = free_port()
    log = tmp_path / "runserver.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=server_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(process, port, log)
        assert get(f"http://127.0.0.1:{port}/nl/activeren/{token}/?from=mail") == 500
        assert get(f"http://127.0.0.1:{port}/nl/nergens/") == 404
    finally:
        stop(process)
    text = log.read_text()
    assert '"GET /nl/activeren/[redacted]/?from=mail HTTP/1.1" 500' in text
    assert "Internal Server Error: /nl/activeren/[redacted]/" in text
    assert token not in text


def close_handlers(logger) -> None:
    for log in (logger.access_log, logger.error_log):
        for handler in list(log.handlers):
            log.removeHandler(handler)
            handler.close()


def start_gunicorn(port: int, env: dict, *options: str, access_log: Path) -> subprocess.Popen:
    """gunicorn with the project's configuration file, one worker, the access log in a file."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(GUNICORN_CONF),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            str(access_log),
            *options,
            "csam_activation.wsgi",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class TestGunicorn:
    def test_access_and_error_logs_of_a_served_request(self, tmp_path, token):
        port = free_port()
        access, errors = tmp_path / "access.log", tmp_path / "error.log"
        process = start_gunicorn(
            port,
            server_env(tmp_path),
            "--error-logfile",
            str(errors),
            "--capture-output",
            access_log=access,
        )
        referer_token = new_token()
        try:
            wait_until_up(process, port, errors)
            url = f"http://127.0.0.1:{port}/nl/activeren/{token}/?from=mail"
            referer = f"http://127.0.0.1/fr/activeren/{referer_token}/"
            assert get(url, Referer=referer) == 500
        finally:
            stop(process)
        access_log, error_log = access.read_text(), errors.read_text()
        assert '"GET /nl/activeren/[redacted]/?from=mail HTTP/1.1" 500' in access_log
        assert '"http://127.0.0.1/fr/activeren/[redacted]/"' in access_log
        assert "Internal Server Error: /nl/activeren/[redacted]/" in error_log
        for text in (access_log, error_log):
            assert token not in text
            assert referer_token not in text

    def test_every_atom_of_a_custom_access_format(self, tmp_path, token, request):
        from gunicorn.config import Config

        cfg = Config()
        for name, value in runpy.run_path(str(GUNICORN_CONF)).items():
            if name in cfg.settings:
                cfg.set(name, value)
        access, errors = tmp_path / "access.log", tmp_path / "error.log"
        cfg.set("accesslog", str(access))
        cfg.set("errorlog", str(errors))
        cfg.set(
            "access_log_format",
            "%(r)s|%(U)s|%(f)s|%({raw_uri}e)s|%({referer}i)s|%({location}o)s",
        )
        logger = cfg.logger_class(cfg)
        request.addfinalizer(lambda: close_handlers(logger))
        path = f"/nl/activeren/{token}/"
        environ = {
            "REQUEST_METHOD": "GET",
            "RAW_URI": path,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_REFERER": path,
        }
        http_request = SimpleNamespace(headers=[("REFERER", path)])
        response = SimpleNamespace(status="302 Found", sent=0, headers=[("Location", path)])
        logger.access(response, http_request, environ, datetime.timedelta(milliseconds=5))
        logger.exception("Error handling request %s", path)
        for handler in logger.access_log.handlers + logger.error_log.handlers:
            handler.flush()
        access_log, error_log = access.read_text(), errors.read_text()
        assert access_log.strip() == "|".join(
            ["GET /nl/activeren/[redacted]/ HTTP/1.1"] + ["/nl/activeren/[redacted]/"] * 5
        )
        assert "Error handling request /nl/activeren/[redacted]/" in error_log
        assert token not in access_log + error_log


def test_gunicorn_writes_json_lines_with_the_request_id_when_asked(tmp_path, token):
    """``LOG_FORMAT=json``: gunicorn's own access lines are JSON too, redacted, with the id."""
    import json

    port = free_port()
    access = tmp_path / "access.log"
    env = {**server_env(tmp_path), "LOG_FORMAT": "json"}
    process = start_gunicorn(port, env, access_log=access)
    try:
        wait_until_up(process, port, access)
        assert get(f"http://127.0.0.1:{port}/healthz", **{"X-Request-ID": "req-0123456789"}) == 200
        assert get(f"http://127.0.0.1:{port}/nl/activeren/{token}/") == 500
    finally:
        stop(process)
    lines = [json.loads(line) for line in access.read_text().splitlines() if line.strip()]
    assert {line["logger"] for line in lines} == {"gunicorn.access"}
    health = next(line for line in lines if "/healthz" in line["message"])
    assert health["request_id"] == "req-0123456789"
    assert any("/nl/activeren/[redacted]/" in line["message"] for line in lines)
    assert token not in access.read_text()


def test_the_worker_freezes_what_it_loaded(request):
    """gunicorn takes the configuration's post_worker_init hook, which moves everything alive
    once the application is loaded out of the collector's full collections (gc.freeze)."""
    import gc

    from gunicorn.config import Config

    cfg = Config()
    for name, value in runpy.run_path(str(GUNICORN_CONF)).items():
        if name in cfg.settings:
            cfg.set(name, value)
    assert cfg.post_worker_init.__module__ != "gunicorn.config"  # ours, not the default
    request.addfinalizer(gc.unfreeze)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    cfg.post_worker_init(object())
    assert gc.get_freeze_count() > 10_000
