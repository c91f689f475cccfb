"""Citizens activating at the same time, over real HTTP, through gunicorn.

Run: ``make bench`` or ``.venv/bin/python benchmarks/concurrent_activations.py [options]``.

By default: a fresh SQLite file in a temporary directory (the database the project ships with),
``migrate``, 8 citizens issued an activation, gunicorn with 2 workers started with
``csam_activation/gunicorn.conf.py``, and the 8 citizens walk the whole wizard at once with the
app key (TOTP: link, paper code, key and terms, username and password, app code, done), each
from its own loopback address (127.0.0.2, 127.0.0.3, …) as separate people would. Prints the
completed and failed activations, the errors, the throughput and the latency percentiles, and
exits 1 when any activation failed (a 5xx, an unexpected page, or no account with an active key
in the database afterwards).

Options: ``--citizens N`` (activations in all), ``--concurrency N`` (at once, default: all),
``--workers N`` (gunicorn workers), ``--sqlite-options JSON`` (replace the SQLite ``OPTIONS`` of
the settings, to compare choices; ``'{}'`` is Django's default), ``--json`` (one JSON object).
``DATABASE_URL`` in the environment runs it on that database instead (it is migrated and gets
the activations; use a throw-away one).

The HTTP client (:class:`Browser`, :func:`activate`, :func:`run_activations`) is plain standard
library and is also used by ``tests/test_load.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import http.client
import io
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Correct-Horse-9x"  # noqa: S105 - the benchmark citizens' password


class ActivationFailed(Exception):
    """One citizen's activation went wrong: which request, what status, what the page said."""

    def __init__(self, step: str, status: int, detail: str):
        super().__init__(f"{step}: HTTP {status}: {detail}")
        self.step = step
        self.status = status
        self.detail = detail


@dataclass
class Response:
    status: int
    path: str
    headers: dict[str, str]
    body: str


def error_detail(body: str) -> str:
    """The exception of Django's debug 500 page, or the start of any other page."""
    title = re.search(r"<title>(.*?)</title>", body, re.S)
    value = re.search(r'<pre class="exception_value">(.*?)</pre>', body, re.S)
    if title and value:
        return " ".join(html.unescape(f"{title.group(1)}: {value.group(1)}").split())
    text = re.sub(r"<[^>]+>", " ", body)
    return " ".join(html.unescape(text).split())[:160]


class Browser:
    """A browser without JavaScript: cookies, redirects, CSRF tokens of forms, timings.

    Each request opens its own connection (gunicorn's sync workers close it anyway), from
    ``source_ip`` when given, so a server sees separate people.
    """

    def __init__(self, base_url: str, *, source_ip: str | None = None, timeout: float = 60):
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.source_ip = source_ip
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.csrf_token = ""
        self.timings: list[tuple[str, float]] = []

    def _send(self, method: str, path: str, body: bytes | None, headers: dict) -> Response:
        connection = http.client.HTTPConnection(
            self.host,
            self.port,
            timeout=self.timeout,
            source_address=(self.source_ip, 0) if self.source_ip else None,
        )
        try:
            headers = {"Host": f"{self.host}:{self.port}", "Accept-Language": "nl", **headers}
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            connection.request(method, path, body=body, headers=headers)
            raw = connection.getresponse()
            content = raw.read().decode("utf-8", "replace")
            for header in raw.headers.get_all("Set-Cookie") or []:
                self._store_cookie(header)
            return Response(raw.status, path, dict(raw.headers.items()), content)
        finally:
            connection.close()

    def _store_cookie(self, header: str) -> None:
        jar = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            if morsel["max-age"] == "0" or not morsel.value or "1970" in morsel["expires"]:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value

    def request(self, name: str, method: str, path: str, fields: dict | None = None) -> Response:
        """One request and the redirects it leads to, timed together under ``name``."""
        start = time.perf_counter()
        body = None
        headers: dict[str, str] = {}
        if fields is not None:
            data = {"csrfmiddlewaretoken": self.csrf_token, **fields}
            body = urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = self._send(method, path, body, headers)
        for _ in range(10):
            if response.status not in (301, 302, 303, 307, 308):
                break
            location = urljoin(path, response.headers.get("Location", ""))
            path = urlsplit(location)._replace(scheme="", netloc="").geturl()
            response = self._send("GET", path, None, {})
        self.timings.append((name, (time.perf_counter() - start) * 1000))
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.body)
        if token:
            self.csrf_token = token.group(1)
        if response.status >= 400:
            raise ActivationFailed(name, response.status, error_detail(response.body))
        return response

    def step(self, name: str, step: str, data: dict, expect: str) -> Response:
        """POST a wizard step (its fields prefixed as the wizard names them) and check where
        it leads."""
        fields = {"activation_wizard-current_step": step}
        fields.update({f"{step}-{key}": value for key, value in data.items()})
        response = self.request(name, "POST", f"/nl/activatie/{step}/", fields)
        if not response.path.rstrip("/").endswith(expect):
            raise ActivationFailed(
                name, response.status, f"stayed on {response.path}: {error_detail(response.body)}"
            )
        return response


def totp_now(page: str) -> str:
    """The current code of the app key whose setup ``page`` shows (QR link or written key)."""
    import pyotp

    text = html.unescape(page)
    uri = re.search(r"otpauth://totp/[^\"'\s<>]+", text)
    secret = re.search(r"[?&]secret=([A-Z2-7]+)", uri.group(0)) if uri else None
    if secret is None:
        secret = re.search(r'id="totp-secret"[^>]*>\s*([A-Z2-7 ]+)<', text)
    if secret is None:
        raise ActivationFailed("verify page", 200, "no app key secret on the page")
    digits = re.search(r"[?&]digits=(\d+)", uri.group(0)) if uri else None
    period = re.search(r"[?&]period=(\d+)", uri.group(0)) if uri else None
    return pyotp.TOTP(
        secret.group(1).replace(" ", ""),
        digits=int(digits.group(1)) if digits else 6,
        interval=int(period.group(1)) if period else 30,
    ).now()


def activate(
    base_url: str, link: str, code: str, username: str, *, source_ip: str | None = None
) -> Browser:
    """Walk one citizen through the whole wizard with the app key; raise ActivationFailed."""
    browser = Browser(base_url, source_ip=source_ip)
    link_path = urlsplit(link)._replace(scheme="", netloc="").geturl()
    page = browser.request("open link", "GET", link_path)
    if not page.path.rstrip("/").endswith("code"):
        raise ActivationFailed("open link", page.status, f"landed on {page.path}")
    browser.step("POST code", "code", {"activation_code": code}, expect="key")
    browser.step("POST key", "key", {"kind": "totp", "accept_terms": "on"}, expect="account")
    page = browser.step(
        "POST account",
        "account",
        {"username": username, "password": PASSWORD, "password_confirm": PASSWORD},
        expect="verify",
    )
    browser.step("POST verify", "verify", {"code": totp_now(page.body)}, expect="activated")
    browser.step("POST done", "activated", {"next_action": "done"}, expect="afgemeld")
    return browser


def loopback_addresses(count: int) -> list[str | None]:
    """127.0.0.2, 127.0.0.3, … (one per citizen) where the system routes them, else None."""
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
    except OSError:
        return [None] * count
    return [f"127.0.{1 + i // 250 if i >= 250 else 0}.{2 + i % 250}" for i in range(count)]


@dataclass
class Citizen:
    link: str
    code: str
    username: str


@dataclass
class Report:
    citizens: int
    concurrency: int
    seconds: float = 0.0
    completed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    timings: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    @property
    def failed(self) -> int:
        return len(self.failures)

    def as_dict(self) -> dict:
        return {
            "citizens": self.citizens,
            "concurrency": self.concurrency,
            "completed": len(self.completed),
            "failed": self.failed,
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
            "activations_per_second": round(len(self.completed) / self.seconds, 3)
            if self.seconds
            else 0,
            "activation_ms": percentiles(self.durations),
            "requests_ms": {name: percentiles(values) for name, values in self.timings.items()},
        }


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1)

    return {
        "p50": round(statistics.median(ordered), 1),
        "p90": at(0.9),
        "p99": at(0.99),
        "max": round(ordered[-1], 1),
    }


def run_activations(
    base_url: str, citizens: list[Citizen], concurrency: int | None = None
) -> Report:
    """Activate every citizen, ``concurrency`` at a time (all at once by default), released
    together by a barrier."""
    concurrency = min(concurrency or len(citizens), len(citizens))
    report = Report(citizens=len(citizens), concurrency=concurrency)
    addresses = loopback_addresses(len(citizens))
    queue = list(enumerate(citizens))
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency)

    def worker() -> None:
        barrier.wait()
        while True:
            with lock:
                if not queue:
                    return
                index, citizen = queue.pop(0)
            start = time.perf_counter()
            try:
                browser = activate(
                    base_url,
                    citizen.link,
                    citizen.code,
                    citizen.username,
                    source_ip=addresses[index],
                )
            except Exception as error:  # every failure is reported, none stops the others
                with lock:
                    report.failures.append(f"{citizen.username}: {error}")
                continue
            with lock:
                report.completed.append(citizen.username)
                report.durations.append((time.perf_counter() - start) * 1000)
                for name, elapsed in browser.timings:
                    report.timings[name].append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - start
    return report


def format_report(report: Report, heading: str) -> str:
    data = report.as_dict()
    lines = [
        heading,
        f"  completed {data['completed']}/{report.citizens}, failed {report.failed}, "
        f"{report.concurrency} at once, {data['seconds']:.2f} s, "
        f"{data['activations_per_second']:.2f} activations/s",
    ]
    if report.durations:
        lines.append("  latency ms         p50      p90      p99      max")
        rows = [("activation", data["activation_ms"]), *data["requests_ms"].items()]
        for name, values in rows:
            lines.append(
                f"  {name:<13} {values['p50']:8.1f} {values['p90']:8.1f} "
                f"{values['p99']:8.1f} {values['max']:8.1f}"
            )
    for failure in report.failures:
        lines.append(f"  FAILED {failure}")
    return "\n".join(lines)


# --- the gunicorn harness ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare(citizens: int) -> list[Citizen]:
    """Migrate the database of the environment and issue ``citizens`` activations in it."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from keys.models import Citizen as CitizenRecord
    from keys.models import RegistrationOffice
    from keys.services import issuance

    call_command("migrate", verbosity=0)
    office, _ = RegistrationOffice.objects.get_or_create(
        code="bench", defaults={"name": "Benchmark"}
    )
    run = f"{int(time.time()) % 100000:05d}"
    issued = []
    with contextlib.redirect_stdout(io.StringIO()):  # the console mailer prints each e-mail
        for i in range(citizens):
            first_nine = f"85{(i // 28) % 12 + 1:02d}{i % 28 + 1:02d}{(int(run) + i) % 998 + 1:03d}"
            record = CitizenRecord.objects.create(
                first_name="Bench",
                last_name=f"Citizen {i}",
                national_number=first_nine + f"{97 - int(first_nine) % 97:02d}",
                email=f"bench{i}@example.be",
                language="nl",
                id_document_type="id_card",
                id_document_number=f"B{run}{i}",
                office=office,
            )
            result = issuance.issue_activation(record, issued_by=None)
            issued.append(
                Citizen(result.activation_link, result.formatted_code, f"bench.{run}.{i}")
            )
    connections.close_all()
    return issued


def check_database(report: Report) -> None:
    """Every completed citizen has an account with an active key; any other is a failure."""
    from django.db import connections

    from keys.models import DigitalKey, User

    for username in list(report.completed):
        user = User.objects.filter(username=username).first()
        active = user and DigitalKey.objects.filter(user=user, state="active").exists()
        if not active:
            report.completed.remove(username)
            report.failures.append(f"{username}: completed but no account with an active key")
    connections.close_all()


@contextlib.contextmanager
def serve(
    command: list[str],
    *,
    port: int,
    env: dict,
    error_log: Path,
    probe_path: str,
    ready=lambda process: True,
    timeout: float = 30,
):
    """Run ``command`` (a server) in its own process group; yield it once ``probe_path``
    answers 200 and ``ready(process)`` holds; stop the whole group at the end."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        command, cwd=ROOT, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{error_log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", probe_path)
                if probe.getresponse().status == 200 and ready(process):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer:\n{error_log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def gunicorn(port: int, workers: int, env: dict, log_dir: Path):
    """gunicorn with the project's configuration file; yields once it answers."""
    error_log = log_dir / "gunicorn-error.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(ROOT / "csam_activation" / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--access-logfile",
        str(log_dir / "gunicorn-access.log"),
        "--error-logfile",
        str(error_log),
        "--capture-output",
        "csam_activation.wsgi",
    ]
    with serve(
        command,
        port=port,
        env=env,
        error_log=error_log,
        probe_path="/nl/gebruikersvoorwaarden/",
    ) as process:
        yield process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--citizens", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sqlite-options", default=None, help="JSON, e.g. '{}' (Django's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="csam-bench-") as tmp:
        tmp_dir = Path(tmp)
        env = {
            **os.environ,
            "DEBUG": "true",
            "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-secret-key-0123456789-abcdef"),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp_dir / 'db.sqlite3'}"),
            "SITE_URL": "http://127.0.0.1",
            "DJANGO_SETTINGS_MODULE": "csam_activation.settings",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        if args.sqlite_options is not None:
            env["DJANGO_SETTINGS_MODULE"] = "benchmarks.sqlite_options_settings"
            env["BENCH_SQLITE_OPTIONS"] = args.sqlite_options
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        citizens = prepare(args.citizens)
        port = free_port()
        with gunicorn(port, args.workers, env, tmp_dir):
            report = run_activations(f"http://127.0.0.1:{port}", citizens, args.concurrency)
        check_database(report)
        errors = (tmp_dir / "gunicorn-error.log").read_text()
        locked = errors.count("database is locked")

    from django.db import connection

    options = connection.settings_dict.get("OPTIONS", {})
    heading = (
        f"{args.citizens} activations through gunicorn ({args.workers} workers) on "
        f"{connection.vendor}"
        + (f" with OPTIONS {json.dumps(options)}" if connection.vendor == "sqlite" else "")
    )
    if args.json:
        print(json.dumps({**report.as_dict(), "database_is_locked_in_log": locked}))
    else:
        print(format_report(report, heading))
        if locked:
            print(f"  'database is locked' in gunicorn's error log: {locked} times")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
