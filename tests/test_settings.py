"""The configuration contract: safe defaults and a clean ``check --deploy``."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "SECRET_KEY": "x" * 20 + "Production-Secret-Key-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "sleutels.example.be",
    "DATABASE_URL": "sqlite:////tmp/csam-check.sqlite3",
    "SITE_URL": "https://sleutels.example.be",
    "EMAIL_HOST": "smtp.example.be",
    "FIELD_ENCRYPTION_KEYS": "ZmllbGQtZW5jcnlwdGlvbi1rZXktZm9yLXRlc3RzLTA=",
}


# The cache every worker shares (rate limits); check --deploy does not connect to it.
SHARED_CACHE = {"REDIS_URL": "redis://127.0.0.1:6379/1"}


def test_check_deploy_reports_nothing_with_production_variables():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, **SHARED_CACHE
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_that_rate_limits_in_process_memory_are_per_worker():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode != 0
    assert "keys.W001" in result.stderr
    assert "REDIS_URL" in result.stderr
    # A warning, not an error: a single-process site may run so.
    result = run_manage("check", "--deploy", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "keys.W001" in result.stderr


def test_debug_is_off_and_a_secret_key_is_required_by_default():
    result = run_manage("check", DATABASE_URL="sqlite:////tmp/csam-check.sqlite3")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_only_when_asked():
    code = "from django.conf import settings; print(settings.DEBUG, settings.SESSION_COOKIE_SECURE)"
    result = run_manage("shell", "--no-imports", "-c", code, **PRODUCTION)
    assert result.stdout.strip() == "False True"
    result = run_manage(
        "shell", "--no-imports", "-c", code, DEBUG="true", DATABASE_URL=PRODUCTION["DATABASE_URL"]
    )
    assert result.stdout.strip() == "True False"


def without(names: str, variables: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in variables.items() if name not in names.split()}


MAILER_CODE = "from django.conf import settings; print(settings.MAILERS['default']['BACKEND'])"


def test_email_host_switches_to_smtp():
    result = run_manage("shell", "--no-imports", "-c", MAILER_CODE, **PRODUCTION)
    assert result.stdout.strip() == "keys.mail_backends.SMTPBackend", result.stderr
    # In development (DEBUG) without a mail host, e-mails are printed on the console.
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        MAILER_CODE,
        DEBUG="true",
        DATABASE_URL=PRODUCTION["DATABASE_URL"],
    )
    assert result.stdout.strip() == "keys.mail_backends.ReadableConsoleBackend", result.stderr


def test_production_without_a_mail_host_does_not_start():
    """Activation links and codes printed on standard output would pass the log redaction:
    without DEBUG and without EMAIL_HOST the site refuses to start."""
    production = without("EMAIL_HOST", PRODUCTION)
    for command in (["check"], ["shell", "--no-imports", "-c", MAILER_CODE], ["migrate", "--plan"]):
        result = run_manage(*command, **production)
        assert result.returncode != 0, command
        assert "EMAIL_HOST must be set when DEBUG is off" in result.stderr
        assert "MAILER=console" in result.stderr
    # A build step needs neither secrets nor a mail host.
    result = run_manage("makemigrations", "--check", "--dry-run", **production)
    assert result.returncode == 0, result.stderr
    # Nonsense is refused, and MAILER=smtp needs its host.
    assert "MAILER='pigeon'" in run_manage("check", **production, MAILER="pigeon").stderr
    assert "MAILER=smtp needs EMAIL_HOST" in run_manage("check", **production, MAILER="smtp").stderr


def test_the_console_asked_for_by_name_starts_and_check_deploy_says_so():
    production = {**without("EMAIL_HOST", PRODUCTION), **SHARED_CACHE, "MAILER": "console"}
    result = run_manage("shell", "--no-imports", "-c", MAILER_CODE, **production)
    assert result.stdout.strip() == "keys.mail_backends.ReadableConsoleBackend", result.stderr
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **production)
    assert result.returncode != 0
    assert "keys.W002" in result.stderr
    assert "past the log redaction" in result.stderr
    # With an SMTP host the warning is gone (test_check_deploy_reports_nothing_...).


def test_check_deploy_warns_when_the_field_encryption_key_comes_from_the_secret_key():
    production = {**without("FIELD_ENCRYPTION_KEYS", PRODUCTION), **SHARED_CACHE}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **production)
    assert result.returncode != 0
    assert "keys.W003" in result.stderr
    assert "FIELD_ENCRYPTION_KEYS is not set" in result.stderr
    # A warning: the site still runs (development and existing deployments keep working).
    result = run_manage("check", "--deploy", **production)
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_commands_need_no_secret_but_serving_does():
    result = run_manage(
        "makemigrations", "--check", "--dry-run", DATABASE_URL=PRODUCTION["DATABASE_URL"]
    )
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout
    result = run_manage("migrate", "--plan", DATABASE_URL=PRODUCTION["DATABASE_URL"])
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_argon2_threads_must_be_a_whole_number_of_at_least_one():
    for wrong in ("0", "-1", "two"):
        result = run_manage("check", **PRODUCTION, ARGON2_THREADS=wrong)
        assert result.returncode != 0
        assert "ARGON2_THREADS must be a whole number of at least 1" in result.stderr
    assert run_manage("check", **PRODUCTION, ARGON2_THREADS="2").returncode == 0
