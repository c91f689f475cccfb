"""Profile the product's flows in one process: cProfile over N app-key activations and N
sign-ins, driven through Django's full middleware stack with the test client.

Run: ``.venv/bin/python benchmarks/profile_flow.py [N] [--sort tottime|cumtime] [--top 40]``
(``PROFILE_PAGES=1``: CPU per page; ``PROFILE_PAGE=<regex>``: the profile of those pages only).
Production settings (``DEBUG`` off, ``benchmarks.bench_settings``), a throw-away SQLite file,
e-mail through the product's SMTP backend to no server (``benchmarks/wire_mail.py``). It prints,
per flow, the CPU per request with the argon2 hash excluded (measured around the hasher, as
``make bench`` does), queries per request, and the profile's top functions. It complements
``make bench`` (gunicorn, concurrency): the call counts here are exact and repeatable, so a
change's effect on the Python work per request shows at once.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import email
import email.policy
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = Path(tempfile.mkdtemp(prefix="csam-prof-"))
os.environ.update(
    {
        "DEBUG": "false",
        "SECRET_KEY": "profile-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "SECURE_COOKIES": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "DATABASE_URL": os.environ.get("PROFILE_DATABASE_URL", f"sqlite:///{TMP / 'p.sqlite3'}"),
        "SITE_URL": "http://testserver",
        "MAILER": "console",
        "LOG_LEVEL": "WARNING",
        "BENCH_STATIC_ROOT": str(TMP / "static"),
        "DJANGO_SETTINGS_MODULE": "benchmarks.bench_settings",
    }
)
for name in ("TASKS_BACKEND", "REDIS_URL", "SMS_BACKEND", "EMAIL_HOST"):
    os.environ.pop(name, None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from benchmarks.concurrent_activations import totp_now  # noqa: E402
from benchmarks.wire_mail import SENT  # noqa: E402

#: What a browser sends a form without files as (the test client would send multipart).
FORM = "application/x-www-form-urlencoded"
PASSWORD = "Correct-Horse-9x"  # noqa: S105 - the simulated citizens' password
CLIENT = Client()
SEEN = [0]
SQL = os.environ.get("PROFILE_SQL") == "1"
#: ``PROFILE_PAGE=<regex>``: cProfile only the requests whose page ("GET /nl/activatie/verify/")
#: matches, and print their profile at the end (``--sort``, ``--top``).
PAGE = re.compile(os.environ["PROFILE_PAGE"]) if os.environ.get("PROFILE_PAGE") else None
PAGE_PROFILE = cProfile.Profile()


def cpu() -> float:
    return time.process_time()


class Measured:
    def __init__(self) -> None:
        self.requests = 0
        self.queries = 0
        self.cpu = 0.0
        self.hash_ms = 0.0
        self.by_page: dict[str, list[float]] = {}

    def send(self, client: Client, method: str, path: str, data: dict | None = None):
        response = None
        while True:
            # Capturing the SQL forces Django's debug cursor (it formats every query): only
            # with PROFILE_SQL=1, whose CPU figures are then inflated.
            page = f"{method} {re.sub(r'/[A-Za-z0-9_-]{20,}/', '/<token>/', path)}"
            profiled = PAGE is not None and PAGE.search(page)
            if profiled:
                PAGE_PROFILE.enable()
            start = cpu()
            with CaptureQueriesContext(connection) if SQL else contextlib.nullcontext() as captured:
                response = (
                    client.get(path)
                    if method == "GET"
                    else client.post(path, urlencode(data or {}), content_type=FORM)
                )
            spent = cpu() - start
            if profiled:
                PAGE_PROFILE.disable()
            self.cpu += spent
            hashed = float(response.headers.get("X-Hash-CPU-ms", "0"))
            entry = self.by_page.setdefault(page, [0, 0.0, 0])
            entry[0] += 1
            entry[1] += spent * 1000 - hashed
            entry[2] += int(response.headers.get("X-Query-Count", "0"))
            if SQL:
                print(f"--- {method} {path} -> {response.status_code}: {len(captured)} queries")
                for query in captured:
                    print("   ", query["sql"][:220])
            self.requests += 1
            self.queries += int(response.headers.get("X-Query-Count", "0"))
            self.hash_ms += float(response.headers.get("X-Hash-CPU-ms", "0"))
            if response.status_code in (301, 302, 303):
                method, path, data = "GET", response["Location"], None
                continue
            return response

    def report(self, name: str, flows: int) -> None:
        without = self.cpu * 1000 - self.hash_ms
        print(
            f"{name}: {flows} flows, {self.requests / flows:.1f} requests/flow, "
            f"{without / flows:.1f} ms CPU/flow without hash, "
            f"{without / self.requests:.2f} ms/request, "
            f"{self.queries / self.requests:.1f} queries/request"
        )
        if os.environ.get("PROFILE_PAGES") == "1":
            for page, (count, ms, queries) in self.by_page.items():
                print(f"    {page:<48} {count:5d}x {ms / count:6.2f} ms {queries / count:5.1f} q")


def issue(count: int) -> list[dict]:
    from keys.models import Citizen, RegistrationOffice
    from keys.services import issuance

    office, _ = RegistrationOffice.objects.get_or_create(code="prof", defaults={"name": "Prof"})
    jobs = []
    for i in range(count):
        first_nine = f"85{(i // 28) % 12 + 1:02d}{i % 28 + 1:02d}{i % 998 + 1:03d}"
        citizen = Citizen.objects.create(
            first_name="Prof",
            last_name=f"Citizen {i}",
            national_number=first_nine + f"{97 - int(first_nine) % 97:02d}",
            email=f"prof.{i}@example.be",
            language="nl",
            id_document_type="id_card",
            id_document_number=f"P{i}",
            office=office,
        )
        result = issuance.issue_activation(citizen, issued_by=None)
        jobs.append(
            {
                "username": f"prof.{i}",
                "email": citizen.email,
                "link": result.activation_link,
                "code": result.formatted_code,
            }
        )
    return jobs


def last_code(address: str) -> str:
    """The code in the newest message to ``address`` (its text part's first line)."""
    for recipients, raw in reversed(SENT):
        if address in recipients:
            message = email.message_from_bytes(raw, policy=email.policy.default)
            text = message.get_body(preferencelist=("plain",)).get_content()
            return re.search(r"\b(\d{6})\b", text).group(1)
    raise LookupError(address)


def step(m: Measured, client: Client, page, fields: dict):
    """Post a wizard step as a browser does: the form's own prefix and management field."""
    html = page.content.decode()
    found = re.search(r'name="([\w-]+)-current_step" value="(\w+)"', html)
    wizard, current = found.group(1), found.group(2)
    data = {f"{wizard}-current_step": current, **{f"{current}-{k}": v for k, v in fields.items()}}
    return m.send(client, "POST", page.wsgi_request.path, data)


def fresh_client() -> Client:
    """A new browser (no cookies) on the one request handler, whose middleware is loaded once,
    as in a server's worker (WhiteNoise's start-up scan of the static files would count)."""
    CLIENT.cookies.clear()
    # A citizen of their own address each, as in ``make bench`` (per-address limits).
    SEEN[0] += 1
    CLIENT.defaults["REMOTE_ADDR"] = (
        f"10.{SEEN[0] // 65536 % 256}.{SEEN[0] // 256 % 256}.{SEEN[0] % 256}"
    )
    return CLIENT


def activate(m: Measured, job: dict, kind: str) -> None:
    client = fresh_client()
    page = m.send(client, "GET", job["link"].split("testserver", 1)[-1])
    page = step(m, client, page, {"activation_code": job["code"]})
    page = step(m, client, page, {"kind": kind, "accept_terms": "on"})
    page = step(
        m,
        client,
        page,
        {"username": job["username"], "password": PASSWORD, "password_confirm": PASSWORD},
    )
    code = totp_now(page.content.decode()) if kind == "totp" else last_code(job["email"])
    page = step(m, client, page, {"code": code})
    page = step(m, client, page, {"next_action": "done"})
    if "afgemeld" not in page.wsgi_request.path:
        raise RuntimeError(f"activation ended on {page.wsgi_request.path}")


def sign_in(m: Measured, job: dict, browser: dict) -> None:
    client = fresh_client()
    if job["username"] in browser:
        client.cookies["csam_browser"] = browser[job["username"]]
    m.send(client, "GET", "/nl/aanmelden/")
    page = m.send(
        client, "POST", "/nl/aanmelden/", {"username": job["username"], "password": PASSWORD}
    )
    key = re.search(r'name="key" value="(\d+)"', page.content.decode()).group(1)
    m.send(client, "POST", "/nl/aanmelden/sleutel/", {"key": key})
    page = m.send(client, "POST", "/nl/aanmelden/code/", {"code": last_code(job["email"])})
    if not page.wsgi_request.path.endswith("mijn-sleutels/"):
        raise RuntimeError(f"sign-in ended on {page.wsgi_request.path}")
    browser[job["username"]] = client.cookies["csam_browser"].value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=10)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--flows", default="totp,email,signin")
    parser.add_argument("--out", default="")
    parser.add_argument(
        "--profile", action="store_true", help="run under cProfile (which inflates the CPU)"
    )
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    # The product's SMTP backend, formatting as in production, its bytes kept here.
    settings.MAILERS = {
        "default": {"BACKEND": "benchmarks.wire_mail.WireBackend", "OPTIONS": {"host": "-"}}
    }
    flows = args.flows.split(",")
    warm = issue(2 + 2 * args.n)
    for job in warm[:2]:
        activate(Measured(), job, "totp")
    jobs = warm[2:]
    browser: dict = {}
    for flow in flows:
        m = Measured()
        profile = cProfile.Profile()
        if args.profile:
            profile.enable()
        if flow in ("totp", "email"):
            batch = jobs[: args.n] if flow == "totp" else jobs[args.n :]
            for job in batch:
                activate(m, job, flow)
            count = len(batch)
        else:
            count = 0
            for _round in range(3):
                for job in jobs[args.n :]:
                    sign_in(m, job, browser)
                    count += 1
        profile.disable()
        m.report(flow, count)
        if not args.profile:
            continue
        stats = pstats.Stats(profile)
        if args.out:
            stats.dump_stats(f"{args.out}-{flow}.pstats")
        stats.sort_stats(args.sort).print_stats(args.top)
    if PAGE is not None:
        print(f"--- the requests matching PROFILE_PAGE={PAGE.pattern!r}")
        page_stats = pstats.Stats(PAGE_PROFILE)
        if args.out:
            page_stats.dump_stats(f"{args.out}-pages.pstats")
        page_stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
