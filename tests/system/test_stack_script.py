"""``deploy/stack.sh`` without starting anything: stale pid files never make it signal a process
it did not start, and ``status`` says what is not running."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "stack.sh"


def run(var: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "STACK_VAR_DIR": str(var),
    }
    return subprocess.run(
        [str(STACK), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture
def stranger():
    """A process the stack did not start, leading its own process group like the stack's do."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_stop_leaves_a_process_alone_whose_pid_a_stale_pid_file_names(tmp_path, stranger):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("nginx", "app-1", "app-2", "worker"):
        (run_dir / f"{name}.pid").write_text(f"{stranger.pid}\n")

    stopped = run(tmp_path, "stop")

    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert stranger.poll() is None, "stack.sh stop signalled a process it did not start"
    assert not list(run_dir.glob("*.pid"))


def test_status_without_a_stack_lists_every_process_as_not_running(tmp_path):
    status = run(tmp_path, "status")
    assert status.returncode != 0
    for name in ("nginx", "app-1", "app-2", "worker"):
        assert f"{name}" in status.stdout
    assert "0 of 4 processes answering" in status.stdout
