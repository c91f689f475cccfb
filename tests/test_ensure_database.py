"""deploy/ensure_database.py, which ``make stack`` runs before ``migrate``: it creates the
PostgreSQL database that DATABASE_URL names when missing, and says so; several starting at once
(two checkouts' suites, an operator and a test) all succeed."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "ensure_database.py"
SERVER = os.environ.get("STACK_TEST_PG", "postgres://postgres@127.0.0.1:5432")


def _psycopg():
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(f"{SERVER}/postgres", connect_timeout=3).close()
    except psycopg.Error as error:
        pytest.skip(f"no PostgreSQL at {SERVER}: {error}")
    return psycopg


def _drop(psycopg, name: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_creates_a_missing_database_then_finds_it():
    psycopg = _psycopg()
    name = f"csam_ensure_{uuid.uuid4().hex[:10]}"
    try:
        first = _run(f"{SERVER}/{name}")
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        assert out.strip().endswith("(created)")
        second = _run(f"{SERVER}/{name}")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert "(created" not in out
    finally:
        _drop(psycopg, name)


def test_several_at_once_all_succeed():
    """Between "does it exist?" and CREATE DATABASE another process may create it: that is
    success, not "cannot create"."""
    psycopg = _psycopg()
    for _round in range(3):
        name = f"csam_ensure_{uuid.uuid4().hex[:10]}"
        try:
            runs = [_run(f"{SERVER}/{name}") for _ in range(6)]
            results = [(run.wait(timeout=60), run.stderr.read()) for run in runs]
            assert [code for code, _ in results] == [0] * len(runs), results
        finally:
            _drop(psycopg, name)


def test_sqlite_needs_nothing(tmp_path):
    run = _run(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "created by migrate" in out
