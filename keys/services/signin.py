"""Signing in with username, password and a digital key, and the account's own changes.

Failures are counted per canonical username whether or not the account exists, and the answer
to a wrong username is the same as to a wrong password, so nothing tells which usernames exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from keys import audit
from keys.conf import limits
from keys.digital_keys import Outcome, VerifyResult, get_kind
from keys.mail import build_email
from keys.models import AuditEvent, DigitalKey, KnownBrowser, SignInAttempt, User
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


def _canonical(username: str) -> str:
    return canonical_username((username or "").strip())[:256]


def lockout_remaining(username: str) -> int:
    """Minutes left of a lockout for this username (0 when none): ``SIGNIN_MAX_FAILURES``
    failures within ``SIGNIN_FAILURE_WINDOW``, counted since the last success, lock it for
    ``SIGNIN_LOCKOUT`` after the last of them."""
    canonical = _canonical(username)
    now = timezone.now()
    attempts = SignInAttempt.objects.filter(
        username_canonical=canonical, created_at__gt=now - limits.SIGNIN_FAILURE_WINDOW
    ).order_by("-created_at")
    failures = []
    for attempt in attempts[: limits.SIGNIN_MAX_FAILURES]:
        if attempt.succeeded:
            break
        failures.append(attempt)
    if len(failures) < limits.SIGNIN_MAX_FAILURES:
        return 0
    locked_until = failures[0].created_at + limits.SIGNIN_LOCKOUT
    if locked_until <= now:
        return 0
    return max(1, int((locked_until - now).total_seconds() + 59) // 60)


def record_failure(request: HttpRequest, username: str, user: User | None, reason: str) -> None:
    canonical = _canonical(username)
    SignInAttempt.objects.create(
        username_canonical=canonical, ip_address=audit.client_ip(request), succeeded=False
    )
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
    minutes = lockout_remaining(username)
    if minutes:
        return SignInResult(SignInOutcome.LOCKED, retry_after_minutes=minutes)
    user = authenticate(request, username=username, password=password)
    eligible = (
        user is not None
        and not user.is_staff
        and hasattr(user, "citizen")
        and user.digital_keys.filter(state=DigitalKey.State.ACTIVE).exists()
    )
    if not eligible:
        record_failure(request, username, user, "password")
        minutes = lockout_remaining(username)
        if minutes:
            return SignInResult(SignInOutcome.LOCKED, retry_after_minutes=minutes)
        return SignInResult(SignInOutcome.INVALID)
    return SignInResult(SignInOutcome.OK, user=user)


@sensitive_variables("code")
def check_key(request: HttpRequest, user: User, key: DigitalKey, code: str) -> VerifyResult:
    """The second factor, through the same key module as the activation."""
    if key.user_id != user.pk or key.state != DigitalKey.State.ACTIVE:
        return VerifyResult(Outcome.NO_CODE)
    if lockout_remaining(user.username):
        return VerifyResult(Outcome.EXHAUSTED, 0)
    result = get_kind(key.kind).verify(key, code, request=request)
    if not result.ok:
        record_failure(request, user.username, user, f"key:{result.outcome}")
    return result


def record_success(request: HttpRequest, user: User, key: DigitalKey) -> None:
    SignInAttempt.objects.create(
        username_canonical=user.username_canonical,
        ip_address=audit.client_ip(request),
        succeeded=True,
    )
    DigitalKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    audit.record(
        Action.SIGNIN_SUCCEEDED,
        request=request,
        actor=user,
        citizen=getattr(user, "citizen", None),
        kind=key.kind,
    )


BROWSER_COOKIE = "csam_browser"


def _browser_hash(browser_id: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"browser:{browser_id}".encode(), hashlib.sha256
    ).hexdigest()


def remember_browser(request: HttpRequest, user: User) -> tuple[str, bool]:
    """The browser's id (new when it has none) and whether it is new for this account.

    A new browser is remembered and the citizen is told by e-mail.
    """
    browser_id = request.get_signed_cookie(BROWSER_COOKIE, default="", salt="keys.browser")
    if not browser_id:
        browser_id = secrets.token_urlsafe(24)
    digest = _browser_hash(browser_id)
    now = timezone.now()
    with transaction.atomic():
        known, created = KnownBrowser.objects.get_or_create(
            user=user,
            browser_hash=digest,
            defaults={"user_agent": request.META.get("HTTP_USER_AGENT", "")[:300]},
        )
        if not created:
            KnownBrowser.objects.filter(pk=known.pk).update(last_seen=now)
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
