"""The floor of ``make bench``: the least a Django service doing the same job needs.

A minimal django-formtools ``SessionWizardView`` (three small forms, one argon2 hash at the
product's cost, one INSERT) and a minimal two-step sign-in (password, then a code sent by e-mail),
with Django's ``startproject`` middleware, database sessions, the same database and SQLite
options as the product and the same SMTP server. ``benchmarks/bench.py`` serves it with gunicorn
beside the product and prints every figure of the product as a ratio to this one.
"""

import os

import dj_database_url

DEBUG = False
SECRET_KEY = os.environ["SECRET_KEY"]
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "formtools",
]
MIDDLEWARE = [
    "benchmarks.querycount.QueryCountMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "benchmarks.floor.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": False,
        "DIRS": [os.path.join(os.path.dirname(__file__), "templates")],
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ["DATABASE_URL"],
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # as the product's
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's own argon2 hasher (timing itself for the benchmark) at the product's argon2id cost,
# whatever keys/hashers.py says: what a minimal service would use. The product's hasher computes
# the same hash in memory it keeps between hashes (keys/hashers.py); the floor does not.
# (``make bench BENCH_ARGS="--floor-hasher product"`` gives it the product's, for comparison.)
PASSWORD_HASHERS = [
    os.environ.get("BENCH_FLOOR_HASHER", "benchmarks.querycount.TimedStockArgon2Hasher")
]
AUTH_PASSWORD_VALIDATORS = [  # what Django's UserCreationForm checks by default
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": os.environ.get("EMAIL_HOST", "127.0.0.1"),
            "port": int(os.environ.get("EMAIL_PORT", "25")),
            "timeout": 10,
        },
    }
}
DEFAULT_FROM_EMAIL = "floor@example.be"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
USE_TZ = True
USE_I18N = False
LOGIN_URL = "/login/"
