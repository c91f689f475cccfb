"""The citizen's side of an activation: open the link, redeem the paper code, create the account,
enrol and confirm a digital key.

Every check of a secret and every state change happens here, inside a transaction with the rows
it depends on locked, so double submits, second tabs and concurrent requests cannot create two
accounts, two keys, or more wrong guesses than the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_variables

from keys import audit, delivery, tokens
from keys.conf import limits
from keys.digital_keys import Outcome, VerifyResult, get_kind
from keys.locking import lock_row
from keys.mail import build_email
from keys.models import (
    Activation,
    AuditEvent,
    Citizen,
    DigitalKey,
    OutboundMessage,
    User,
)
from keys.prepared import PreparedRead, save_fields, update_row, update_where
from keys.services.probation import announce, key_on_probation, probation_end

Action = AuditEvent.Action
State = Activation.State


class LinkStatus(StrEnum):
    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    LOCKED = "locked"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"
    COMPLETED = "completed"


# The reads made with a row locked, their SQL built once per connection (keys/prepared.py):
# the write lock (on SQLite, the whole database's) is held for less time.
_REDEEM = PreparedRead(Activation.objects.select_for_update().select_related("citizen"), "pk")
_CITIZEN_LOCKED = PreparedRead(Citizen.objects.select_for_update(), "pk")
_PENDING_KEY = PreparedRead(
    DigitalKey.objects.filter(state=DigitalKey.State.PENDING).order_by("-created_at"),
    "user_id",
    "kind",
)


_BY_LINK_HASH = PreparedRead(
    Activation.objects.select_related("citizen", "office"), "link_token_hash"
)


def find_by_token(token: str) -> Activation | None:
    """The activation a link token belongs to, if any: its hash under the current key first,
    then under each older key (a prepared read each: one, for a link issued under the current
    key)."""
    if not token or len(token) > 200:
        return None
    for candidate in tokens.link_token_candidates(token):
        found = _BY_LINK_HASH.first(link_token_hash=candidate)
        if found is not None:
            return found
    return None


def _expire_if_due(activation: Activation, request: HttpRequest | None) -> bool:
    """Move an open activation past its expiry to ``expired``; True when it is expired."""
    if activation.state == State.EXPIRED:
        return True
    if activation.state in Activation.OPEN_STATES and activation.is_expired:
        updated = Activation.objects.filter(
            pk=activation.pk, state__in=Activation.OPEN_STATES
        ).update(state=State.EXPIRED, closed_at=timezone.now())
        if updated:
            activation.state = State.EXPIRED
            audit.record(Action.ACTIVATION_EXPIRED, request=request, activation=activation)
        return True
    return False


def link_status(activation: Activation | None, request: HttpRequest | None = None) -> LinkStatus:
    """Whether a link may start the wizard, and if not, why."""
    if activation is None:
        return LinkStatus.UNKNOWN
    if _expire_if_due(activation, request):
        return LinkStatus.EXPIRED
    if activation.state in Activation.OPEN_STATES:
        return LinkStatus.VALID
    return LinkStatus(activation.state)


def open_link(activation: Activation, request: HttpRequest) -> None:
    """Record that the link was used (``issued`` -> ``opened``)."""
    now = timezone.now()
    updated = update_where(
        Activation, {"pk": activation.pk, "state": State.ISSUED}, state=State.OPENED, opened_at=now
    )
    if updated:
        # What the UPDATE wrote, without reading the row (and its citizen) back.
        activation.state = State.OPENED
        activation.opened_at = now
    audit.record(Action.LINK_OPENED, request=request, activation=activation)


class CodeOutcome(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"
    CLOSED = "closed"


@dataclass(frozen=True)
class CodeResult:
    outcome: CodeOutcome
    remaining_attempts: int = 0


@sensitive_variables("typed")
def redeem_activation_code(activation_id: int, typed: str, request: HttpRequest) -> CodeResult:
    """Check the paper code; count a wrong one and lock the activation at the limit.

    The row is locked for the whole check, so concurrent wrong guesses cannot pass the limit.
    """
    with transaction.atomic():
        activation = _REDEEM.get(pk=activation_id)
        if activation.state == State.LOCKED:
            return CodeResult(CodeOutcome.LOCKED)
        # A completed activation is spent: its paper code opens nothing any more.
        if activation.state not in Activation.OPEN_STATES or activation.is_expired:
            return CodeResult(CodeOutcome.CLOSED)
        if tokens.check_activation_code(typed, activation.code_hash):
            if activation.state in (State.ISSUED, State.OPENED):
                activation.state = State.CODE_VERIFIED
                activation.code_verified_at = timezone.now()
                save_fields(activation, "state", "code_verified_at")
            audit.record(Action.CODE_ACCEPTED, request=request, activation=activation)
            return CodeResult(CodeOutcome.OK)
        activation.failed_code_attempts += 1
        fields = ["failed_code_attempts"]
        remaining = limits.ACTIVATION_CODE_MAX_ATTEMPTS - activation.failed_code_attempts
        audit.record(
            Action.CODE_REJECTED,
            request=request,
            activation=activation,
            attempt=activation.failed_code_attempts,
        )
        if remaining <= 0:
            activation.state = State.LOCKED
            activation.closed_at = timezone.now()
            fields += ["state", "closed_at"]
            audit.record(Action.ACTIVATION_LOCKED, request=request, activation=activation)
        save_fields(activation, *fields)
        if remaining <= 0:
            return CodeResult(CodeOutcome.LOCKED)
        return CodeResult(CodeOutcome.WRONG, remaining)


def accept_terms(activation: Activation, request: HttpRequest) -> None:
    """Record the accepted version of the terms of use and when."""
    update_row(
        Activation,
        activation.pk,
        terms_version=limits.TERMS_VERSION,
        terms_accepted_at=timezone.now(),
    )
    audit.record(
        Action.TERMS_ACCEPTED, request=request, activation=activation, version=limits.TERMS_VERSION
    )


class UsernameTaken(Exception):
    """Somebody else registered this username first."""


@sensitive_variables("password")
def create_account(
    activation: Activation, username: str, password: str, request: HttpRequest
) -> User:
    """Create the citizen's account, once: a second call (double submit, second tab) returns the
    account the first one made. The password is hashed with argon2id and never kept."""
    # argon2 takes ~100 ms of CPU: hash before the transaction, never with the row (on SQLite:
    # the whole database) locked.
    user = User(username=username, email=activation.citizen.email)
    user.set_password(password)
    with transaction.atomic():
        citizen = _CITIZEN_LOCKED.get(pk=activation.citizen_id)
        if citizen.account_id is not None:
            return citizen.account
        user.email = citizen.email
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError as error:
            raise UsernameTaken(username) from error
        citizen.account = user
        citizen.updated_at = timezone.now()  # as auto_now would, without save()'s compile
        update_row(Citizen, citizen.pk, account=user, updated_at=citizen.updated_at)
        audit.record(
            Action.ACCOUNT_CREATED,
            request=request,
            actor=user,
            activation=activation,
            citizen=citizen,
            username=user.username,
        )
    return user


def enrol_key(
    user: User,
    kind: str,
    activation: Activation | None,
    phone: str = "",
    *,
    probation: bool = False,
) -> DigitalKey:
    """The pending key of this kind for the account, made once and reused on every reload.

    A changed phone number for a pending SMS key replaces the number and voids the codes already
    sent to the old one. ``probation``: enrolled in a weak session (``keys.services.probation``),
    marked so until its confirmation sets the real end (the passkey kind then ignores "sign in
    with it alone").
    """
    probation_until = probation_end() if probation else None
    implementation = get_kind(kind)
    with transaction.atomic():
        lock_row(User, user.pk)
        key = _PENDING_KEY.first(user_id=user.pk, kind=kind)
        if key is None:
            key = DigitalKey(
                user=user,
                kind=kind,
                activation=activation,
                probation_until=probation_until,
                **implementation.target_fields(getattr(user, "citizen", None), phone),
            )
            implementation.enrol(key)  # its secret, written by the one INSERT below
            key.save(force_insert=True)
            return key
        if implementation.needs_phone and phone and key.phone != phone:
            key.phone = phone
            key.save(update_fields=["phone"])
            key.codes.filter(consumed_at__isnull=True).update(consumed_at=timezone.now())
        if (key.probation_until is None) != (probation_until is None):
            key.probation_until = probation_until
            key.save(update_fields=["probation_until"])
        implementation.enrol(key)
    return key


_KEY_COLUMNS = [
    field.attname for field in DigitalKey._meta.concrete_fields if not field.is_relation
]


#: Why a key added after a recovery is refused while another one is still on probation.
PROBATION_REFUSED = gettext_lazy(
    "Another digital key of your account is still on probation. Sign in with one of your "
    "digital keys to add this one."
)


@sensitive_variables("code")
def confirm_key(
    key: DigitalKey,
    code: str,
    request: HttpRequest,
    *,
    fresh: bool = False,
    probation: bool = False,
) -> VerifyResult:
    """Check the code the key delivered and, when right, activate the key.

    An already active key answers OK (a double submit of a right code must not fail).
    Activating the first key completes the activation (SPEC §4). ``fresh``: the caller read
    ``key`` in this request (the wizard), so it is not read again; the check itself runs with
    the key's row locked and the activation is a conditional UPDATE either way.

    ``probation``: added in a weak session (``keys.services.probation``). The key is then
    activated on probation, its notice queued to every address on record first; and not at all
    (``PROBATION_REFUSED``) while another key of the account is on probation.
    """
    if not fresh:
        # Every column again, but not the user and activation already loaded with the key (a
        # key never changes owner or activation): refresh_from_db() would read them anew.
        key.refresh_from_db(fields=_KEY_COLUMNS)
    if key.state == DigitalKey.State.ACTIVE:
        return VerifyResult(Outcome.OK)
    result = get_kind(key.kind).verify(key, code, request=request)
    activation = key.activation
    if not result.ok:
        audit.record(
            Action.KEY_CODE_REJECTED,
            request=request,
            actor=key.user,
            activation=activation,
            citizen=getattr(key.user, "citizen", None),
            kind=key.kind,
            reason=str(result.outcome),
        )
        return result
    until = probation_end() if probation else None
    if probation:
        if key_on_probation(key.user, exclude=key.pk) is not None:
            return VerifyResult(Outcome.REFUSED, message=PROBATION_REFUSED)
        # The notice goes out before the key works (never inside the transaction below: a
        # delivery may run inline), with the end it announces.
        announce(key.user, key, until)
    now = timezone.now()
    with transaction.atomic():
        if probation:
            lock_row(User, key.user_id)
            if key_on_probation(key.user, exclude=key.pk) is not None:
                return VerifyResult(Outcome.REFUSED, message=PROBATION_REFUSED)
        updated = update_where(
            DigitalKey,
            {"pk": key.pk, "state": DigitalKey.State.PENDING},
            state=DigitalKey.State.ACTIVE,
            activated_at=now,
            probation_until=until,
        )
        if not updated:
            return VerifyResult(Outcome.OK)
        # What the UPDATE wrote, without reading the rows again (and their citizen and user).
        key.state, key.activated_at = DigitalKey.State.ACTIVE, now
        key.probation_until = until
        audit.record(
            Action.KEY_ACTIVATED,
            request=request,
            actor=key.user,
            activation=activation,
            citizen=getattr(key.user, "citizen", None),
            kind=key.kind,
            **({"probation_until": until.isoformat()} if until else {}),
        )
        if activation is not None:
            completed = update_where(
                Activation,
                {"pk": activation.pk, "state": State.CODE_VERIFIED},
                state=State.COMPLETED,
                completed_at=now,
            )
            if completed:
                activation.state, activation.completed_at = State.COMPLETED, now
                audit.record(Action.ACTIVATION_COMPLETED, request=request, activation=activation)
    send_key_activated_email(key)
    return VerifyResult(Outcome.OK)


def send_key_activated_email(key: DigitalKey) -> bool:
    """Tell the citizen a key was activated (SPEC §1: a confirmation e-mail follows)."""
    citizen = getattr(key.user, "citizen", None)
    if citizen is None:
        return False
    message = build_email(
        "key_activated",
        {"key": key, "kind": get_kind(key.kind), "citizen": citizen},
        to=citizen.email,
        language=citizen.language,
    )
    outbound = delivery.queue_email(message, purpose="key_activated")
    return outbound.status == OutboundMessage.Status.SENT
