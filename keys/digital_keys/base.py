"""The one small interface every kind of digital key implements.

A kind says what it is called, how a key of its kind is set up (``enrol``), how a challenge is
sent (``send_challenge``, for kinds whose code is delivered) and how a code is checked
(``verify``). The wizard, self-service and sign-in only talk to this interface; adding a kind
means one new module (or package) registered in ``keys.digital_keys``, and its templates.

A kind that needs more than a typed code declares it here too, and the generic code asks for it
without knowing the kind (the passkey kind, ``keys.digital_keys.passkey``, uses all of these):

- ``browser_ceremony``, ``ceremony_template``, ``ceremony_data()``, ``ceremony_no_answer``: the
  "code" is the browser's answer (WebAuthn), made by a static script (``script``) on the page;
- ``script``: the static script every page that offers or uses the kind includes
  (``{% kind_scripts %}`` of ``keys/templatetags/key_kinds.py``);
- ``several_per_account``, ``display_name()``, ``remove_label()``: several named keys per
  account (``DigitalKey.one_per_account`` is set from it, for the database's constraint);
- ``audit_actions``: events of its own in the audit trail (``keys.models.audit_action_choices``);
- ``choice_note``, ``signin_title``: wording of the key-choice and sign-in pages;
- ``signin_template``, ``my_keys_template``: blocks of its own on the sign-in page and under a
  key in "My digital keys";
- ``urlpatterns()``: pages of its own, mounted in the ``keys`` namespace by ``keys/urls.py``;
- ``related``: its own table's relation, joined when keys are listed; a kind's tables live in
  its package (``models.py``, ``app_label = "keys"``) and are loaded with ``keys.models``.

Verification always runs in ``transaction.atomic()`` with the key row locked
(``select_for_update``), so two concurrent submissions of the same code cannot both succeed.
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.decorators import method_decorator
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from keys import audit
from keys.conf import limits
from keys.locking import lock_row
from keys.models import AuditEvent, DigitalKey, OneTimeCode, OutboundMessage
from keys.prepared import PreparedRead, insert, save_fields, update_where

# The key's newest open code, read with its row locked; its SQL built once per connection
# (keys/prepared.py), so the write lock is held for less time.
_OPEN_CODE = PreparedRead(
    OneTimeCode.objects.select_for_update()
    .filter(consumed_at__isnull=True)
    .order_by("-created_at", "-id"),
    "key_id",
)

# The key's codes of the last hour (the resend cooldown and hourly cap, at every code sent).
_RECENT_CODES = PreparedRead(
    OneTimeCode.objects.only("created_at", "consumed_at"), "key_id", "created_at__gt"
)
# The key's newest code, sent or not (whether it reached its channel, on every code page).
_NEWEST_CODE = PreparedRead(OneTimeCode.objects.order_by("-created_at", "-id"), "key_id")


def _activation_read(key: DigitalKey) -> bool:
    return DigitalKey._meta.get_field("activation").is_cached(key)


class Outcome(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    NO_CODE = "no_code"
    REPLAY = "replay"
    TOO_SOON = "too_soon"
    TOO_MANY = "too_many"
    DELIVERY_FAILED = "delivery_failed"
    LOCKED = "locked"
    #: A browser's answer (``browser_ceremony``: a signature, say) that was not accepted.
    REFUSED = "refused"


@dataclass(frozen=True)
class VerifyResult:
    outcome: Outcome
    remaining_attempts: int | None = None
    retry_after_seconds: int = 0
    #: The kind's own wording of a refusal (``REFUSED``: what went wrong with its answer);
    #: ``keys.services.challenges.verify_error`` words every other outcome the same for all kinds.
    message: Promise | str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass(frozen=True)
class ChallengeResult:
    outcome: Outcome
    retry_after_seconds: int = 0

    @property
    def sent(self) -> bool:
        return self.outcome is Outcome.OK


class KeyKind:
    """What every kind of digital key provides.

    Everything that differs between kinds lives on the kind: its names, whether it needs a mobile
    number, where its codes go (``target_fields``), how long its codes are (``code_digits``), the
    help text of its choice, the template with its instructions, and the hooks listed in this
    module's docstring. Views, forms and templates ask the kind, so a new kind is one module,
    its template(s) and one line in the registry.
    """

    kind: str
    label: Promise
    code_label: Promise
    activated_title: Promise
    activated_text: Promise
    delivers_codes: bool = False
    needs_phone: bool = False
    instructions_template: str = ""
    #: The key answers a challenge in the browser (WebAuthn) instead of a typed code: the page
    #: shows ``ceremony_template`` (a button and the hidden field the static script fills) in
    #: place of the code field, and the kind is offered only where the browser can do it.
    browser_ceremony: bool = False
    ceremony_template: str = ""
    #: The error of a page posted without the browser's answer (``browser_ceremony`` kinds).
    ceremony_no_answer: Promise | str = ""
    #: The static script (a path for ``{% static %}``) of the pages that offer or use this kind:
    #: the key-choice pages, its code pages and the sign-in page (``{% kind_scripts %}``).
    script: str = ""
    #: A citizen may have several active keys of this kind (passkeys: one per device).
    several_per_account: bool = False
    #: Events of its own in the audit trail: ``(value, label)`` pairs, added to
    #: ``AuditEvent.action``'s choices (values are stored: never rename one).
    audit_actions: tuple[tuple[str, Promise | str], ...] = ()
    #: A sentence the wizard's key-choice page shows, hidden until the browser can make the
    #: key, where a ``browser_ceremony`` kind is offered.
    choice_note: Promise | str = ""
    #: The title of the sign-in page that asks for a key of this kind.
    signin_title: Promise | str = _("Security code")
    #: A block of the kind's own on the sign-in page, after the password form (a form of its
    #: own, say); ``""`` for none.
    signin_template: str = ""
    #: Links of the kind's own under an active key in "My digital keys" (context: ``key``,
    #: ``kind``, ``target``, ``can_remove``); ``""`` for none.
    my_keys_template: str = ""
    #: Relations of ``DigitalKey`` to the kind's own tables, joined (``select_related``) when
    #: a citizen's keys are listed.
    related: tuple[str, ...] = ()
    #: What a sign-in with this kind proves, as an ``amr`` value (RFC 8176 where one fits).
    amr: str = "otp"
    #: Staff accounts may set up a key of this kind as their second factor at the back office
    #: (``keys.services.staff``): a kind whose code is not sent anywhere (no citizen's contact).
    staff_second_factor: bool = False
    #: The assurance level a sign-in with password and this kind reaches, unless the setting
    #: ``DIGITAL_KEY_LEVELS`` says otherwise (``keys.digital_keys.level_of``).
    default_level: str = "substantial"

    @property
    def code_digits(self) -> int:
        """How many digits a code of this kind has."""
        return limits.OTP_DIGITS

    def choice_help(self, citizen: Any) -> str:
        """The line under the kind's choice on the key-choice page."""
        return ""

    def target_fields(self, citizen: Any, phone: str = "") -> dict[str, str]:
        """The fields of a new key of this kind that say where its codes go."""
        return {}

    def enrol(self, key: DigitalKey) -> None:
        """Prepare a new, pending key (generate a secret, say). Must be idempotent.

        Called on the key before its first save (``key._state.adding``: set the fields, the
        caller's INSERT writes them) and on a pending key read back (save what it changes).
        """

    def send_challenge(
        self, key: DigitalKey, *, request: HttpRequest | None = None, signin: bool = False
    ) -> ChallengeResult:
        """Send a code; ``signin`` words it as a security code for signing in."""
        raise NotImplementedError

    def has_pending_challenge(self, key: DigitalKey) -> bool:
        return False

    def delivery_failed(self, key: DigitalKey) -> bool:
        return False

    def verify(
        self, key: DigitalKey, code: str, *, request: HttpRequest | None = None
    ) -> VerifyResult:
        raise NotImplementedError

    def setup_context(self, key: DigitalKey) -> dict[str, Any]:
        """What the verification page shows for this kind (a QR code, say)."""
        return {}

    def describe(self, key: DigitalKey) -> str:
        """Where the key sends its codes, for display (a masked number or address)."""
        return ""

    def display_name(self, key: DigitalKey) -> str:
        """The key's name in a list of keys: the kind's label, unless the kind has several
        keys per account that the citizen names."""
        return str(self.label)

    def remove_label(self, key: DigitalKey) -> str:
        """The link that removes the key in "My digital keys"."""
        return gettext("Remove “%(name)s”") % {"name": self.label}

    def ceremony_data(self, request: HttpRequest, key: DigitalKey, purpose: str) -> str:
        """The data the ``ceremony_template`` gives the static script (HTML marked safe, such as
        ``json_script``'s ``<script type="application/json">`` block), for ``purpose``
        "activate", "add" or "signin" (``{% ceremony_data key purpose %}``)."""
        return ""

    def urlpatterns(self) -> list[Any]:
        """The kind's own pages, in the ``keys`` namespace (``keys/urls.py`` adds them)."""
        return []


def _hash_code(key: DigitalKey, code: str) -> str:
    return salted_hmac("keys.one-time-code", f"{key.pk}:{code}", algorithm="sha256").hexdigest()


class DeliveredCodeKind(KeyKind):
    """A kind whose code is generated here and delivered (e-mail, SMS): the shared logic of
    expiry, single use, attempts, resend cooldown and hourly cap (SPEC §3)."""

    delivers_codes = True

    def deliver(
        self, key: DigitalKey, code: str, challenge: OneTimeCode, *, signin: bool = False
    ) -> OutboundMessage:
        """Queue the message that carries ``code`` (``keys.delivery``)."""
        raise NotImplementedError

    def has_pending_challenge(self, key: DigitalKey) -> bool:
        return key.codes.filter(consumed_at__isnull=True, expires_at__gt=timezone.now()).exists()

    def delivery_failed(self, key: DigitalKey) -> bool:
        """Whether the newest code has not reached its channel (the service may be down)."""
        latest = _NEWEST_CODE.first(key_id=key.pk)
        if latest is None or latest.delivered:
            return False
        return latest.messages.filter(
            status__in=(OutboundMessage.Status.RETRYING, OutboundMessage.Status.FAILED)
        ).exists()

    @method_decorator(sensitive_variables("code"))
    def send_challenge(
        self, key: DigitalKey, *, request: HttpRequest | None = None, signin: bool = False
    ) -> ChallengeResult:
        now = timezone.now()
        with transaction.atomic():
            lock_row(DigitalKey, key.pk)
            hour_ago = now - timedelta(hours=1)
            recent = [
                (sent.created_at, sent.consumed_at)
                for sent in _RECENT_CODES.all(key_id=key.pk, created_at__gt=hour_ago)
            ]
            # The cooldown runs from the last code still waiting to be used: once a code was
            # used (a finished activation, a sign-in), the next one may be sent at once.
            latest = max((sent for sent, used in recent if used is None), default=None)
            recent = [sent for sent, _used in recent]
            if latest is not None and now - latest < limits.OTP_RESEND_COOLDOWN:
                wait = limits.OTP_RESEND_COOLDOWN - (now - latest)
                result = ChallengeResult(Outcome.TOO_SOON, math.ceil(wait.total_seconds()))
            elif len(recent) >= limits.OTP_MAX_PER_HOUR:
                oldest = min(recent)
                wait = timedelta(hours=1) - (now - oldest)
                result = ChallengeResult(Outcome.TOO_MANY, math.ceil(wait.total_seconds()))
            else:
                result = None
            if result is not None:
                audit.record(
                    AuditEvent.Action.CHALLENGE_REFUSED,
                    request=request,
                    citizen=getattr(key.user, "citizen", None),
                    activation=key.activation if _activation_read(key) else None,
                    activation_id=key.activation_id,
                    kind=key.kind,
                    reason=str(result.outcome),
                )
                return result
            digits = self.code_digits
            code = f"{secrets.randbelow(10**digits):0{digits}d}"
            # Only the newest code counts: every older unused code dies now, so none can come
            # back to life once the newest is used, and none is delivered late.
            update_where(OneTimeCode, {"key": key.pk, "consumed_at": None}, consumed_at=now)
            challenge = insert(
                OneTimeCode(
                    key=key,
                    code_hash=_hash_code(key, code),
                    created_at=now,
                    expires_at=now + limits.OTP_TTL,
                )
            )
        outbound = self.deliver(key, code, challenge, signin=signin)
        if outbound.status in (OutboundMessage.Status.RETRYING, OutboundMessage.Status.FAILED):
            audit.record(
                AuditEvent.Action.CHALLENGE_FAILED,
                request=request,
                citizen=getattr(key.user, "citizen", None),
                activation=key.activation if _activation_read(key) else None,
                activation_id=key.activation_id,
                kind=key.kind,
                error=outbound.last_error,
            )
            return ChallengeResult(Outcome.DELIVERY_FAILED)
        audit.record(
            AuditEvent.Action.CHALLENGE_SENT,
            request=request,
            citizen=getattr(key.user, "citizen", None),
            # The key's activation as read already (the wizard's), else its id only: a
            # sign-in's code does not read the activation that made the key long ago.
            activation=key.activation if _activation_read(key) else None,
            activation_id=key.activation_id,
            kind=key.kind,
        )
        return ChallengeResult(Outcome.OK)

    @method_decorator(sensitive_variables("code"))
    def verify(
        self, key: DigitalKey, code: str, *, request: HttpRequest | None = None
    ) -> VerifyResult:
        now = timezone.now()
        with transaction.atomic():
            lock_row(DigitalKey, key.pk)
            challenge = _OPEN_CODE.first(key_id=key.pk)
            if challenge is None:
                return VerifyResult(Outcome.NO_CODE)
            if challenge.expires_at <= now:
                return VerifyResult(Outcome.EXPIRED)
            if challenge.failed_attempts >= limits.OTP_MAX_ATTEMPTS:
                return VerifyResult(Outcome.EXHAUSTED, 0)
            if hmac.compare_digest(_hash_code(key, code), challenge.code_hash):
                challenge.consumed_at = now
                save_fields(challenge, "consumed_at")
                return VerifyResult(Outcome.OK)
            challenge.failed_attempts += 1
            save_fields(challenge, "failed_attempts")
            remaining = limits.OTP_MAX_ATTEMPTS - challenge.failed_attempts
            return VerifyResult(Outcome.EXHAUSTED if remaining <= 0 else Outcome.WRONG, remaining)
