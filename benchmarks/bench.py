"""``make bench``: the product beside its floor, through gunicorn, on SQLite and on PostgreSQL.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench.py [options]``.

For each database kind (a fresh SQLite file; a fresh PostgreSQL database ``csam_bench_product``
and ``csam_bench_floor`` on ``BENCH_PG_URL``, default ``postgres://postgres@127.0.0.1:5432``) and
each of two applications, one after the other on the same machine:

- **product**: this project with its production settings (``DEBUG`` off, WhiteNoise's manifest)
  plus the benchmark's query counter (``benchmarks/bench_settings.py``), served by gunicorn with
  ``csam_activation/gunicorn.conf.py``;
- **floor**: ``benchmarks/floor/``, a minimal django-formtools ``SessionWizardView`` (three small
  forms, one argon2 hash with the product's hasher class, one INSERT) and a minimal two-step
  sign-in (password, then a code sent by e-mail);

gunicorn runs with 2 sync workers and sends e-mail over SMTP to an aiosmtpd server in a process
of its own (``benchmarks/smtp_sink.py``), whose log the simulated citizens read their codes from.
``--citizens`` citizens (default 8), each from its own loopback address, walk at once:

1. ``activate-app``: complete activations with the app key (TOTP, the code computed from the page);
2. ``activate-email``: complete activations with the e-mail key (the code read from the sink);
3. ``signin``: the accounts of 2. sign in with password and e-mail code, ``--signin-rounds`` times
   each, keeping their browser cookie (the first sign-in is a new browser, the next ones are not).

Each scenario runs ``--rounds`` flows per citizen (default 3). Reported per scenario: flows/s,
p50/p95 of each step (a request and its redirects), the gunicorn workers' CPU (utime + stime from
``/proc/<pid>/stat`` before and after) as cores busy, per flow, per request and per request with
the argon2 hash excluded (one hash per flow, its CPU measured here with the same parameters),
queries per request (``X-Query-Count``, ``benchmarks/querycount.py``), and the peak RSS of each
worker (``VmHWM``). Every product figure is also printed as a ratio to the floor's. On PostgreSQL
the CPU of the database's own backends is reported separately.

Options: ``--databases sqlite,postgres``, ``--citizens``, ``--rounds``, ``--signin-rounds``,
``--workers``, ``--apps product,floor``, ``--json`` (one JSON object). Exits 1 when any flow
failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.concurrent_activations import (  # noqa: E402
    PASSWORD,
    ActivationFailed,
    Browser,
    Response,
    free_port,
    loopback_addresses,
    serve,
    totp_now,
)

PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
SECRET_KEY = "benchmark-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SCENARIOS = ("activate-app", "activate-email", "signin")
TARGETS = {  # (figure, scenario): (bound, "min" or "max"), from issue 10's "Done when"
    ("flows_per_second", "activate-app"): (0.8, "min"),
    ("cpu_ms_per_request_without_hash", "activate-app"): (1.1, "max"),
    ("cpu_ms_per_request_without_hash", "activate-email"): (1.1, "max"),
    ("cpu_ms_per_request_without_hash", "signin"): (1.3, "max"),
}


# --- the mailbox: aiosmtpd in this process ----------------------------------------------------


class Mailbox:
    """Every e-mail gunicorn's workers sent, by recipient, as ``benchmarks/smtp_sink.py`` (a
    process of its own) wrote them down; citizens wait here for their codes."""

    def __init__(self, path: Path, pid: int = 0) -> None:
        self.path = path
        self.pid = pid  # the SMTP server's process
        self.offset = 0
        self.first_lines: dict[str, list[str]] = defaultdict(list)
        self.lock = threading.Lock()

    def _read(self) -> None:
        with self.lock, self.path.open(encoding="utf-8") as source:
            source.seek(self.offset)
            while True:
                line = source.readline()
                if not line.endswith("\n"):
                    break
                self.offset += len(line.encode())
                message = json.loads(line)
                for recipient in message["to"]:
                    self.first_lines[recipient].append(message["first_line"])

    def count(self, address: str) -> int:
        self._read()
        with self.lock:
            return len(self.first_lines[address.lower()])

    def wait_code(self, address: str, after: int, timeout: float = 60) -> str:
        """The 6-digit code of the first message to ``address`` after the first ``after``."""
        deadline = time.monotonic() + timeout
        while True:
            self._read()
            with self.lock:
                for first_line in self.first_lines[address.lower()][after:]:
                    found = re.search(r"\b(\d{6})\s*$", first_line)
                    if found:
                        return found.group(1)
            if time.monotonic() > deadline:
                raise ActivationFailed("mailbox", 0, f"no code for {address}")
            time.sleep(0.01)


@contextlib.contextmanager
def smtp_sink(directory: Path):
    """``benchmarks/smtp_sink.py`` on a free port; yields the mailbox and the port."""
    port = free_port()
    path = directory / "mail.jsonl"
    path.touch()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, str(ROOT / "benchmarks" / "smtp_sink.py"), str(port), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP sink did not start")
        yield Mailbox(path, process.pid), port
    finally:
        process.terminate()
        process.wait(10)


# --- the simulated citizens -------------------------------------------------------------------


class Client(Browser):
    """The benchmark's browser: also counts requests and reads ``X-Query-Count``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.queries: list[int] = []
        self.step_cpu: dict[str, float] = defaultdict(float)
        self.step_queries: dict[str, int] = defaultdict(int)
        self.current = ""
        self.hash_ms = 0.0

    def request(self, name: str, method: str, path: str, fields: dict | None = None) -> Response:
        self.current = name
        return super().request(name, method, path, fields)

    def _send(self, method: str, path: str, body: bytes | None, headers: dict) -> Response:
        response = super()._send(method, path, body, headers)
        queries = int(response.headers.get("X-Query-Count", "0"))
        self.queries.append(queries)
        self.step_queries[self.current] += queries
        self.step_cpu[self.current] += float(response.headers.get("X-Thread-CPU-ms", "0"))
        self.hash_ms += float(response.headers.get("X-Hash-CPU-ms", "0"))
        return response

    def expect(self, response: Response, name: str, ending: str) -> Response:
        if not response.path.rstrip("/").endswith(ending):
            raise ActivationFailed(name, response.status, f"landed on {response.path}")
        return response


@dataclass
class Job:
    """One flow of one citizen: what it needs to know."""

    username: str
    email: str = ""
    link: str = ""
    code: str = ""


def product_activation(kind: str):
    def flow(base: str, job: Job, mailbox: Mailbox, ip: str | None, jar: dict) -> Client:
        b = Client(base, source_ip=ip)
        b.expect(b.request("open link", "GET", urlsplit(job.link).path), "open link", "code")
        b.step("POST code", "code", {"activation_code": job.code}, expect="key")
        b.step("POST key", "key", {"kind": kind, "accept_terms": "on"}, expect="account")
        before = mailbox.count(job.email)
        page = b.step(
            "POST account",
            "account",
            {"username": job.username, "password": PASSWORD, "password_confirm": PASSWORD},
            expect="verify",
        )
        code = totp_now(page.body) if kind == "totp" else mailbox.wait_code(job.email, before)
        b.step("POST verify", "verify", {"code": code}, expect="activated")
        b.step("POST done", "activated", {"next_action": "done"}, expect="afgemeld")
        return b

    return flow


def product_signin(base: str, job: Job, mailbox: Mailbox, ip: str | None, jar: dict) -> Client:
    b = Client(base, source_ip=ip)
    if job.username in jar:
        b.cookies["csam_browser"] = jar[job.username]
    b.request("GET signin", "GET", "/nl/aanmelden/")
    page = b.request(
        "POST password", "POST", "/nl/aanmelden/", {"username": job.username, "password": PASSWORD}
    )
    b.expect(page, "POST password", "sleutel")
    key = re.search(r'name="key" value="(\d+)"', page.body)
    if key is None:
        raise ActivationFailed("POST password", page.status, "no key to choose")
    before = mailbox.count(job.email)
    page = b.request("POST key", "POST", "/nl/aanmelden/sleutel/", {"key": key.group(1)})
    b.expect(page, "POST key", "code")
    code = mailbox.wait_code(job.email, before)
    b.expect(
        b.request("POST code", "POST", "/nl/aanmelden/code/", {"code": code}),
        "POST code",
        "mijn-sleutels",
    )
    jar[job.username] = b.cookies.get("csam_browser", "")
    return b


def floor_activation(kind: str):
    def flow(base: str, job: Job, mailbox: Mailbox, ip: str | None, jar: dict) -> Client:
        b = Client(base, source_ip=ip)
        path = f"/wizard/{kind}/"
        b.request("GET wizard", "GET", path)

        def post(name: str, step: str, data: dict) -> Response:
            fields = {"floor_wizard-current_step": step}
            fields.update({f"{step}-{key}": value for key, value in data.items()})
            return b.request(name, "POST", path, fields)

        post("POST code", "code", {"activation_code": job.code})
        before = mailbox.count(job.email)
        page = post(
            "POST account",
            "account",
            {"username": job.username, "password": PASSWORD, "password_confirm": PASSWORD},
        )
        code = totp_now(page.body) if kind == "app" else mailbox.wait_code(job.email, before)
        b.expect(post("POST verify", "verify", {"code": code}), "POST verify", "done")
        return b

    return flow


def floor_signin(base: str, job: Job, mailbox: Mailbox, ip: str | None, jar: dict) -> Client:
    b = Client(base, source_ip=ip)
    b.request("GET signin", "GET", "/login/")
    before = mailbox.count(job.email)
    page = b.request(
        "POST password", "POST", "/login/", {"username": job.username, "password": PASSWORD}
    )
    b.expect(page, "POST password", "code")
    code = mailbox.wait_code(job.email, before)
    b.expect(b.request("POST code", "POST", "/login/code/", {"code": code}), "POST code", "home")
    return b


FLOWS = {
    "product": {
        "activate-app": product_activation("totp"),
        "activate-email": product_activation("email"),
        "signin": product_signin,
    },
    "floor": {
        "activate-app": floor_activation("app"),
        "activate-email": floor_activation("email"),
        "signin": floor_signin,
    },
}


@dataclass
class Outcome:
    flows: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    durations: list[float] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    step_cpu: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    step_queries: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    queries: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0
    db_cpu_seconds: float = 0.0
    hash_ms: float = 0.0


def run_flows(
    flow, base: str, jobs: list[Job], mailbox: Mailbox, concurrency: int, jar: dict
) -> Outcome:
    """Every job, ``concurrency`` citizens at once, each from its own address."""
    outcome = Outcome()
    queue = list(jobs)
    lock = threading.Lock()
    addresses = loopback_addresses(concurrency)
    barrier = threading.Barrier(concurrency)

    busy: set[str] = set()  # one person never signs in twice at once: their codes would mix

    def citizen(index: int) -> None:
        barrier.wait()
        while True:
            with lock:
                if not queue:
                    return
                job = next((j for j in queue if j.username not in busy), None)
                if job is not None:
                    queue.remove(job)
                    busy.add(job.username)
            if job is None:
                time.sleep(0.01)
                continue
            start = time.perf_counter()
            try:
                browser = flow(base, job, mailbox, addresses[index], jar)
            except Exception as error:  # every failure is reported, none stops the others
                with lock:
                    outcome.failures.append(f"{job.username}: {error}")
                continue
            finally:
                with lock:
                    busy.discard(job.username)
            with lock:
                outcome.flows += 1
                outcome.durations.append((time.perf_counter() - start) * 1000)
                for name, elapsed in browser.timings:
                    outcome.steps[name].append(elapsed)
                outcome.queries.extend(browser.queries)
                outcome.hash_ms += browser.hash_ms
                for name, value in browser.step_cpu.items():
                    outcome.step_cpu[name].append(value)
                for name, value in browser.step_queries.items():
                    outcome.step_queries[name].append(value)

    threads = [threading.Thread(target=citizen, args=(i,)) for i in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome.seconds = time.perf_counter() - start
    return outcome


# --- processes: gunicorn's workers, PostgreSQL's backends -------------------------------------


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included: argon2's lanes)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else 0.0


def database_backends(database: str) -> list[int]:
    """PostgreSQL's backend processes serving ``database`` (their title names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres:") and f" {database} " in title:
            pids.append(int(entry.name))
    return pids


def cpu_snapshot(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in pids}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


@contextlib.contextmanager
def gunicorn(app: str, port: int, workers: int, env: dict, log_dir: Path):
    """gunicorn serving ``app`` (product: with the project's configuration file)."""
    error_log = log_dir / f"{app}-gunicorn-error.log"
    command = [sys.executable, "-m", "gunicorn"]
    if app == "product":
        command += ["-c", str(ROOT / "csam_activation" / "gunicorn.conf.py")]
    command += [
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--access-logfile",
        str(log_dir / f"{app}-gunicorn-access.log"),
        "--error-logfile",
        str(error_log),
        "--capture-output",
        "csam_activation.wsgi" if app == "product" else "benchmarks.floor.wsgi",
    ]
    with serve(
        command,
        port=port,
        env=env,
        error_log=error_log,
        probe_path="/nl/aanmelden/" if app == "product" else "/login/",
        ready=lambda process: len(children(process.pid)) >= workers,
        timeout=60,
    ) as process:
        yield process


@contextlib.contextmanager
def profiling(py_spy: str, workers: list[int], directory: Path, name: str):
    """``py-spy record`` on every worker while the block runs (when ``--py-spy`` names it):
    collapsed stacks in ``directory/<name>-<pid>.txt``, CPU samples only."""
    if not py_spy:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(  # noqa: S603
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--native",
                "--threads",
                "--output",
                str(directory / f"{name}-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in workers
    ]
    time.sleep(1)
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            recorder.wait(60)


# --- preparing each application's database (in a child process: one Django per process) ------


def prepare_product(count: int) -> list[dict]:
    """Migrate, collect the static files, issue ``count`` activations; print them."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from keys.models import Citizen, RegistrationOffice
    from keys.services import issuance

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    office, _ = RegistrationOffice.objects.get_or_create(code="bench", defaults={"name": "Bench"})
    run = f"{int(time.time()) % 100000:05d}"
    issued = []
    for i in range(count):
        first_nine = f"85{(i // 28) % 12 + 1:02d}{i % 28 + 1:02d}{(int(run) + i) % 998 + 1:03d}"
        address = f"bench.{run}.{i}@example.be"
        citizen = Citizen.objects.create(
            first_name="Bench",
            last_name=f"Citizen {i}",
            national_number=first_nine + f"{97 - int(first_nine) % 97:02d}",
            email=address,
            language="nl",
            id_document_type="id_card",
            id_document_number=f"B{run}{i}",
            office=office,
        )
        result = issuance.issue_activation(citizen, issued_by=None)
        issued.append(
            {
                "username": f"bench.{run}.{i}",
                "email": address,
                "link": result.activation_link,
                "code": result.formatted_code,
            }
        )
    connections.close_all()
    return issued


def prepare_floor(count: int) -> list[dict]:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run = f"{int(time.time()) % 100000:05d}"
    return [
        {
            "username": f"floor{run}x{i}",
            "email": f"floor{run}x{i}@example.be",
            "code": "ABCDE-12345",
        }
        for i in range(count)
    ]


def prepare(app: str, count: int, env: dict) -> list[Job]:
    result = subprocess.run(  # noqa: S603
        [sys.executable, __file__, "--prepare", app, "--count", str(count)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"preparing {app} failed:\n{result.stderr[-3000:]}")
    return [Job(**item) for item in json.loads(result.stdout.strip().splitlines()[-1])]


def fresh_postgres(name: str) -> str:
    url = f"{PG_URL.rstrip('/')}/postgres"
    parts = urlsplit(url)
    base = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    base += ["-U", parts.username or "postgres"]
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run(  # noqa: S603
            ["psql", *base, "-q", "-d", "postgres", "-c", sql],  # noqa: S607
            check=True,
            capture_output=True,
        )
    return f"{PG_URL.rstrip('/')}/{name}"


def measure_hash_cpu_ms() -> dict[str, float]:
    """CPU (all threads) of one argon2id hash at the product's cost, median of 7: with Django's
    hasher (the floor's: fresh memory each time) and with the product's (its memory kept). In a
    child process (``--hash-cpu``): one Django per process."""
    import django
    from django.conf import settings

    settings.configure()
    django.setup()
    from benchmarks.querycount import TimedArgon2Hasher, TimedStockArgon2Hasher

    out = {}
    for name, hasher in (("stock", TimedStockArgon2Hasher()), ("product", TimedArgon2Hasher())):
        salt = hasher.salt()
        hasher.encode("warm-up", salt)
        samples = []
        for _ in range(7):
            start = time.process_time()
            hasher.encode(PASSWORD, salt)
            samples.append((time.process_time() - start) * 1000)
        out[name] = round(statistics.median(samples), 1)
    return out


def hash_cpu_ms() -> dict[str, float]:
    result = subprocess.run(  # noqa: S603
        [sys.executable, __file__, "--hash-cpu"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(result.stdout)


# --- one application on one database ------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summarise(outcome: Outcome) -> dict:
    """The figures of one scenario; the hash's CPU is what the workers measured around it."""
    flows = outcome.flows
    requests = len(outcome.queries)
    cpu_ms = outcome.cpu_seconds * 1000
    result = {
        "flows": flows,
        "failed": len(outcome.failures),
        "failures": outcome.failures[:10],
        "seconds": round(outcome.seconds, 3),
        "flows_per_second": round(flows / outcome.seconds, 3) if outcome.seconds else 0.0,
        "cores_busy": round(outcome.cpu_seconds / outcome.seconds, 3) if outcome.seconds else 0.0,
        "requests_per_flow": round(requests / flows, 2) if flows else 0.0,
        "cpu_ms_per_flow": round(cpu_ms / flows, 1) if flows else 0.0,
        "cpu_ms_per_request": round(cpu_ms / requests, 2) if requests else 0.0,
        "hash_cpu_ms_per_flow": round(outcome.hash_ms / flows, 1) if flows else 0.0,
        "cpu_ms_per_request_without_hash": round((cpu_ms - outcome.hash_ms) / requests, 2)
        if requests
        else 0.0,
        "queries_per_request": round(sum(outcome.queries) / requests, 2) if requests else 0.0,
        "queries_max": max(outcome.queries, default=0),
        "flow_ms": {
            "p50": round(percentile(outcome.durations, 0.5), 1),
            "p95": round(percentile(outcome.durations, 0.95), 1),
        },
        "steps_ms": {
            name: {
                "p50": round(percentile(values, 0.5), 1),
                "p95": round(percentile(values, 0.95), 1),
                "thread_cpu_ms": round(statistics.median(outcome.step_cpu[name] or [0]), 1),
                "queries": statistics.median(outcome.step_queries[name] or [0]),
            }
            for name, values in outcome.steps.items()
        },
    }
    if outcome.db_cpu_seconds:
        result["db_cpu_ms_per_flow"] = round(outcome.db_cpu_seconds * 1000 / flows, 1)
        # The database runs on the same cores: the server is the workers and its backends.
        result["cores_busy_with_database"] = round(
            (outcome.cpu_seconds + outcome.db_cpu_seconds) / outcome.seconds, 3
        )
    return result


def run_app(app: str, kind: str, args, mailbox: Mailbox, smtp_port: int, tmp: Path, hash_ms):
    """Prepare, serve and measure one application on one kind of database."""
    database = f"csam_bench_{app}"
    url = f"sqlite:///{tmp / f'{app}.sqlite3'}" if kind == "sqlite" else fresh_postgres(database)
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_COOKIES": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "DATABASE_URL": url,
        "SITE_URL": "http://127.0.0.1",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "BENCH_STATIC_ROOT": str(tmp / "static"),
        "DJANGO_SETTINGS_MODULE": "benchmarks.bench_settings"
        if app == "product"
        else "benchmarks.floor.settings",
        # The floor's hasher: Django's (the default) or, to tell that gain apart, the product's.
        "BENCH_FLOOR_HASHER": "benchmarks.querycount."
        + ("TimedArgon2Hasher" if args.floor_hasher == "product" else "TimedStockArgon2Hasher"),
    }
    for name in ("TASKS_BACKEND", "REDIS_URL", "SMS_BACKEND"):
        env.pop(name, None)
    per_scenario = args.citizens * args.rounds
    warmup = 2 * args.workers
    jobs = prepare(app, 2 * per_scenario + warmup, env)
    warm, app_jobs = jobs[:warmup], jobs[warmup : warmup + per_scenario]
    email_jobs = jobs[warmup + per_scenario :]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    flows = FLOWS[app]
    results: dict = {}
    with gunicorn(app, port, args.workers, env, tmp) as server:
        workers = children(server.pid)
        # Warm-up, not measured: every worker imports and compiles what the flows need.
        run_flows(flows["activate-app"], base, warm, mailbox, len(warm), {})
        jar: dict[str, str] = {}
        signin_jobs = [job for _ in range(args.signin_rounds) for job in email_jobs]
        plan = [
            ("activate-app", app_jobs),
            ("activate-email", email_jobs),
            ("signin", signin_jobs),
        ]
        for scenario, scenario_jobs in plan:
            db_pids = database_backends(database) if kind == "postgres" else []
            before = cpu_snapshot(workers)
            db_before = cpu_snapshot(db_pids)
            harness_before = cpu_seconds(os.getpid()) + cpu_seconds(mailbox.pid)
            with profiling(
                args.py_spy, workers, Path(args.profile_dir), f"{kind}-{app}-{scenario}"
            ):
                outcome = run_flows(
                    flows[scenario], base, scenario_jobs, mailbox, args.citizens, jar
                )
            outcome.cpu_seconds = cpu_delta(before, cpu_snapshot(workers))
            harness = cpu_seconds(os.getpid()) + cpu_seconds(mailbox.pid) - harness_before
            if kind == "postgres":
                outcome.db_cpu_seconds = cpu_delta(
                    db_before, cpu_snapshot(database_backends(database))
                )
            results[scenario] = summarise(outcome)
            # The load generator and the SMTP server share the machine: their cores, for reading
            # "cores busy" against the 2 there are.
            results[scenario]["harness_cores"] = round(harness / outcome.seconds, 3)
        results["peak_rss_mb"] = [round(peak_rss_mb(pid), 1) for pid in workers]
    return results


def median_result(results: list[dict]) -> dict:
    """Several runs of one application as one: the median of every figure (the worst peak RSS,
    every failure)."""
    if len(results) == 1:
        return results[0]

    def merge(values: list):
        first = values[0]
        if isinstance(first, dict):
            return {key: merge([v[key] for v in values if key in v]) for key in first}
        if isinstance(first, bool) or not isinstance(first, (int, float)):
            return first
        return round(statistics.median(values), 3)

    merged = {scenario: merge([r[scenario] for r in results]) for scenario in SCENARIOS}
    for scenario in SCENARIOS:
        merged[scenario]["failed"] = sum(r[scenario]["failed"] for r in results)
        merged[scenario]["failures"] = [f for r in results for f in r[scenario]["failures"]]
        merged[scenario]["runs"] = len(results)
    rss = [r["peak_rss_mb"] for r in results]
    merged["peak_rss_mb"] = [max(values) for values in zip(*rss, strict=False)]
    return merged


# --- the report -------------------------------------------------------------------------------


def ratio(product: float, floor: float) -> float | None:
    return round(product / floor, 2) if floor else None


def compare(data: dict) -> dict:
    """Every product figure as a ratio to the floor's, and the targets met or not."""
    out: dict = {}
    for kind, apps in data["databases"].items():
        if "product" not in apps or "floor" not in apps:
            continue
        product, floor = apps["product"], apps["floor"]
        kind_out: dict = {}
        for scenario in SCENARIOS:
            figures = {}
            for name, value in product[scenario].items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    figures[name] = ratio(value, floor[scenario].get(name, 0))
            kind_out[scenario] = figures
        kind_out["peak_rss_mb"] = ratio(max(product["peak_rss_mb"]), max(floor["peak_rss_mb"]))
        targets = {}
        for (figure, scenario), (bound, sense) in TARGETS.items():
            value = kind_out[scenario].get(figure)
            met = value is not None and (value >= bound if sense == "min" else value <= bound)
            targets[f"{scenario} {figure}"] = {
                "ratio": value,
                "target": f"{'≥' if sense == 'min' else '≤'} {bound}",
                "met": met,
            }
        busy = max(product[s]["cores_busy"] for s in SCENARIOS)
        targets["cores busy (best scenario)"] = {
            "value": busy,
            "target": "≥ 1.75",
            "met": busy >= 1.75,
        }
        rss = max(product["peak_rss_mb"])
        targets["peak RSS per worker MB"] = {"value": rss, "target": "≤ 140", "met": rss <= 140}
        kind_out["targets"] = targets
        out[kind] = kind_out
    return out


ROWS = [
    ("flows/s", "flows_per_second", "{:.2f}"),
    ("cores busy", "cores_busy", "{:.2f}"),
    ("  harness cores", "harness_cores", "{:.2f}"),
    ("requests / flow", "requests_per_flow", "{:.1f}"),
    ("CPU ms / flow", "cpu_ms_per_flow", "{:.0f}"),
    ("  of it argon2", "hash_cpu_ms_per_flow", "{:.0f}"),
    ("CPU ms / request", "cpu_ms_per_request", "{:.1f}"),
    ("  without hash", "cpu_ms_per_request_without_hash", "{:.1f}"),
    ("queries / request", "queries_per_request", "{:.1f}"),
    ("queries max", "queries_max", "{:.0f}"),
]


def format_report(data: dict) -> str:
    lines = [
        f"make bench: {data['citizens']} citizens at once, {data['rounds']} flows each per "
        f"scenario, sign-in {data['signin_rounds']}x, gunicorn {data['workers']} sync workers, "
        f"median of {data['repeat']} interleaved run(s), "
        f"{os.cpu_count()} CPUs; one argon2id hash here, idle: "
        f"{data['hash_cpu_ms']['stock']:.0f} ms CPU with Django's hasher (the floor's), "
        f"{data['hash_cpu_ms']['product']:.0f} ms with the product's (memory kept); "
        f"the floor hashes with {data['floor_hasher']}'s"
    ]
    for kind, apps in data["databases"].items():
        ratios = data["ratios"].get(kind, {})
        for scenario in SCENARIOS:
            lines.append("")
            lines.append(f"{kind} · {scenario}")
            lines.append(f"  {'':<20}{'product':>10}{'floor':>10}{'ratio':>8}")
            for label, key, fmt in ROWS:
                cells = []
                for app in ("product", "floor"):
                    value = apps.get(app, {}).get(scenario, {}).get(key)
                    cells.append(fmt.format(value) if value is not None else "—")
                r = ratios.get(scenario, {}).get(key)
                lines.append(
                    f"  {label:<20}{cells[0]:>10}{cells[1]:>10}"
                    + (f"{r:>7.2f}x" if r is not None else f"{'':>8}")
                )
            for app in ("product", "floor"):
                result = apps.get(app, {}).get(scenario)
                if not result:
                    continue
                lines.append(
                    f"  {app}: flow p50/p95 {result['flow_ms']['p50']:.0f}/"
                    f"{result['flow_ms']['p95']:.0f} ms; each step with its redirect: p50, p95 ms, "
                    "CPU ms of the serving thread, queries"
                )
                for name, v in result["steps_ms"].items():
                    lines.append(
                        f"    {name:<16}{v['p50']:>7.0f}{v['p95']:>7.0f}"
                        f"{v['thread_cpu_ms']:>8.1f}{v['queries']:>6.0f}"
                    )
                if "db_cpu_ms_per_flow" in result:
                    lines.append(
                        f"  {app} PostgreSQL backends: {result['db_cpu_ms_per_flow']:.0f} ms CPU "
                        "per flow (not in the figures above); cores busy, workers and backends: "
                        f"{result['cores_busy_with_database']:.2f}"
                    )
                for failure in result["failures"]:
                    lines.append(f"  {app} FAILED {failure}")
        lines.append("")
        rss = {app: apps[app]["peak_rss_mb"] for app in apps}
        lines.append(
            f"{kind} · peak RSS per worker MB: "
            + "; ".join(
                f"{app} {', '.join(f'{v:.0f}' for v in values)}" for app, values in rss.items()
            )
        )
        if ratios.get("targets"):
            lines.append(f"{kind} · targets (issue 10)")
            for name, target in ratios["targets"].items():
                shown = target.get("ratio", target.get("value"))
                lines.append(
                    f"  {'met ' if target['met'] else 'MISS'} {name}: {shown} "
                    f"(target {target['target']})"
                )
    return "\n".join(lines)


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--apps", default="product,floor")
    parser.add_argument("--citizens", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--signin-rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="interleaved runs, medians")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--py-spy", default="", help="py-spy's path: profile every worker")
    parser.add_argument("--profile-dir", default=str(ROOT / "var" / "profiles"))
    parser.add_argument("--prepare", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--hash-cpu", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--floor-hasher",
        choices=("stock", "product"),
        default="stock",
        help="the floor's argon2 hasher: Django's (default) or the product's, memory kept",
    )
    args = parser.parse_args(argv)

    if args.hash_cpu:  # the child process that times the two hashers
        print(json.dumps(measure_hash_cpu_ms()))
        return 0
    if args.prepare:  # the child process that prepares one database
        prepare_one = prepare_product if args.prepare == "product" else prepare_floor
        with contextlib.redirect_stdout(sys.stderr):
            jobs = prepare_one(args.count)
        print(json.dumps(jobs))
        return 0

    # Stopped from outside (``timeout``, a CI job's limit, ``kill``): leave through the context
    # managers, so gunicorn, the SMTP server and py-spy stop with it instead of being left
    # behind holding their ports (SIGINT, Ctrl+C, already does: KeyboardInterrupt).
    signal.signal(signal.SIGTERM, _stopped)
    data: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "citizens": args.citizens,
        "rounds": args.rounds,
        "signin_rounds": args.signin_rounds,
        "workers": args.workers,
        "repeat": args.repeat,
        "hash_cpu_ms": hash_cpu_ms(),
        "floor_hasher": "Django" if args.floor_hasher == "stock" else "the product",
        "databases": {},
    }
    failed = 0
    with (
        tempfile.TemporaryDirectory(prefix="csam-bench-") as tmp,
        smtp_sink(Path(tmp)) as (mailbox, port),
    ):
        runs: dict = defaultdict(lambda: defaultdict(list))
        for repeat in range(args.repeat):
            for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
                for app in [a.strip() for a in args.apps.split(",") if a.strip()]:
                    result = run_app(app, kind, args, mailbox, port, Path(tmp), data["hash_cpu_ms"])
                    runs[kind][app].append(result)
                    failed += sum(result[s]["failed"] for s in SCENARIOS)
                    print(f"  ({kind}: {app} measured, run {repeat + 1})", file=sys.stderr)
        for kind, apps in runs.items():
            data["databases"][kind] = {app: median_result(results) for app, results in apps.items()}
    data["ratios"] = compare(data)
    print(json.dumps(data, indent=2) if args.json else format_report(data))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
