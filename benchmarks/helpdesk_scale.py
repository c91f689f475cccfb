"""The helpdesk's pages at a country's scale: p95 of each search and list, with query counts.

Run against a database filled by ``manage.py seed_data`` (PostgreSQL, 1 000 000 citizens)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/csam_scale \\
        .venv/bin/python benchmarks/helpdesk_scale.py [--runs 40] [--json]

Each page is requested in-process with Django's test ``Client`` (the whole request: middleware,
session, the admin's changelist and its template; no HTTP server, no network), signed in as a
helpdesk agent (``seed.helpdesk``, created with an unusable password). The production settings
are used with ``DEBUG`` off; only the static files' storage is the plain one (no manifest
needed). Every search is made with a different, real citizen's data, typed as people type it:

- name: part of the last name and the first name, without accents, in another case
  ("lefev marie" for Marie Lefèvre);
- national number: with dots and a dash ("85.07.30-033.28");
- e-mail: the whole address, in another case;
- username: the whole username, in upper case.

Prints, for each page, the p50, p95 and maximum over ``--runs`` requests (after two warm-up
requests), the queries of one request (the most seen) and the slowest query's time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csam_activation.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-0123456789-abcdefghijklmnop")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("MAILER", "console")

import django

django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import NoReverseMatch, reverse  # noqa: E402

from keys.models import Activation, AuditEvent, Citizen, DigitalKey, User  # noqa: E402
from keys.search import fold  # noqa: E402

TARGET_MS = 100
FUNNEL_TARGET_MS = 1000
STATIC = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


class Counted:
    """Counts the queries of one request and times the slowest."""

    def __init__(self) -> None:
        self.count = 0
        self.slowest = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.slowest = max(self.slowest, time.perf_counter() - started)


def measure(client: Client, urls: list[tuple[str, dict]], runs: int) -> dict:
    times, cpu, counts, slowest = [], [], Counter(), []
    for url, query in urls[:2]:  # warm-up
        client.get(url, query)
    for index in range(runs):
        url, query = urls[index % len(urls)]
        counter = Counted()
        with connection.execute_wrapper(counter):
            started, started_cpu = time.perf_counter(), time.thread_time()
            response = client.get(url, query)
            elapsed = time.perf_counter() - started
            cpu.append((time.thread_time() - started_cpu) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} {query}: HTTP {response.status_code}")
        times.append(elapsed * 1000)
        counts[counter.count] += 1
        slowest.append(counter.slowest * 1000)
    times.sort()
    p95 = times[max(0, round(0.95 * len(times)) - 1)]
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(times[-1], 1),
        "cpu_p50_ms": round(statistics.median(cpu), 1),
        "queries": counts.most_common(1)[0][0],
        "queries_range": [min(counts), max(counts)],
        "slowest_query_p95_ms": round(sorted(slowest)[max(0, int(0.95 * len(slowest)) - 1)], 1),
    }


def helpdesk_agent() -> User:
    user = User.objects.filter(username_canonical="seed.helpdesk").first()
    if user is None:
        user = User(username="seed.helpdesk", email="seed.helpdesk@example.invalid", is_staff=True)
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name="Helpdesk"))
    return user


def signed_in_as_staff(client: Client, user: User) -> None:
    """Signed in as the back office's sign-in leaves a session: password (``force_login``) and
    second factor (``keys.services.staff.mark_verified``, with the agent's app key)."""
    from keys.digital_keys import get_kind
    from keys.services.staff import mark_verified

    key = DigitalKey.objects.filter(user=user, kind="totp", state="active").first()
    if key is None:
        key = DigitalKey(user=user, kind="totp", state="active")
        get_kind(key.kind).enrol(key)
        key.save(force_insert=True)
    client.force_login(user)
    session = client.session
    mark_verified(session, user, key)
    session.save()


def sample_citizens(count: int, rng: random.Random) -> list[Citizen]:
    """Random citizens with an account, picked by id (no ORDER BY random() over a million)."""
    top = Citizen.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    found: list[Citizen] = []
    while len(found) < count:
        start = rng.randint(1, max(top, 1))
        citizen = (
            Citizen.objects.select_related("account")
            .filter(pk__gte=start, account__isnull=False)
            .order_by("pk")
            .first()
        )
        if citizen is not None and citizen not in found:
            found.append(citizen)
    return found


def typed_name(citizen: Citizen, rng: random.Random) -> str:
    last = fold(citizen.last_name).split()[-1]
    first = fold(citizen.first_name).split()[0]
    part = last[: max(4, len(last) - rng.randint(0, 2))]
    return f"{part} {first}".upper() if rng.random() < 0.5 else f"{part} {first}"


def swap_case(text: str) -> str:
    return "".join(c.upper() if i % 2 else c for i, c in enumerate(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="requests per page (default 40)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - picking samples

    with override_settings(STORAGES={**django.conf.settings.STORAGES, **STATIC}):
        client = Client()
        signed_in_as_staff(client, helpdesk_agent())
        people = sample_citizens(args.runs, rng)
        citizens = reverse("admin:keys_citizen_changelist")
        activations = reverse("admin:keys_activation_changelist")
        searches: dict[str, Callable[[Citizen], str]] = {
            "name": lambda c: typed_name(c, rng),
            "national number": lambda c: c.national_number_display,
            "e-mail": lambda c: swap_case(c.email),
            "username": lambda c: c.account.username.upper(),
        }
        pages: dict[str, tuple[list[tuple[str, dict]], int]] = {}
        for kind, term in searches.items():
            terms = [term(c) for c in people]
            pages[f"citizens, search by {kind}"] = (
                [(citizens, {"q": t}) for t in terms],
                TARGET_MS,
            )
            pages[f"activations, search by {kind}"] = (
                [(activations, {"q": t}) for t in terms],
                TARGET_MS,
            )
        deep = [str(rng.randint(2, 200)) for _ in range(args.runs)]
        pages["citizens, list (page 1)"] = ([(citizens, {})], TARGET_MS)
        pages["citizens, list (pages 2-200)"] = ([(citizens, {"p": p}) for p in deep], TARGET_MS)
        pages["activations, list (page 1)"] = ([(activations, {})], TARGET_MS)
        pages["activations, state: expired"] = ([(activations, {"state": "expired"})], TARGET_MS)
        pages["activations, state: locked"] = ([(activations, {"state": "locked"})], TARGET_MS)
        audit = reverse("admin:keys_auditevent_changelist")
        pages["audit events, list (page 1)"] = ([(audit, {})], TARGET_MS)
        pages["audit events, search by national number"] = (
            [(audit, {"q": c.national_number_display}) for c in people],
            TARGET_MS,
        )
        clerks = list(
            User.objects.filter(username__startswith="seed.clerk.").values_list(
                "username", flat=True
            )[: args.runs]
        )
        if clerks:
            pages["audit events, search by a clerk's username"] = (
                [(audit, {"q": name}) for name in clerks],
                TARGET_MS,
            )
        try:
            funnel = reverse("helpdesk:funnel")
            pages["funnel (default period)"] = ([(funnel, {})], FUNNEL_TARGET_MS)
        except NoReverseMatch:
            pass

        results = {}
        for name, (urls, target) in pages.items():
            result = measure(client, urls, args.runs)
            result["target_ms"] = target
            results[name] = result
            if not args.json:
                ok = "ok" if result["p95_ms"] < target else "SLOW"
                print(
                    f"{name:38} p50 {result['p50_ms']:7.1f}  p95 {result['p95_ms']:7.1f}  "
                    f"max {result['max_ms']:7.1f} ms  (CPU p50 {result['cpu_p50_ms']:6.1f} ms)  "
                    f"{result['queries']:2d} queries  "
                    f"slowest query {result['slowest_query_p95_ms']:6.1f} ms  "
                    f"(< {target} ms: {ok})",
                    flush=True,
                )
    header = {
        "database": connection.vendor,
        "citizens": Citizen.objects.order_by("-pk").values_list("pk", flat=True).first(),
        "activations_estimate": _estimate(Activation),
        "audit_events_estimate": _estimate(AuditEvent),
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "client": "django.test.Client, in-process",
    }
    if args.json:
        print(json.dumps({**header, "pages": results}, indent=2))
    else:
        print(", ".join(f"{k}: {v}" for k, v in header.items()))


def _estimate(model: type) -> int | None:
    from keys.paginators import estimated_rows

    return estimated_rows(model.objects.all())


if __name__ == "__main__":
    main()
