"""Summarise ``py-spy record --format raw`` files of ``make bench --py-spy``.

Run: ``.venv/bin/python benchmarks/profile_summary.py var/profiles/sqlite-product-signin-*.txt``.
Prints the share of CPU samples spent inside each function (inclusive, counted once a stack),
the argon2 hash's share first, then the top functions of the project, of Django and of the rest,
with the hash's stacks left out of the percentages below its line.
"""

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for raw in stack.split(";"):
        match = FRAME.match(raw.strip())
        if match:
            out.append((match["function"], match["file"]))
        else:
            out.append((raw.strip(), ""))
    return out


def short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3.12/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def main(paths: list[str], top: int = 25) -> None:
    inclusive: Counter = Counter()
    total = hashed = 0
    for path in paths:
        for line in Path(path).read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            if "argon2" in stack:
                hashed += n
                continue
            seen = set()
            for function, file in frames(stack):
                key = (function, short(file))
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += n
    rest = total - hashed
    print(f"{total} samples; argon2 hash {100 * hashed / total:.1f} %; the rest ({rest}) below")
    groups = {
        "project": lambda f: f.startswith(("keys/", "benchmarks/", "csam_activation/")),
        "django": lambda f: f.startswith("django/"),
        "other": lambda f: not f.startswith(("keys/", "django/", "benchmarks/", "csam_")),
    }
    for name, wanted in groups.items():
        print(f"\n{name}: % of non-hash CPU, inclusive")
        rows = [(k, v) for k, v in inclusive.most_common() if wanted(k[1])]
        for (function, file), n in rows[:top]:
            print(f"  {100 * n / rest:5.1f}  {function} ({file})")


if __name__ == "__main__":
    main(sys.argv[1:])
