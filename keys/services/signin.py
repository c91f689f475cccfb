"""Signing in with username, password and a digital key, and the account's own changes.

Failures are counted per canonical username whether or not the account exists, and the answer
to a wrong username is the same as to a wrong password, so nothing tells which usernames exist.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.contrib.auth import authenticate, logout
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from keys import audit
from keys.conf import limits
from keys.digital_keys import Outcome, VerifyResult, get_kind
from keys.mail import build_email
from keys.models import (
    AuditEvent,
    DigitalKey,
    KnownBrowser,
    SignInAttempt,
    SignInGuard,
    User,
)
from keys.prepared import PreparedRead, delete_row, insert, update_row, update_where
from keys.validators import canonical_username

Action = AuditEvent.Action


class SignInOutcome(StrEnum):
    OK = "ok"
    INVALID = "invalid"
    LOCKED = "locked"


@dataclass(frozen=True)
class SignInResult:
    outcome: SignInOutcome
    user: User | None = None
    retry_after_minutes: int = 0


def locked_message(minutes: int) -> str:
    """What every sign-in page (citizens', staff's, a recovery code's, a passkey's) says when
    the username's lockout holds, in the active language."""
    return _(
        "Too many failed attempts. For your safety, signing in with this "
        "username is paused for %(minutes)d minutes."
    ) % {"minutes": minutes}


def _canonical(username: str) -> str:
    return canonical_username((username or "").strip())[:256]


# Read at every password and code check, their SQL built once per connection (keys/prepared.py):
# the username's guard row (locked) and its newest attempts.
_GUARD = PreparedRead(SignInGuard.objects.select_for_update(), "username_canonical")


_ANY_ACTIVE_KEY = PreparedRead(
    DigitalKey.objects.filter(state=DigitalKey.State.ACTIVE).only("pk"), "user_id", limit=1
)


@functools.cache
def _recent_attempts(count: int) -> PreparedRead[SignInAttempt]:
    return PreparedRead(
        SignInAttempt.objects.order_by("-created_at"),
        "username_canonical",
        "created_at__gt",
        limit=count,
    )


def lockout_remaining(username: str) -> int:
    """Minutes left of a lockout for this username (0 when none): ``SIGNIN_MAX_FAILURES``
    failures within ``SIGNIN_FAILURE_WINDOW``, counted since the last success, lock it for
    ``SIGNIN_LOCKOUT`` after the last of them."""
    canonical = _canonical(username)
    now = timezone.now()
    attempts = _recent_attempts(limits.SIGNIN_MAX_FAILURES).all(
        username_canonical=canonical, created_at__gt=now - limits.SIGNIN_FAILURE_WINDOW
    )
    failures = []
    for attempt in attempts:
        if attempt.succeeded:
            break
        failures.append(attempt)
    if len(failures) < limits.SIGNIN_MAX_FAILURES:
        return 0
    locked_until = failures[0].created_at + limits.SIGNIN_LOCKOUT
    if locked_until <= now:
        return 0
    return max(1, int((locked_until - now).total_seconds() + 59) // 60)


def _reserve(request: HttpRequest, username: str) -> tuple[SignInAttempt | None, int]:
    """Count a try before it is checked: ``(attempt, 0)``, or ``(None, minutes)`` when locked.

    The try is written as a failure, under the lock of the username's guard row, before the
    slow password hash or code check runs (outside the lock). Parallel guesses are therefore
    counted one after the other and no more than ``SIGNIN_MAX_FAILURES`` of them are checked.
    A try that turns out right is taken back (:func:`_release`).
    """
    canonical = _canonical(username)
    with transaction.atomic():
        # The guard row, made on first use, locked either way (one query where it exists).
        if _GUARD.first(username_canonical=canonical) is None:
            try:
                with transaction.atomic():
                    SignInGuard.objects.create(username_canonical=canonical)
            except IntegrityError:
                # Made meanwhile by a concurrent try, which held its lock until it committed.
                _GUARD.first(username_canonical=canonical)
        minutes = lockout_remaining(username)
        if minutes:
            return None, minutes
        attempt = insert(
            SignInAttempt(
                username_canonical=canonical, ip_address=audit.client_ip(request), succeeded=False
            )
        )
    return attempt, 0


def _release(attempt: SignInAttempt) -> None:
    """A reserved try was right: it is no failure (a full sign-in records its own success)."""
    delete_row(SignInAttempt, attempt.pk)


def _audit_failure(request: HttpRequest, username: str, user: User | None, reason: str) -> None:
    canonical = _canonical(username)
    citizen = getattr(user, "citizen", None) if user else None
    audit.record(
        Action.SIGNIN_FAILED,
        request=request,
        actor=user,
        actor_label=canonical[:150],
        citizen=citizen,
        reason=reason,
    )
    if lockout_remaining(username):
        audit.record(
            Action.SIGNIN_LOCKED,
            request=request,
            actor=user,
            actor_label=canonical[:150],
            citizen=citizen,
        )


@sensitive_variables("password")
def check_password(request: HttpRequest, username: str, password: str) -> SignInResult:
    """The first factor. Only citizens with at least one active key can go on."""
    attempt, minutes = _reserve(request, username)
    if attempt is None:
        return SignInResult(SignInOutcome.LOCKED, retry_after_minutes=minutes)
    user = authenticate(request, username=username, password=password)
    eligible = (
        user is not None
        and not user.is_staff
        and hasattr(user, "citizen")
        and bool(_ANY_ACTIVE_KEY.all(user_id=user.pk))
    )
    if not eligible:
        _audit_failure(request, username, user, "password")
        minutes = lockout_remaining(username)
        if minutes:
            return SignInResult(SignInOutcome.LOCKED, retry_after_minutes=minutes)
        return SignInResult(SignInOutcome.INVALID)
    _release(attempt)
    return SignInResult(SignInOutcome.OK, user=user)


@sensitive_variables("code")
def check_key(request: HttpRequest, user: User, key: DigitalKey, code: str) -> VerifyResult:
    """The second factor, through the same key module as the activation; its failures count
    against the same lockout as wrong passwords."""
    if key.user_id != user.pk or key.state != DigitalKey.State.ACTIVE:
        return VerifyResult(Outcome.NO_CODE)
    attempt, minutes = _reserve(request, user.username)
    if attempt is None:
        return VerifyResult(Outcome.LOCKED, 0, retry_after_seconds=minutes * 60)
    result = get_kind(key.kind).verify(key, code, request=request)
    if result.ok:
        # The reserved try was the sign-in's success: one UPDATE, where taking it back and
        # recording the success took a DELETE in a transaction and an INSERT.
        update_row(SignInAttempt, attempt.pk, succeeded=True)
    else:
        _audit_failure(request, user.username, user, f"key:{result.outcome}")
    return result


def record_success(
    request: HttpRequest, user: User, key: DigitalKey, *, attempt_recorded: bool = False
) -> None:
    """A full sign-in: its success ends the run of failures (unless :func:`check_key` already
    turned its reserved try into the success), the key's last use, the audit event."""
    if not attempt_recorded:
        insert(
            SignInAttempt(
                username_canonical=user.username_canonical,
                ip_address=audit.client_ip(request),
                succeeded=True,
            )
        )
    update_row(DigitalKey, key.pk, last_used_at=timezone.now())
    audit.record(
        Action.SIGNIN_SUCCEEDED,
        request=request,
        actor=user,
        citizen=getattr(user, "citizen", None),
        kind=key.kind,
    )


#: The session's record of how its user signed in (``record_authentication``).
AUTH_SESSION_KEY = "csam_auth"


def record_authentication(
    request: HttpRequest,
    user: User,
    *,
    methods: list[str],
    level: str,
    key: DigitalKey | None = None,
    strong: bool = False,
) -> None:
    """Remember in the session how ``user`` just signed in: when, with what (``amr`` values,
    ``pwd`` first), the assurance level reached, the digital key used (none for a recovery
    code) and whether the sign-in is *strong*: made with an active key that is not on
    probation. Only a strong session may change keys, password or phone (:func:`is_strong`).
    A service asking for a fresh sign-in or a level (the OpenID Connect provider) reads it
    with :func:`authentication`."""
    request.session[AUTH_SESSION_KEY] = {
        "user_id": user.pk,
        "at": int(timezone.now().timestamp()),
        "amr": list(methods),
        "acr": level,
        "key_id": key.pk if key is not None else None,
        "strong": bool(strong),
    }


# The key a session signed in with, while it is still active: one query on each citizen's page.
_SIGNED_IN_KEY = PreparedRead(
    DigitalKey.objects.filter(state=DigitalKey.State.ACTIVE).only("pk"), "pk", "user_id", limit=1
)


def signed_in_key_gone(request: HttpRequest, *, active: set[int] | None = None) -> bool:
    """Whether this session signed in with a digital key that is no longer active (removed,
    cancelled, blocked): such a session must end (:func:`end_if_key_gone`). ``active``: the
    ids of the account's active keys, when the caller read them already (no query then)."""
    data = request.session.get(AUTH_SESSION_KEY)
    if not data or not data.get("key_id"):
        return False
    if active is not None:
        return data["key_id"] not in active
    return not _SIGNED_IN_KEY.all(pk=data["key_id"], user_id=data.get("user_id"))


def end_if_key_gone(request: HttpRequest, *, active: set[int] | None = None) -> bool:
    """Sign this session out when the key it signed in with is gone; True when it did."""
    if not signed_in_key_gone(request, active=active):
        return False
    logout(request)
    return True


def authentication(request: HttpRequest, *, checked: bool = False) -> dict | None:
    """How this session's signed-in user signed in: ``{"user_id", "at", "amr", "acr",
    "key_id", "strong"}``, or None when nobody is signed in, the session's sign-in was not a
    full one, or the key it was made with is gone (the session is then signed out).
    ``checked``: the caller already made that last check in this request."""
    data = request.session.get(AUTH_SESSION_KEY)
    user = getattr(request, "user", None)
    if not data or user is None or not user.is_authenticated or data.get("user_id") != user.pk:
        return None
    if not checked and end_if_key_gone(request):
        return None
    return data


def is_strong(request: HttpRequest, *, checked: bool = True) -> bool:
    """Whether this session signed in with an active digital key not on probation (password
    and key, or a passkey alone), rather than with a recovery code or a key on probation."""
    data = authentication(request, checked=checked)
    return bool(data and data.get("strong"))


BROWSER_COOKIE = "csam_browser"


def _browser_hashes(browser_id: str) -> list[str]:
    """The browser id's keyed hash under the current ``SECRET_KEY`` first, then under each of
    ``SECRET_KEY_FALLBACKS`` (and in the first release's form), so rotating the key does not
    re-announce every known browser; a match is re-hashed under the current key."""
    secrets_in_use = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    current = [
        salted_hmac("keys.known-browser", browser_id, secret=secret, algorithm="sha256").hexdigest()
        for secret in secrets_in_use
    ]
    legacy = [
        hmac.new(secret.encode(), f"browser:{browser_id}".encode(), hashlib.sha256).hexdigest()
        for secret in secrets_in_use
    ]
    return current + legacy


def remember_browser(request: HttpRequest, user: User) -> tuple[str, bool]:
    """The browser's id (new when it has none) and whether it is new for this account.

    A new browser is remembered and the citizen is told by e-mail.
    """
    browser_id = request.get_signed_cookie(BROWSER_COOKIE, default="", salt="keys.browser")
    if not browser_id:
        browser_id = secrets.token_urlsafe(24)
    digests = _browser_hashes(browser_id)
    now = timezone.now()
    # The usual case, a browser seen before whose id is hashed under the current key: one
    # prepared UPDATE (about 0.5 ms less than the locked read below: its SQL is compiled on
    # every call, and the transaction takes SQLite's write lock twice).
    if update_where(KnownBrowser, {"user": user, "browser_hash": digests[0]}, last_seen=now):
        return browser_id, False
    with transaction.atomic():
        known = (
            KnownBrowser.objects.select_for_update()
            .filter(user=user, browser_hash__in=digests)
            .first()
        )
        created = known is None
        if created:
            insert(
                KnownBrowser(
                    user=user,
                    browser_hash=digests[0],
                    user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
                )
            )
        else:
            # Re-hashed under the current key, so the old key can be dropped later.
            update_row(KnownBrowser, known.pk, last_seen=now, browser_hash=digests[0])
    if created:
        audit.record(
            Action.NEW_BROWSER, request=request, actor=user, citizen=getattr(user, "citizen", None)
        )
        send_security_notice(
            user,
            "new_browser",
            browser=request.META.get("HTTP_USER_AGENT", "")[:120],
            ip=audit.client_ip(request) or "",
        )
    return browser_id, created


def send_security_notice(user: User, notice: str, **details: str) -> None:
    """A security notification e-mail, in the citizen's language (``keys/email/notice_*``)."""
    from keys import delivery

    citizen = getattr(user, "citizen", None)
    if citizen is None:
        return
    message = build_email(
        "security_notice",
        {"notice": notice, "citizen": citizen, "when": timezone.now(), **details},
        to=citizen.email,
        language=citizen.language,
    )
    delivery.queue_email(message, purpose=f"notice:{notice}")
