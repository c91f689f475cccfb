"""Time each request of a complete activation (e-mail key), median over several citizens.

Run: ``uv run python benchmarks/wizard_flow.py [runs]``. Uses a throw-away test database
(SQLite by default, or DATABASE_URL) and the in-memory mail backend; the account step includes
one argon2id hash (see argon2_cost.py).
"""

import os
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.core import mail  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def one_activation(i: int, office, timings: dict[str, list[float]]) -> None:
    """Walk one citizen through the wizard, timing every request."""
    from keys.models import Citizen
    from keys.services import issuance

    first_nine = f"8501{(i % 28) + 1:02d}{100 + i:03d}"
    citizen = Citizen.objects.create(
        first_name="Bench",
        last_name=str(i),
        national_number=first_nine + f"{97 - int(first_nine) % 97:02d}",
        email=f"bench{i}@example.be",
        id_document_type="id_card",
        id_document_number=str(i),
        office=office,
    )
    issued = issuance.issue_activation(citizen, issued_by=None)
    client = Client()

    def timed(name, call):
        start = time.perf_counter()
        response = call()
        timings[name].append((time.perf_counter() - start) * 1000)
        return response

    def post(step, data):
        payload = {"activation_wizard-current_step": step}
        payload.update({f"{step}-{k}": v for k, v in data.items()})
        return client.post(f"/nl/activatie/{step}/", payload)

    timed(
        "open link",
        lambda: client.get(issued.activation_link.replace("http://testserver", "")),
    )
    timed("GET code", lambda: client.get("/nl/activatie/code/"))
    timed("POST code", lambda: post("code", {"activation_code": issued.formatted_code}))
    timed("POST key", lambda: post("key", {"kind": "email", "accept_terms": "on"}))
    timed(
        "POST account",
        lambda: post(
            "account",
            {
                "username": f"bench.user{i}",
                "password": "Correct-Horse-9x",
                "password_confirm": "Correct-Horse-9x",
            },
        ),
    )
    timed("GET verify", lambda: client.get("/nl/activatie/verify/"))
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    timed("POST verify", lambda: post("verify", {"code": code}))
    timed("POST done", lambda: post("activated", {"next_action": "done"}))


def main(runs: int) -> None:
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0)
    from keys.models import RegistrationOffice

    office = RegistrationOffice.objects.create(code="bench", name="Bench")
    timings: dict[str, list[float]] = defaultdict(list)
    try:
        for i in range(runs):
            one_activation(i, office, timings)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"{connection.vendor}, {runs} activations, median / max ms per request")
    for name, values in timings.items():
        print(f"  {name:<13} {statistics.median(values):7.1f} {max(values):7.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
