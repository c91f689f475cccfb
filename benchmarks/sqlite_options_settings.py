"""The project's settings with the SQLite ``OPTIONS`` given in ``BENCH_SQLITE_OPTIONS`` (JSON).

Only for comparing choices with ``benchmarks/concurrent_activations.py --sqlite-options``;
``'{}'`` is Django's default (deferred transactions, a 5 s busy timeout, rollback journal).
"""

import json
import os

from csam_activation.settings import *  # noqa: F403
from csam_activation.settings import DATABASES

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = json.loads(os.environ.get("BENCH_SQLITE_OPTIONS", "{}"))
