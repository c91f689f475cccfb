"""The production worker, as real processes: restarted or killed with messages in flight, it
loses none and sends none twice (issue 10 §3).

Each test gets a database of its own (an SQLite file, or a PostgreSQL database when the suite
runs on PostgreSQL), queues messages through the product's outbox, and runs
``manage.py delivery_worker`` against a real SMTP server (aiosmtpd) that takes its time before
accepting each message, the way a busy mail server does. Like a real one, it keeps a message only
if it could answer "250" to the client that sent it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from tests.smtp import free_port

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = 3

QUEUE = """
import django
django.setup()
from django.core.mail import EmailMultiAlternatives
from keys import delivery
for n in range({count}):
    message = EmailMultiAlternatives(
        subject=f"Message {{n}}", body="Hello", from_email="noreply@example.be",
        to=[f"citizen{{n}}@example.be"],
    )
    delivery.queue_email(message, purpose="test")
"""

STATUSES = """
import django
django.setup()
from keys.models import OutboundMessage
print(sorted(OutboundMessage.objects.values_list("status", flat=True)))
"""


class SlowMailServer:
    """Accepts each message ``delay`` seconds after its data arrived, if the client still
    listens; records the Message-IDs it accepted and when a message started arriving."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.accepted: list[str] = []
        self.arriving = threading.Event()
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        self.arriving.set()
        await asyncio.sleep(self.delay)
        if server.transport is None or server.transport.is_closing():
            return "451 Client went away"  # never acknowledged: not accepted
        message_id = next(
            (
                line.split(":", 1)[1].strip()
                for line in envelope.content.decode().splitlines()
                if line.lower().startswith("message-id:")
            ),
            "",
        )
        with self._lock:
            self.accepted.append(message_id)
        return "250 Accepted"

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.accepted) >= count:
                    return
            time.sleep(0.1)
        raise AssertionError(f"only {len(self.accepted)} of {count} messages arrived")


@pytest.fixture
def mail_server():
    server = SlowMailServer(delay=1.5)
    controller = Controller(server, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield server, controller.port
    finally:
        controller.stop()


@pytest.fixture
def database_url(tmp_path):
    """A database of the test's own, empty and migrated."""
    if connection.vendor == "postgresql":
        base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        name = f"csam_worker_{uuid.uuid4().hex[:8]}"
        subprocess.run(
            ["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True, timeout=30
        )
        url = f"{base}/{name}"
    else:
        name, url = None, f"sqlite:///{tmp_path / 'worker.sqlite3'}"
    yield url
    if name:
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", name],
            check=False,
            timeout=30,
        )


def environment(database_url: str, smtp_port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url,
            "TASKS_BACKEND": "database",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "EMAIL_TIMEOUT": "5",
            "CSAM_DELIVERY_CLAIM_TIMEOUT": "4",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def python(env: dict[str, str], code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "delivery_worker",
            "--sweep-interval",
            "0.5",
            "--interval",
            "0.2",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGKILL], ids=["restarted", "killed-mid-send"]
)
def test_a_worker_stopped_with_messages_in_flight_loses_none_and_sends_none_twice(
    mail_server, database_url, tmp_path, sig
):
    server, port = mail_server
    env = environment(database_url, port)
    manage(env, "migrate", "--verbosity", "0")
    python(env, QUEUE.format(count=MESSAGES))
    log = tmp_path / "worker.log"

    first = start_worker(env, log)
    try:
        assert server.arriving.wait(30), log.read_text()
        stop(first, sig)  # a message is on the wire right now
    finally:
        stop(first, signal.SIGKILL)
    if sig == signal.SIGKILL:
        assert not server.accepted  # the first one never got its "250"
    second = start_worker(env, log)
    try:
        server.wait_for(MESSAGES, timeout=60)
        time.sleep(2.5)  # room for a duplicate to show up, if one were coming
    finally:
        stop(second, signal.SIGTERM)

    assert len(server.accepted) == MESSAGES, (server.accepted, log.read_text())
    assert len(set(server.accepted)) == MESSAGES
    assert python(env, STATUSES) == str(["sent"] * MESSAGES)
