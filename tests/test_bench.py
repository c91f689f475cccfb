"""``make bench`` runs: the product and its floor through gunicorn, every flow completes, and
every figure the README quotes is there (a small run on SQLite; PostgreSQL is the same code)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench import format_report

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("activate-app", "activate-email", "signin")


def _env(tmp_path: Path) -> dict[str, str]:
    """The benchmarks' environment: this one without ``DATABASE_URL`` (SQLite), temporary
    files under ``tmp_path``."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["TMPDIR"] = str(tmp_path)
    return env


def test_bench_measures_product_and_floor(tmp_path):
    env = _env(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench.py",
            "--databases",
            "sqlite",
            "--citizens",
            "2",
            "--rounds",
            "1",
            "--signin-rounds",
            "2",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        try:  # name the flows that failed, not only the tail of the figures
            report = json.loads(result.stdout)
            failures = {
                f"{app} {scenario}": figures["failures"]
                for app, scenarios in report["databases"]["sqlite"].items()
                for scenario, figures in scenarios.items()
                if isinstance(figures, dict) and figures.get("failed")
            }
        except (ValueError, KeyError):
            failures = {}
        raise AssertionError(f"{failures}\n{result.stderr[-3000:]}\n{result.stdout[-2000:]}")
    data = json.loads(result.stdout)
    apps = data["databases"]["sqlite"]
    for app in ("product", "floor"):
        for scenario in SCENARIOS:
            figures = apps[app][scenario]
            assert figures["failed"] == 0, figures["failures"]
            assert figures["flows"] == (4 if scenario == "signin" else 2)
            assert figures["cpu_ms_per_flow"] > figures["hash_cpu_ms_per_flow"] > 0
            assert figures["queries_per_request"] > 0  # X-Query-Count reached the client
            assert figures["steps_ms"]
        assert all(rss > 0 for rss in apps[app]["peak_rss_mb"])
    ratios = data["ratios"]["sqlite"]
    assert ratios["activate-app"]["flows_per_second"] > 0
    assert set(ratios["targets"]) >= {
        "activate-app flows_per_second",
        "signin cpu_ms_per_request_without_hash",
        "peak RSS per worker MB",
    }
    # The product's requests per activation: link and five POSTs, each with its redirect.
    assert apps["product"]["activate-app"]["requests_per_flow"] == 12
    # One hash timed with each hasher; the floor's is Django's unless asked otherwise.
    assert data["hash_cpu_ms"]["stock"] > 0 and data["hash_cpu_ms"]["product"] > 0
    assert data["floor_hasher"] == "Django"
    report = format_report(data)
    assert "with Django's hasher (the floor's)" in report
    assert "the floor hashes with Django's" in report
    assert "sqlite · activate-app" in report and "sqlite · targets (issue 10)" in report


def test_profile_flow_walks_every_flow_in_one_process(tmp_path):
    """``benchmarks/profile_flow.py`` (docs/performance.md) completes each flow and reports it."""
    env = _env(tmp_path)
    result = subprocess.run(
        [sys.executable, "benchmarks/profile_flow.py", "1", "--profile", "--top", "3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for flow in ("totp", "email", "signin"):
        line = next(line for line in result.stdout.splitlines() if line.startswith(f"{flow}:"))
        assert "ms CPU/flow without hash" in line and "queries/request" in line, line
    assert "function calls" in result.stdout


def _descendants(pid: int) -> list[int]:
    from benchmarks.bench import children

    found = []
    for child in children(pid):
        found += [child, *_descendants(child)]
    return found


def _is_gunicorn(pid: int) -> bool:
    try:
        return b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_a_stopped_bench_leaves_no_server_behind(tmp_path):
    """``timeout make bench`` (SIGTERM): gunicorn and the SMTP server stop with the benchmark."""
    env = _env(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "benchmarks/bench.py", "--databases", "sqlite", "--citizens", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        servers: list[int] = []
        while time.monotonic() < deadline and not servers:
            servers = [pid for pid in _descendants(process.pid) if _is_gunicorn(pid)]
            time.sleep(0.05)
        assert servers, "gunicorn never started"
        everything = _descendants(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            Path(f"/proc/{pid}").exists() for pid in everything
        ):
            time.sleep(0.1)
        left = [pid for pid in everything if Path(f"/proc/{pid}").exists()]
        assert left == [], [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left]
    finally:
        if process.poll() is None:
            process.kill()


def test_on_postgresql_the_database_s_cpu_counts_beside_the_workers():
    """The backends run on the same cores: reported apart and with the workers' cores busy."""
    from benchmarks.bench import Outcome, summarise

    outcome = Outcome(flows=10, seconds=2.0, cpu_seconds=3.0, db_cpu_seconds=0.4)
    outcome.queries = [5] * 120
    figures = summarise(outcome)
    assert figures["cores_busy"] == 1.5
    assert figures["db_cpu_ms_per_flow"] == 40.0
    assert figures["cores_busy_with_database"] == 1.7
    assert "cores_busy_with_database" not in summarise(Outcome(flows=1, seconds=1.0))
