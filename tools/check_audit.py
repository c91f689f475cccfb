"""Fail unless pip-audit really audited every locked dependency.

pip-audit prints "No known vulnerabilities found" even when it could not reach a vulnerability
database and skipped every package. This reads its JSON report and the requirements it was given,
and exits non-zero when a package is missing from the report, was skipped, or has a known
vulnerability.

Usage: python tools/check_audit.py REQUIREMENTS.txt AUDIT.json
"""

import json
import re
import sys
from pathlib import Path

REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_packages(requirements: str) -> dict[str, str]:
    packages = {}
    for line in requirements.splitlines():
        match = REQUIREMENT.match(line.strip())
        if match:
            packages[normalize(match.group(1))] = match.group(2)
    return packages


def problems(requirements: str, report: dict) -> list[str]:
    expected = locked_packages(requirements)
    if not expected:
        return ["no pinned requirements to audit"]
    found: list[str] = []
    audited = {}
    for dependency in report.get("dependencies", []):
        name = normalize(dependency.get("name", ""))
        audited[name] = dependency
        if dependency.get("skip_reason"):
            found.append(f"{name}: not audited ({dependency['skip_reason']})")
        for vulnerability in dependency.get("vulns", []):
            found.append(f"{name} {dependency.get('version')}: {vulnerability.get('id')}")
    for name in sorted(set(expected) - set(audited)):
        found.append(f"{name}: missing from the audit report")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    requirements = Path(argv[1]).read_text()
    try:
        report = json.loads(Path(argv[2]).read_text())
    except (OSError, ValueError) as error:
        print(f"AUDIT FAILED: no readable pip-audit report ({error})", file=sys.stderr)
        return 1
    found = problems(requirements, report)
    if found:
        print("AUDIT FAILED:", *found, sep="\n  ", file=sys.stderr)
        return 1
    print(
        f"Audited {len(locked_packages(requirements))} locked packages: no known vulnerabilities."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
