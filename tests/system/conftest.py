"""The whole stack of ``make stack`` (deploy/stack.sh) as one system under test.

The stack runs from its own directory (``var/stack-test``: pid files, logs, nginx prefix, TLS),
on free ports, against its own PostgreSQL database (``csam_stack_test_<checkout>``, dropped and
created again at the start) and its own Redis database (``STACK_TEST_REDIS_URL``, default
``redis://127.0.0.1:6379/3``, flushed at the start), with e-mail going over SMTP to an aiosmtpd
sink run by the test. It never touches the ``var/`` of a ``make stack`` running beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop, Django's checks

from tests.browser.conftest import CHROMIUM_ARGS, DEBIAN_CHROMIUM
from tests.smtp import Sink, free_port

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "stack.sh"
VAR = ROOT / "var" / "stack-test"
# One database per checkout, so that two checkouts' suites on one machine do not drop each other's.
DATABASE = "csam_stack_test_" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
PG_SERVER = os.environ.get("STACK_TEST_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("STACK_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")
# What the stack's processes may inherit from the test's environment; everything else (the
# suite's SECRET_KEY, DJANGO_SETTINGS_MODULE=tests.settings, DATABASE_URL, ...) stays out.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")


def _nginx() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
    )


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def why_not() -> str | None:
    """Why the stack cannot run on this machine, or None."""
    if _nginx() is None:
        return "nginx is not installed (make nginx installs Debian's package when root with apt)"
    for tool in ("openssl", "curl", "setsid"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not (ROOT / ".venv" / "bin" / "gunicorn").exists():
        return "no .venv with gunicorn (make install)"
    if not _answers("127.0.0.1", 5432):
        return "no PostgreSQL on 127.0.0.1:5432"
    if not _answers("127.0.0.1", 6379):
        return "no Redis on 127.0.0.1:6379"
    return None


@dataclass
class Stack:
    env: dict[str, str]
    https_port: int
    http_port: int
    app_ports: list[int]
    sink: Sink
    links: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def log_dir(self) -> Path:
        return VAR / "log"

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(STACK), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def manage(self, *args: str) -> str:
        result = self.run("manage", *args)
        assert result.returncode == 0, f"manage.py {args[0]}: {result.stdout}{result.stderr}"
        return result.stdout

    def issue(self, first_name: str, last_name: str, national_number: str, email: str) -> dict:
        """An activation issued as a clerk's script does; its link is remembered for the log
        check."""
        issued = json.loads(
            self.manage(
                "issue_activation",
                "--first-name",
                first_name,
                "--last-name",
                last_name,
                "--national-number",
                national_number,
                "--email",
                email,
                "--office",
                "leuven",
                "--json",
            )
        )
        self.links.append(issued["activation_link"])
        return issued

    def pid(self, name: str) -> int:
        return int((VAR / "run" / f"{name}.pid").read_text().strip())

    def kill_instance(self, name: str) -> None:
        """SIGKILL a gunicorn instance: its master and its workers (the master leads their
        process group), as a crash or the OOM killer would."""
        pid = self.pid(name)
        assert os.getpgid(pid) == pid, f"{name} ({pid}) does not lead its process group"
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _answers("127.0.0.1", self.app_ports[int(name.split("-")[1]) - 1]):
            assert time.monotonic() < deadline, f"{name} still answers after SIGKILL"
            time.sleep(0.05)

    def query(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/{DATABASE}") as connection:
            return connection.execute(sql, params).fetchall()

    def logs(self, lines: int = 40) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
            parts.append(f"--- {path} (last {lines} of {len(text)} lines)")
            parts.extend(text[-lines:])
        return "\n".join(parts)


def unverified_tls() -> ssl.SSLContext:
    """The stack's certificate is self-signed: the test checks the server, not the chain."""
    return ssl._create_unverified_context()  # noqa: S323


def _reset_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def _reset_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL, socket_timeout=5).flushdb()


_CURRENT: list[Stack] = []


@pytest.fixture(scope="module")
def stack():
    reason = why_not()
    if reason:
        pytest.skip(f"the stack cannot run here: {reason}")
    from aiosmtpd.controller import Controller

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    https_port, http_port, app_1, app_2 = (free_port() for _ in range(4))
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.update(
        STACK_VAR_DIR=str(VAR),
        STACK_HTTPS_PORT=str(https_port),
        STACK_HTTP_PORT=str(http_port),
        STACK_APP_PORTS=f"{app_1},{app_2}",
        STACK_START_TIMEOUT="60",
        DATABASE_URL=f"{PG_SERVER}/{DATABASE}",
        REDIS_URL=REDIS_URL,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(controller.port),
        EMAIL_TIMEOUT="5",
    )
    system = Stack(env, https_port, http_port, [app_1, app_2], sink)
    system.run("stop")  # what an interrupted earlier run may have left
    shutil.rmtree(VAR, ignore_errors=True)
    _reset_database()
    _reset_redis()
    try:
        started = system.run("start", timeout=150)
        if started.returncode != 0:
            pytest.fail(
                f"deploy/stack.sh start failed ({started.returncode}):\n{started.stdout}\n"
                f"{started.stderr}\n{system.logs()}",
                pytrace=False,
            )
        system.manage(
            "shell",
            "-c",
            "from keys.models import RegistrationOffice; "
            "RegistrationOffice.objects.get_or_create("
            "code='leuven', defaults={'name': 'Stad Leuven – Burgerzaken'})",
        )
        _CURRENT.append(system)
        yield system
    finally:
        _CURRENT.clear()
        stopped = system.run("stop")
        controller.stop()
        assert stopped.returncode == 0, f"stack.sh stop: {stopped.stdout}{stopped.stderr}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report ends with the tails of the stack's logs."""
    report = yield
    if report.failed and _CURRENT:
        report.sections.append(("stack logs (var/stack-test/log)", _CURRENT[0].logs()))
    return report


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    args = {**browser_type_launch_args, "args": CHROMIUM_ARGS}
    if os.path.exists(DEBIAN_CHROMIUM):
        args["executable_path"] = DEBIAN_CHROMIUM
    return args


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {
        **browser_context_args,
        "locale": "nl-BE",
        "viewport": {"width": 1024, "height": 900},
        "ignore_https_errors": True,  # the stack's self-signed certificate
    }


@pytest.fixture
def page(page):
    page.set_default_timeout(15_000)
    return page
