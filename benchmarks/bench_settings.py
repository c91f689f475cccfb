"""The project's production settings plus the benchmark's query counter (``make bench`` only).

Everything else is ``csam_activation.settings`` as deployed: ``DEBUG`` off, the static files
through WhiteNoise's manifest (collected by the benchmark into ``BENCH_STATIC_ROOT``).
"""

import os

from csam_activation.settings import *  # noqa: F403
from csam_activation.settings import MIDDLEWARE

MIDDLEWARE = ["benchmarks.querycount.QueryCountMiddleware", *MIDDLEWARE]
PASSWORD_HASHERS = ["benchmarks.querycount.TimedArgon2Hasher"]  # keys.hashers', timing itself
if os.environ.get("BENCH_STATIC_ROOT"):
    STATIC_ROOT = os.environ["BENCH_STATIC_ROOT"]
