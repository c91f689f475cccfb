"""Browser tests: Playwright drives Chromium against pytest-django's live server.

E-mail goes over real SMTP to an aiosmtpd sink; SMS go to the filebased backend.
"""

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from tests.smtp import smtp_sink, text_of  # noqa: F401 - fixtures for the browser tests

DEBIAN_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    args = {**browser_type_launch_args, "args": CHROMIUM_ARGS}
    if os.path.exists(DEBIAN_CHROMIUM):
        args["executable_path"] = DEBIAN_CHROMIUM
    return args


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "nl-BE", "viewport": {"width": 1024, "height": 900}}


@pytest.fixture
def sms_dir(settings, tmp_path):
    directory = tmp_path / "sms"
    settings.SMS_BACKEND = "filebased"
    settings.SMS_FILE_PATH = str(directory)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def latest_sms(directory: Path, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(directory.glob("*.json")) if directory.exists() else []
        if files:
            return json.loads(files[-1].read_text())
        time.sleep(0.05)
    raise AssertionError("no SMS file was written")


def six_digits(text: str) -> str:
    return re.search(r"\b(\d{6})\b", text).group(1)


@pytest.fixture
def page(page):
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def site(live_server, settings):
    settings.SITE_URL = live_server.url
    return live_server


@pytest.fixture(scope="session", autouse=True)
def _no_link_token_in_any_log(tmp_path_factory):
    """Every log record of the browser session is written to a file, as the configured handlers
    leave it (the capture handler comes after them on the root logger and on django.server); at
    the end the file must hold neither a link token issued during the session nor any
    ``/activeren/<token>`` or OpenID Connect ``code=``/``id_token_hint=`` that is not
    ``[redacted]`` (keys/logging.py)."""
    import logging

    from keys import tokens
    from keys.logging import contains_secret

    log_file = tmp_path_factory.mktemp("browser-logs") / "session.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    loggers = [logging.getLogger(), logging.getLogger("django.server")]  # django.server does
    # not propagate; every other logger reaches the root
    issued: list[str] = []
    generate = tokens.generate_link_token

    def recording_generate() -> str:
        token = generate()
        issued.append(token)
        return token

    tokens.generate_link_token = recording_generate
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield log_file
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()
        tokens.generate_link_token = generate
    text = log_file.read_text(encoding="utf-8")
    leaked = [token for token in issued if token in text]
    assert not leaked, f"{len(leaked)} activation link token(s) in the logs: {log_file}"
    assert not contains_secret(text), (
        f"an unredacted /activeren/ path or OpenID Connect secret in the logs: {log_file}"
    )
