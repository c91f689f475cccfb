"""The audit gate fails loudly unless every locked package was really audited."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("check_audit", ROOT / "tools" / "check_audit.py")
check_audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_audit)

REQUIREMENTS = """\
django==6.1.3 \\
    --hash=sha256:aaaa
argon2-cffi==25.1.0 \\
    --hash=sha256:bbbb
"""


def run(tmp_path, report) -> int:
    (tmp_path / "req.txt").write_text(REQUIREMENTS)
    (tmp_path / "audit.json").write_text(json.dumps(report) if report is not None else "")
    return check_audit.main(
        ["check_audit", str(tmp_path / "req.txt"), str(tmp_path / "audit.json")]
    )


def test_passes_when_everything_was_audited(tmp_path):
    report = {
        "dependencies": [
            {"name": "Django", "version": "6.1.3", "vulns": []},
            {"name": "argon2_cffi", "version": "25.1.0", "vulns": []},
        ]
    }
    assert run(tmp_path, report) == 0


def test_fails_when_packages_were_skipped(tmp_path, capsys):
    report = {
        "dependencies": [
            {"name": "django", "skip_reason": "Dependency not found on PyPI"},
            {"name": "argon2-cffi", "skip_reason": "unreachable"},
        ]
    }
    assert run(tmp_path, report) == 1
    assert "not audited" in capsys.readouterr().err


def test_fails_when_a_package_is_missing_or_the_report_is_empty(tmp_path):
    assert (
        run(tmp_path, {"dependencies": [{"name": "django", "version": "6.1.3", "vulns": []}]}) == 1
    )
    assert run(tmp_path, {"dependencies": []}) == 1
    assert run(tmp_path, None) == 1


def test_fails_on_a_known_vulnerability(tmp_path):
    report = {
        "dependencies": [
            {"name": "django", "version": "6.1.3", "vulns": [{"id": "PYSEC-0000-1"}]},
            {"name": "argon2-cffi", "version": "25.1.0", "vulns": []},
        ]
    }
    assert run(tmp_path, report) == 1
