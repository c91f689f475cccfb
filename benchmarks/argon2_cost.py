"""Measure argon2id hashing time for candidate cost parameters on this machine.

Run: ``uv run python benchmarks/argon2_cost.py``. The result chose the parameters of
``keys.hashers.CSAMArgon2PasswordHasher``; see its docstring.
"""

import statistics
import time

import argon2

CANDIDATES = [
    # (time_cost, memory_cost KiB, parallelism)
    (2, 19 * 1024, 1),  # OWASP minimum
    (2, 46 * 1024, 1),  # OWASP alternative
    (3, 64 * 1024, 1),
    (2, 102400, 8),  # Django 6.1 default
    (3, 64 * 1024, 4),
    (4, 64 * 1024, 2),
    (3, 64 * 1024, 2),
]


def main() -> None:
    for t, m, p in CANDIDATES:
        hasher = argon2.PasswordHasher(time_cost=t, memory_cost=m, parallelism=p)
        hasher.hash("warm-up")
        samples = []
        for _ in range(10):
            start = time.perf_counter()
            hasher.hash("Correct-Horse-9")
            samples.append((time.perf_counter() - start) * 1000)
        print(
            f"t={t} m={m // 1024:>3} MiB p={p}: median {statistics.median(samples):6.1f} ms, "
            f"max {max(samples):6.1f} ms"
        )


if __name__ == "__main__":
    main()
