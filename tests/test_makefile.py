"""``make uv`` installs uv when the ``uv`` on PATH does not run (a pyenv shim for another Python).

Nothing is really installed: ``python3`` on the test's PATH is a stand-in that records how it
was called and "installs" a working fake ``uv`` into ``$HOME/.local/bin`` as ``pip install
--user`` would. Each fake ``uv`` logs its arguments, so the tests see which one later steps ran.
"""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_DIRS = [d for d in ("/usr/local/bin", "/usr/bin", "/bin") if Path(d).is_dir()]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def working_uv(path: Path, log: Path, name: str) -> Path:
    return script(
        path,
        f'echo "{name} $*" >> "{log}"\n'
        'if [ "$1" = "--version" ]; then echo "uv 0.0.0 (fake)"; fi\n'
        "exit 0\n",
    )


@pytest.fixture
def machine(tmp_path):
    """A HOME without uv, a stand-in python3, and only system directories on PATH otherwise."""
    if any((Path(d) / "uv").exists() for d in SYSTEM_DIRS):
        pytest.skip("a uv in a system directory would shadow the test's fakes")
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "calls.log"
    log.touch()
    bin_dir = tmp_path / "bin"
    installed = home / ".local" / "bin" / "uv"
    working = tmp_path / "working-uv"
    script(
        bin_dir / "python3",
        f'echo "python3 $*" >> "{log}"\n'
        'case "$*" in *"pip install --user"*uv*) ;; *) exit 1 ;; esac\n'
        f'mkdir -p "{installed.parent}"\n'
        f'cp "{working_uv(working, log, "installed-uv")}" "{installed}"\n',
    )
    return {"home": home, "log": log, "bin": bin_dir, "installed": installed, "tmp": tmp_path}


def make(machine, *targets: str, first_on_path: list[Path]) -> subprocess.CompletedProcess:
    path = os.pathsep.join([*(str(p) for p in first_on_path), str(machine["bin"]), *SYSTEM_DIRS])
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), *targets],
        cwd=machine["tmp"],
        env={"PATH": path, "HOME": str(machine["home"])},
        capture_output=True,
        text=True,
        timeout=60,
    )


def calls(machine) -> list[str]:
    return machine["log"].read_text().splitlines()


def test_a_pyenv_shim_that_does_not_run_gets_uv_installed_and_used(machine):
    shims = machine["tmp"] / "shims"
    script(
        shims / "uv",
        f'echo "shim $*" >> "{machine["log"]}"\n'
        'echo "pyenv: uv: command not found" >&2\n'
        "exit 127\n",
    )
    result = make(machine, "python", first_on_path=[shims])
    assert result.returncode == 0, result.stdout + result.stderr
    log = calls(machine)
    assert any(line.startswith("python3 -m pip install --user") for line in log), log
    assert machine["installed"].exists()
    # every later uv command runs the installed uv, not the shim
    assert "installed-uv python find 3.12" in log, log
    assert not any(line.startswith("shim") and "--version" not in line for line in log), log
    assert "does not run here" in result.stdout


def test_a_missing_uv_is_installed(machine):
    result = make(machine, "uv", first_on_path=[])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is missing" in result.stdout
    assert any(line.startswith("python3 -m pip install --user") for line in calls(machine))


def test_a_working_uv_is_left_alone(machine):
    elsewhere = machine["tmp"] / "elsewhere"
    working_uv(elsewhere / "uv", machine["log"], "working-uv")
    result = make(machine, "python", first_on_path=[elsewhere])
    assert result.returncode == 0, result.stdout + result.stderr
    log = calls(machine)
    assert not any(line.startswith("python3") for line in log), log
    assert "working-uv python find 3.12" in log
    assert not machine["installed"].exists()


def test_pip_that_does_not_give_a_working_uv_stops_make(machine):
    script(machine["bin"] / "python3", "exit 0\n")  # "succeeds" but installs nothing
    result = make(machine, "python", first_on_path=[])
    assert result.returncode != 0
    assert "uv still does not run" in result.stdout + result.stderr
