"""Settings for the test suite: the project's settings with test-only secrets.

``DATABASE_URL`` chooses the database as in production (SQLite by default, PostgreSQL in CI).
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from csam_activation.settings import *  # noqa: F403
from csam_activation.settings import BASE_DIR

SMS_BACKEND = "locmem"
SMS_FILE_PATH = str(BASE_DIR / "var" / "test-sms")
SITE_URL = "http://testserver"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
