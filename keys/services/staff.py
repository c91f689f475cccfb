"""Staff sign-in (the back office at ``/admin/``): password, then a second factor of their own.

- The password is checked like a citizen's (``keys.services.signin``): every try is counted per
  canonical username before the hash is computed, ``SIGNIN_MAX_FAILURES`` failures lock the
  username for ``SIGNIN_LOCKOUT``, and every failure and lockout is audited with the client's
  address. Only an active staff account without a citizen record can go on.
- The second factor is one of the project's own key kinds, an app key (``TotpKind``) or a
  passkey (``PasskeyKind``), as a ``DigitalKey`` of the staff account: set up at the first
  sign-in right after the password, asked at every sign-in after that. Its wrong codes count
  against the same lockout.
- A session that passed both is marked (:func:`mark_verified`); the admin site refuses every
  other session (``keys.staff_site.StaffAdminSite.has_permission``), and ends a staff session
  after ``STAFF_IDLE_TIMEOUT`` without a request.
- An administrator who resets a staff member's second factor (:func:`reset_second_factor`)
  removes their keys and ends their sessions; they set up a new one at their next sign-in.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from keys import audit
from keys.conf import limits
from keys.digital_keys import KINDS, Outcome, VerifyResult
from keys.models import AuditEvent, DigitalKey, User
from keys.prepared import update_row
from keys.services import activation as flow
from keys.services import signin
from keys.services.signin import SignInOutcome, SignInResult

Action = AuditEvent.Action


def staff_kinds() -> tuple[str, ...]:
    """The kinds a staff member may use as second factor (``KeyKind.staff_second_factor``: the
    app and passkeys), in the registry's order."""
    return tuple(name for name, kind in KINDS.items() if kind.staff_second_factor)


#: The session's half-finished staff sign-in (password checked): ``{"user_id", "at", "next"}``.
PENDING_SESSION_KEY = "csam_staff_signin"
#: The session's record of a finished staff sign-in (password and second factor).
VERIFIED_SESSION_KEY = "csam_staff_verified"
#: When the staff session last made a request (a timestamp), for ``STAFF_IDLE_TIMEOUT``.
LAST_SEEN_SESSION_KEY = "csam_staff_last_seen"


def eligible(user: User | None) -> bool:
    """An account that may sign in to the back office: active staff, no citizen's account."""
    return user is not None and user.is_active and user.is_staff and not hasattr(user, "citizen")


@sensitive_variables("password")
def check_password(request: HttpRequest, username: str, password: str) -> SignInResult:
    """The first factor of a staff sign-in, counted and locked as a citizen's."""
    attempt, minutes = signin._reserve(request, username)
    if attempt is None:
        # A try while locked is a failure too: audited, with the client's address.
        audit.record(
            Action.SIGNIN_FAILED,
            request=request,
            actor_label=signin._canonical(username)[:150],
            reason="locked",
            staff=True,
        )
        return SignInResult(SignInOutcome.LOCKED, retry_after_minutes=minutes)
    user = authenticate(request, username=username, password=password)
    if not eligible(user):
        signin._audit_failure(request, username, user, "staff:password")
        minutes = signin.lockout_remaining(username)
        if minutes:
            return SignInResult(SignInOutcome.LOCKED, retry_after_minutes=minutes)
        return SignInResult(SignInOutcome.INVALID)
    signin._release(attempt)
    return SignInResult(SignInOutcome.OK, user=user)


def start_pending(request: HttpRequest, user: User, next_url: str) -> None:
    """The password was right: a new session key, and the sign-in waits for the second factor."""
    request.session.cycle_key()
    request.session[PENDING_SESSION_KEY] = {
        "user_id": user.pk,
        "at": timezone.now().timestamp(),
        "next": next_url,
    }


def pending(request: HttpRequest) -> tuple[User, dict[str, Any]] | None:
    """The staff member whose password this session checked, while fresh (``OTP_TTL``)."""
    data = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(data, dict):
        return None
    if timezone.now().timestamp() - data.get("at", 0) > limits.OTP_TTL.total_seconds():
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    user = User.objects.select_related("citizen").filter(pk=data.get("user_id")).first()
    if not eligible(user):
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    return user, data


def active_keys(user: User) -> list[DigitalKey]:
    """The staff member's active second factors, the app first."""
    keys = list(
        DigitalKey.objects.filter(
            user=user, state=DigitalKey.State.ACTIVE, kind__in=staff_kinds()
        ).order_by("created_at", "pk")
    )
    for key in keys:
        key.user = user
    keys.sort(key=lambda k: staff_kinds().index(k.kind))
    return keys


def enrolment_key(user: User, kind: str) -> DigitalKey:
    """The pending key of ``kind`` (an app key's secret made once, the same on every reload)."""
    if kind not in staff_kinds():
        raise ValueError(kind)
    key = flow.enrol_key(user, kind, None)
    key.user = user
    return key


@sensitive_variables("code")
def confirm_enrolment(request: HttpRequest, user: User, key: DigitalKey, code: str) -> VerifyResult:
    """The first code of a new second factor: counted against the username's lockout like
    any code, and the key is active when it is right."""
    if key.user_id != user.pk or key.kind not in staff_kinds():
        return VerifyResult(Outcome.NO_CODE)
    attempt, minutes = signin._reserve(request, user.username)
    if attempt is None:
        return VerifyResult(Outcome.LOCKED, 0, retry_after_seconds=minutes * 60)
    result = flow.confirm_key(key, code, request)
    if result.ok:
        update_row(signin.SignInAttempt, attempt.pk, succeeded=True)
        audit.record(Action.STAFF_FACTOR_ENROLLED, request=request, actor=user, kind=key.kind)
    else:
        signin._audit_failure(request, user.username, user, f"staff:enrol:{result.outcome}")
    return result


@sensitive_variables("code")
def check_factor(request: HttpRequest, user: User, key: DigitalKey, code: str) -> VerifyResult:
    """The second factor at a later sign-in (``signin.check_key``: the same lockout)."""
    if key.kind not in staff_kinds():
        return VerifyResult(Outcome.NO_CODE)
    return signin.check_key(request, user, key, code)


def mark_verified(session: SessionBase, user: User, key: DigitalKey) -> None:
    """Mark ``session`` (of ``user``, logged in) as having passed the second factor with
    ``key``, and start its idle clock. The one way a session gets into the back office: the
    sign-in calls it, and so does the tests' ``staff_login`` helper (``tests/conftest.py``)."""
    session.pop(PENDING_SESSION_KEY, None)
    session[VERIFIED_SESSION_KEY] = {"user_id": user.pk, "key_id": key.pk, "kind": key.kind}
    session[LAST_SEEN_SESSION_KEY] = timezone.now().timestamp()


def verified(session: SessionBase, user: User) -> bool:
    """Whether this session of ``user`` passed the second factor."""
    data = session.get(VERIFIED_SESSION_KEY)
    return isinstance(data, dict) and data.get("user_id") == user.pk


def reset_second_factor(request: HttpRequest, user: User) -> int:
    """An administrator's reset of a staff member who lost their second factor: every key of
    the account is removed, every session of it ends (``session_version``), audited. They set
    up a new factor at their next sign-in. Returns the number of keys removed."""
    now = timezone.now()
    with transaction.atomic():
        removed = DigitalKey.objects.filter(
            user=user, state__in=[DigitalKey.State.ACTIVE, DigitalKey.State.PENDING]
        ).update(state=DigitalKey.State.REMOVED, removed_at=now)
        User.objects.filter(pk=user.pk).update(session_version=F("session_version") + 1)
        audit.record(
            Action.STAFF_FACTOR_RESET,
            request=request,
            staff_member=user.get_username(),
            keys_removed=removed,
        )
    return removed


def second_factor_note(site_url: str) -> str:
    """What ``createsuperuser`` and ``demo_setup`` print about a staff account's second factor."""
    choices = " or ".join(f'"{KINDS[name].label}"' for name in staff_kinds())
    return (
        f"Second factor: at the first sign-in at {site_url.rstrip('/')}/admin/login/, right "
        f"after the password, each staff account sets up its second factor ({choices}; the "
        "app: scan the QR code shown and type its 6-digit code) and uses it at every sign-in "
        "after that. Lost it? An administrator resets it: Accounts, select the account, "
        'action "Reset the second factor".'
    )
