"""Every limit and lifetime of the service, in one place (SPEC §3).

Code reads ``limits.ACTIVATION_LINK_TTL`` and so on; a deployment overrides any value through
the ``CSAM`` dict in settings. Values are read at access time so ``override_settings`` works in
tests.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Activation link: >= 128 bits of randomness, valid 14 days (SPEC §1, §3).
    "ACTIVATION_LINK_TOKEN_BYTES": 32,
    "ACTIVATION_LINK_TTL": timedelta(days=14),
    # Paper activation code: 10 Crockford base32 characters, 5 wrong tries then locked.
    "ACTIVATION_CODE_LENGTH": 10,
    "ACTIVATION_CODE_MAX_ATTEMPTS": 5,
    # E-mail and SMS registration codes.
    "OTP_DIGITS": 6,
    "OTP_TTL": timedelta(minutes=10),
    "OTP_MAX_ATTEMPTS": 5,
    "OTP_RESEND_COOLDOWN": timedelta(seconds=60),
    "OTP_MAX_PER_HOUR": 5,
    # TOTP (RFC 6238).
    "TOTP_DIGITS": 6,
    "TOTP_INTERVAL": 30,
    "TOTP_VALID_WINDOW": 1,
    "TOTP_ISSUER": "CSAM",
    # Wrong app codes: OTP_MAX_ATTEMPTS in a row pause the key for this long (django-otp's
    # throttling, made to match the e-mail and SMS codes' limit).
    "TOTP_LOCKOUT": timedelta(minutes=15),
    # Deliveries (e-mail, SMS): retried with exponential backoff while the service is down.
    "DELIVERY_MAX_ATTEMPTS": 10,
    "DELIVERY_BACKOFF_BASE": timedelta(seconds=30),
    "DELIVERY_BACKOFF_MAX": timedelta(hours=1),
    # A message claimed by a worker longer than this (well above the SMTP and SMS timeouts)
    # belongs to a worker that died mid-send: it is sent again.
    "DELIVERY_CLAIM_TIMEOUT": timedelta(minutes=2),
    # Usernames.
    "USERNAME_MIN_LENGTH": 6,
    "USERNAME_MAX_LENGTH": 64,
    # Sessions.
    "WIZARD_IDLE_TIMEOUT": timedelta(minutes=30),
    "SIGNIN_IDLE_TIMEOUT": timedelta(minutes=15),
    # A key added in a session that did not sign in with an active digital key (a recovery
    # code): this long on probation (level "low" at most, not alone, cancellable by the citizen).
    "RECOVERY_KEY_PROBATION": timedelta(hours=72),
    # A staff member's session at /admin/ (keys/staff_site.py): 30 minutes without a request.
    "STAFF_IDLE_TIMEOUT": timedelta(minutes=30),
    # Sign-in failures.
    "SIGNIN_MAX_FAILURES": 5,
    "SIGNIN_FAILURE_WINDOW": timedelta(minutes=15),
    "SIGNIN_LOCKOUT": timedelta(minutes=15),
    # Rate limits on every endpoint that checks a secret: (requests, window) per identity.
    # The per-activation and per-key limits come on top of the attempt limits above.
    "RATE_LIMITS": {
        "link:ip": (30, timedelta(minutes=10)),
        "code:ip": (20, timedelta(minutes=10)),
        "code:activation": (10, timedelta(minutes=10)),
        "verify:ip": (30, timedelta(minutes=10)),
        "verify:key": (15, timedelta(minutes=10)),
        "resend:ip": (10, timedelta(minutes=10)),
        "resend:key": (10, timedelta(minutes=10)),
        "signin:ip": (30, timedelta(minutes=10)),
        # The options of a sign-in with a passkey alone, fetched by the sign-in page's script.
        "passkey-options:ip": (60, timedelta(minutes=10)),
        "reauth:user": (10, timedelta(minutes=10)),
        # The OpenID Connect token endpoint (oidc/views.py). A service's own budget counts only
        # the requests it authenticated (its secret right), so no one else can spend it; the
        # failures of unauthenticated requests (a wrong or no secret) count per address and per
        # client they name. Over its own budget or from an address over its failures: refused.
        # Over the failures naming it, only addresses with failures of their own are refused.
        "oidc-token:client": (300, timedelta(minutes=10)),
        "oidc-token:ip": (60, timedelta(minutes=10)),
        "oidc-token:client-failures": (60, timedelta(minutes=10)),
    },
    # Retention (manage.py prune_records, daily). Sign-in records (the attempts and the
    # sign-in audit events, with their addresses and browsers) are kept as long as the real
    # helpdesk shows a citizen's activity: 6 months. The rest of the audit trail (who
    # registered, issued, revoked, looked up, what the citizen did in the wizard) answers a
    # complaint or an inspection of a registration office, which concern the last year or two:
    # 24 months, then it goes too, so that no one's trail is kept for ever.
    "SIGNIN_RECORD_RETENTION": timedelta(days=183),
    "AUDIT_EVENT_RETENTION": timedelta(days=730),
    # Rows deleted a transaction: short transactions, no long lock on the tables.
    "PRUNE_BATCH_SIZE": 5000,
    # Minimum age to be issued digital keys (SPEC §1).
    "MINIMUM_AGE_YEARS": 12,
    # Terms of use: the version the citizen accepts is recorded.
    "TERMS_VERSION": "4.2",
    # Helpdesk contacts shown on every page (from the seed).
    "HELPDESK_PHONE": "02 740 79 91",
    "HELPDESK_EMAIL": "servicedesk.dto@bosa.fgov.be",
    "EID_HELPDESK_PHONE": "02 518 21 16",
    "EID_HELPDESK_EMAIL": "helpdesk.belpic@rrn.fgov.be",
    "HELP_PAGE_URL": "https://sma-help.fedict.belgium.be",
}


class _Limits:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        overrides = getattr(settings, "CSAM", {}) or {}
        return overrides.get(name, DEFAULTS[name])


limits = _Limits()
