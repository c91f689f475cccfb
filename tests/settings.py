"""Settings for the test suite: the project's settings with test-only secrets.

``DATABASE_URL`` chooses the database as in production (SQLite by default, PostgreSQL in CI).
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# Without DEBUG the settings refuse to start without an SMTP host unless the console is named;
# the test runner replaces the mailer with its in-memory outbox anyway. Named for this import
# only: a process the tests start with EMAIL_HOST must not inherit it (it would win).
_NAMED_MAILER = "MAILER" not in os.environ and not os.environ.get("EMAIL_HOST")
if _NAMED_MAILER:
    os.environ["MAILER"] = "console"
# The OpenID Connect provider is on, with a key made for this test run (never one on disk).
os.environ.setdefault("OIDC_PROVIDER_ENABLED", "true")
os.environ.setdefault("OIDC_REDIRECT_URI_SCHEMES", "http,https")
if not os.environ.get("OIDC_RSA_PRIVATE_KEY"):
    from oidc.keyconfig import generate_pem

    os.environ["OIDC_RSA_PRIVATE_KEY"] = generate_pem()
# Required outside DEBUG with the provider on; the issuer is then taken back (below) so that
# each test's server (the test client's, the browser tests' live server) is its own issuer.
os.environ.setdefault("OIDC_ISSUER", "https://testserver")
os.environ.setdefault("OIDC_PAIRWISE_SECRET", "test-pairwise-secret-not-for-production-0123456789")

from csam_activation.settings import *  # noqa: E402, F403
from csam_activation.settings import BASE_DIR, OAUTH2_PROVIDER  # noqa: E402

if _NAMED_MAILER:
    del os.environ["MAILER"]

OAUTH2_PROVIDER = {**OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": ""}

SMS_BACKEND = "locmem"
SMS_FILE_PATH = str(BASE_DIR / "var" / "test-sms")
SITE_URL = "http://testserver"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# One password hash in two threads, one a lane (the same hash): a test waits for its hashes one
# at a time, so the second core halves the wait. The shipped default (1) is for a server whose
# cores all have a busy worker (csam_activation/settings.py); tests/test_hashers.py checks both.
ARGON2_THREADS = 2
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
