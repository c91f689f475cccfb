"""Settings for csam-activation.

Every deployment-specific value comes from an environment variable (12-factor); the table in
README.md lists them all. The defaults are safe: ``DEBUG`` is off unless asked for, and without
``DEBUG`` a ``SECRET_KEY`` must be given.
"""

import ipaddress
import os
import secrets
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated environment variable into a list without empty items."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_networks(name: str, default: str = "") -> list[str]:
    """Read a comma-separated list of IP addresses or CIDR networks; refuse anything else."""
    values = env_list(name, default)
    for value in values:
        if value.lower() == "unix":
            continue
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {value!r} is neither an IP address nor a CIDR network."
            ) from None
    return values


DEBUG = env_bool("DEBUG")

# Commands that only generate or inspect code and files (a build step, a migrations check) run
# without secrets; they get a throw-away key. Everything that serves requests or touches data
# (runserver, gunicorn, migrate, issue_activation, check) needs the real SECRET_KEY.
KEYLESS_COMMANDS = {
    "makemigrations",
    "showmigrations",
    "makemessages",
    "compilemessages",
    "collectstatic",
}
_COMMAND = sys.argv[1] if len(sys.argv) > 1 and sys.argv[0].endswith("manage.py") else ""

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if _COMMAND in KEYLESS_COMMANDS:
        SECRET_KEY = secrets.token_urlsafe(50)
    elif not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (see the configuration table in README.md)."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

# Keys for the keyed hashes of activation codes and link tokens. The first key hashes new
# secrets; every key is tried when checking, so a key can be rotated without invalidating the
# activations already issued. Defaults to a key derived from SECRET_KEY.
ACTIVATION_HASH_KEYS = env_list("ACTIVATION_HASH_KEYS")

# Fernet keys for the TOTP seeds at rest, newest first (keys/crypto.py).
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# Passkeys (WebAuthn, keys/digital_keys/passkey/): the relying party's id and the origin the
# browser must report. Empty: derived from SITE_URL when used (its host name, its origin).
WEBAUTHN_RP_ID = os.environ.get("WEBAUTHN_RP_ID", "")
WEBAUTHN_ORIGIN = os.environ.get("WEBAUTHN_ORIGIN", "")
WEBAUTHN_RP_NAME = os.environ.get("WEBAUTHN_RP_NAME", "CSAM My Digital Keys")

# Recovery codes (keys/services/recovery.py), offered once a first key is active; off for a
# deployment that wants citizens who lost their keys to return to a registration office.
RECOVERY_CODES_ENABLED = env_bool("RECOVERY_CODES_ENABLED", default=True)

INSTALLED_APPS = [
    # django.contrib.admin, its site the back office's (staff sign-in with a second factor)
    "keys.apps.StaffAdminConfig",
    # before django.contrib.auth: its createsuperuser (keys/management/commands/) wins
    "keys",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "formtools",
    "django_tasks_db",
    "ops",
    "helpdesk",
    "oauth2_provider",
    "oidc",
]

# The header middleware sits outside LocaleMiddleware and CommonMiddleware: the redirects
# those two make (``/`` -> ``/nl/``, a missing slash) carry every security header too.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "ops.middleware.RequestIdMiddleware",  # X-Request-ID, and the request id of log lines
    "ops.middleware.MetricsMiddleware",  # requests by view and status, latency
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "oidc.middleware.ServiceReturnFormAction",  # inside the CSP middleware: adds to its policy
]

ROOT_URLCONF = "csam_activation.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "keys.context_processors.helpdesk",
            ],
        },
    },
]

# Widgets of the <input> family written in Python, the rest through Django's templates (issue 10)
FORM_RENDERER = "keys.forms_renderer.FastInputRenderer"

WSGI_APPLICATION = "csam_activation.wsgi.application"

VAR_DIR = BASE_DIR / "var"
if "DATABASE_URL" not in os.environ:
    VAR_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
# SQLite, the default database, under several gunicorn workers. With Django's defaults a
# transaction that has read and then writes fails at once with "database is locked" when another
# connection writes (SQLite cannot wait there without a deadlock, so no busy timeout helps):
# BEGIN IMMEDIATE takes the write lock when the transaction starts and waits up to `timeout`
# seconds for it. WAL lets reads go on beside the one writer; synchronous=NORMAL is safe with WAL
# (a power cut may lose the last commits, never corrupts). Measured with
# benchmarks/concurrent_activations.py, gunicorn with 2 workers on the 2-core reference machine,
# 24 activations 8 at a time, medians of 3 runs (failed / activations per second / p50):
#   Django's defaults                        62 of 72 failed
#   timeout 20 only / WAL + timeout 20       48 / 47 of 72 failed
#   IMMEDIATE (Django's 5 s timeout)          0 failed, 2.8/s, 2.8 s
#   IMMEDIATE, timeout 20                     0 failed, 3.3/s, 1.9 s
#   IMMEDIATE, timeout 20, WAL                0 failed, 4.2/s, 1.9 s
#   IMMEDIATE, timeout 20, WAL, NORMAL        0 failed, 5.3/s, 1.4 s   <- chosen
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "keys.User"
# Django's ModelBackend, the user of a signed-in request read with a prepared read.
AUTHENTICATION_BACKENDS = ["keys.backends.ModelBackend"]

# Argon2id first: every new password is hashed with it. The cost is chosen in keys/hashers.py.
PASSWORD_HASHERS = [
    "keys.hashers.CSAMArgon2PasswordHasher",
]
# The threads that compute one hash, at most its 2 lanes (the hash is the same either way). One:
# with as many busy sync workers as cores, a hash's second thread only takes a core from the other
# worker, and at each of the hash's 12 joins one core waits for the slower lane (measured with
# `make bench`: a tenth of both cores idle during app-key activations). Two halve a hash's latency
# where cores are to spare (fewer busy workers than cores).
try:
    ARGON2_THREADS = int(os.environ.get("ARGON2_THREADS", "1"))
except ValueError:
    ARGON2_THREADS = 0
if ARGON2_THREADS < 1:
    raise ImproperlyConfigured("ARGON2_THREADS must be a whole number of at least 1.")

# SPEC §3: min 8, max 128; the CSAM composition rule unless PASSWORD_POLICY=nist.
PASSWORD_POLICY = os.environ.get("PASSWORD_POLICY", "csam").strip().lower()
if PASSWORD_POLICY not in {"csam", "nist"}:
    raise ImproperlyConfigured("PASSWORD_POLICY must be 'csam' or 'nist'.")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "keys.validators.MaximumLengthValidator", "OPTIONS": {"max_length": 128}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if PASSWORD_POLICY == "csam":
    AUTH_PASSWORD_VALIDATORS.append({"NAME": "keys.validators.CSAMCompositionValidator"})

LANGUAGE_CODE = "nl"
LANGUAGES = [
    ("nl", _("Dutch")),
    ("fr", _("French")),
    ("de", _("German")),
    ("en", _("English")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Brussels"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Mail (Django 6.1 MAILERS). EMAIL_HOST set: SMTP there. The console (e-mails, activation links
# and codes included, printed on standard output, past the log redaction) only with DEBUG or when
# asked for by name (MAILER=console); without DEBUG and without either, the site does not start.
DEFAULT_FROM_EMAIL = os.environ.get(
    "DEFAULT_FROM_EMAIL", "CSAM My Digital Keys <noreply@csam-activation.localhost>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
MAILER = os.environ.get("MAILER", "").strip().lower()
if not MAILER:
    if os.environ.get("EMAIL_HOST"):
        MAILER = "smtp"
    elif DEBUG or _COMMAND in KEYLESS_COMMANDS:
        MAILER = "console"
    else:
        raise ImproperlyConfigured(
            "EMAIL_HOST must be set when DEBUG is off: e-mails carry activation links and codes. "
            "MAILER=console prints them on standard output instead (a test or loopback site only; "
            "check --deploy warns, keys.W002)."
        )
if MAILER not in {"smtp", "console"}:
    raise ImproperlyConfigured(f"MAILER={MAILER!r}: 'smtp' (with EMAIL_HOST) or 'console'.")
if MAILER == "smtp":
    if not os.environ.get("EMAIL_HOST"):
        raise ImproperlyConfigured("MAILER=smtp needs EMAIL_HOST (the SMTP server).")
    MAILERS = {
        "default": {
            "BACKEND": "keys.mail_backends.SMTPBackend",
            "OPTIONS": {
                "host": os.environ["EMAIL_HOST"],
                "port": int(os.environ.get("EMAIL_PORT", "25")),
                "username": os.environ.get("EMAIL_HOST_USER", ""),
                "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("EMAIL_USE_TLS"),
                "timeout": int(os.environ.get("EMAIL_TIMEOUT", "10")),
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "keys.mail_backends.ReadableConsoleBackend"}}

# Deliveries run as tasks (keys/delivery.py): at once in development, through the database and
# `manage.py db_worker` in production (TASKS_BACKEND=database), with retries and backoff.
if os.environ.get("TASKS_BACKEND", "immediate") == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
else:
    TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}

# SMS (SPEC §6): console, locmem, filebased, http, or a dotted path.
SMS_BACKEND = os.environ.get("SMS_BACKEND", "console")
SMS_FILE_PATH = os.environ.get("SMS_FILE_PATH", str(VAR_DIR / "sms"))
SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL", "")
SMS_GATEWAY_TOKEN = os.environ.get("SMS_GATEWAY_TOKEN", "")
SMS_GATEWAY_TIMEOUT = float(os.environ.get("SMS_GATEWAY_TIMEOUT", "10"))
SMS_SENDER = os.environ.get("SMS_SENDER", "CSAM")

# Cache: Redis when REDIS_URL is set, process memory otherwise.
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            # A Redis host that silently drops packets must not hang requests or /readyz.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Rendered page fragments that depend only on the language (the header's and footer's static
# parts, templates/base.html): in each process's memory, never in Redis (a round trip would
# cost more than rendering them).
CACHES["fragments"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "fragments",
    "TIMEOUT": None,
}

# Sessions and cookies. The cookie lives until the browser closes; the idle timeouts of the
# wizard (30 min) and of sign-in are enforced in the views (keys/conf.py), with a clear page.
# The server-side session is a hard cap of 2 hours.
SESSION_ENGINE = "keys.sessions"  # the database store, with fewer writes (keys/sessions.py)
SESSION_COOKIE_AGE = 2 * 60 * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SECURE_COOKIES = env_bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
LANGUAGE_COOKIE_SECURE = SECURE_COOKIES
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"

# Transport security: on by default outside DEBUG; a TLS-terminating proxy must set
# X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER below).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env_bool("BEHIND_TLS_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# The reverse proxies whose X-Forwarded-For is believed (addresses or CIDR networks, and `unix`
# for a peer on a Unix socket). Empty: the client's address is the socket's peer, whatever the
# headers say. keys/network.py derives the address for rate limits, the audit trail and sign-in.
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")

# Operating (ops/): /metrics answers only these client addresses (404 to anybody else); the
# probes and the metrics answer plain HTTP, so a probe can ask an instance directly.
METRICS_ALLOWED = env_networks("METRICS_ALLOWED", "127.0.0.1/32,::1/128")
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)$"]

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

LOGIN_URL = "admin:login"

# The OpenID Connect provider (oidc/, README "Signing in at other services"): on by default in
# DEBUG only. Turned on elsewhere (OIDC_PROVIDER_ENABLED=true) it needs its signing key from
# OIDC_RSA_PRIVATE_KEY or OIDC_RSA_PRIVATE_KEY_FILE (and OIDC_RSA_PREVIOUS_KEY[_FILE] while a
# rotation is under way): without one it refuses to start, it never makes a key of its own.
# In DEBUG a key is made once in var/oidc-rsa.pem (outside git).
OIDC_PROVIDER_ENABLED = env_bool("OIDC_PROVIDER_ENABLED", default=DEBUG)
from oidc.keyconfig import configured_keys, development_key, generate_pem  # noqa: E402

_OIDC_KEY, _OIDC_PREVIOUS_KEYS = configured_keys()
if OIDC_PROVIDER_ENABLED and not _OIDC_KEY:
    if DEBUG:
        _OIDC_KEY = development_key(VAR_DIR / "oidc-rsa.pem")
    elif _COMMAND in KEYLESS_COMMANDS:
        _OIDC_KEY = generate_pem()
    else:
        raise ImproperlyConfigured(
            "OIDC_PROVIDER_ENABLED is on but neither OIDC_RSA_PRIVATE_KEY nor "
            "OIDC_RSA_PRIVATE_KEY_FILE is set (see README, Signing in at other services)."
        )
# The issuer (`iss` of ID tokens, discovery) and the secret of the pairwise subject identifiers
# (HMAC of a service's sector and the citizen; changing it changes every service's `sub`). Both
# required like the signing key when the provider is on outside DEBUG: without OIDC_ISSUER the
# issuer would come from each request's Host header, without OIDC_PAIRWISE_SECRET from
# SECRET_KEY, so that rotating SECRET_KEY would change every citizen's `sub` at every service.
OIDC_ISSUER = os.environ.get("OIDC_ISSUER", "").strip().rstrip("/")
OIDC_PAIRWISE_SECRET = os.environ.get("OIDC_PAIRWISE_SECRET", "")
if OIDC_PROVIDER_ENABLED and not DEBUG and _COMMAND not in KEYLESS_COMMANDS:
    if not OIDC_ISSUER.startswith("https://") or "?" in OIDC_ISSUER or "#" in OIDC_ISSUER:
        raise ImproperlyConfigured(
            "OIDC_PROVIDER_ENABLED is on but OIDC_ISSUER is not set to the provider's https URL "
            "without query or fragment, e.g. https://sleutels.example.be (see README, Signing "
            "in at other services)."
        )
    if len(OIDC_PAIRWISE_SECRET) < 32:
        raise ImproperlyConfigured(
            "OIDC_PROVIDER_ENABLED is on but OIDC_PAIRWISE_SECRET is not set (at least 32 "
            "random characters, kept for ever: it makes the citizens' `sub` at every service; "
            "see README, Signing in at other services)."
        )
# Assurance level (keys.digital_keys.LEVELS) -> the acr value a service receives and asks for
# (FAS: urn:be:fedict:iam:fas:citizen:LevelNNN; oidc/levels.py). A service asking for a number
# between two values needs the level above it. "high" (Level450 itsme, Level500 eID card) is
# given by no key of this site: a service asking for it is refused.
OIDC_ACR_VALUES = {
    "low": "urn:be:fedict:iam:fas:citizen:Level200",
    "substantial": "urn:be:fedict:iam:fas:citizen:Level400",
    "high": "urn:be:fedict:iam:fas:citizen:Level500",
}
# django-oauth-toolkit's own models, named because they are swappable (migrations refer to them).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": _OIDC_KEY,
    "OIDC_RSA_PRIVATE_KEYS_INACTIVE": _OIDC_PREVIOUS_KEYS,
    "OIDC_ISS_ENDPOINT": OIDC_ISSUER,
    "OAUTH2_VALIDATOR_CLASS": "oidc.validators.CitizenValidator",
    "SCOPES": {
        "openid": "Sign in",
        "profile": "Name and language",
        "egovnrn": "National register number",
    },
    "DEFAULT_SCOPES": ["openid"],
    "PKCE_REQUIRED": True,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ACCESS_TOKEN_EXPIRE_SECONDS": 600,
    "ID_TOKEN_EXPIRE_SECONDS": 600,
    "REFRESH_TOKEN_EXPIRE_SECONDS": 8 * 3600,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": env_list(
        "OIDC_REDIRECT_URI_SCHEMES", "http,https" if DEBUG else "https"
    ),
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OIDC_SUBJECT_TYPES_SUPPORTED": ["pairwise"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code"],
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": not DEBUG,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}

# Every log goes to the console. The activation link's token never does: RedactLinkTokens
# (keys/logging.py) rewrites /activeren/<token>/ to /activeren/[redacted]/ on the loggers that
# log request paths (runserver's django.server, django.request) and on every handler. Django's
# own handlers for the "django" logger are replaced (its records reach the root's console; there
# is no ADMINS, so its mail_admins handler never sent anything). gunicorn: gunicorn.conf.py.
# LOG_FORMAT=json: one JSON object a line with the request id (ops/logging.py); e-mail addresses
# and phone numbers are masked on every handler too (MaskPersonalData).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_link_tokens": {"()": "keys.logging.RedactLinkTokens"},
        "mask_personal_data": {"()": "ops.logging.MaskPersonalData"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "ops.logging.JsonFormatter"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["redact_link_tokens", "mask_personal_data"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "django.server",
            "filters": ["redact_link_tokens", "mask_personal_data"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "filters": ["redact_link_tokens"]},
        "django.server": {
            "handlers": ["django.server"],
            "level": "INFO",
            "propagate": False,
            "filters": ["redact_link_tokens"],
        },
        "django.request": {"filters": ["redact_link_tokens"]},
        "django.db.backends": {"level": "WARNING"},
        "django.tasks": {"level": "WARNING"},
    },
}

# Limits and lifetimes of SPEC §3 live in keys/conf.py; override any of them here with
# CSAM = {"ACTIVATION_LINK_TTL": timedelta(days=14), ...}.
CSAM: dict = {}
# How long a message may stay claimed by a worker before it counts as left behind by a worker
# that died mid-send (keys/delivery.py); keep it well above EMAIL_TIMEOUT and the SMS timeout.
if os.environ.get("CSAM_DELIVERY_CLAIM_TIMEOUT"):
    from datetime import timedelta

    CSAM["DELIVERY_CLAIM_TIMEOUT"] = timedelta(
        seconds=float(os.environ["CSAM_DELIVERY_CLAIM_TIMEOUT"])
    )
