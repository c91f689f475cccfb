"""The data of the service: offices, citizens as recorded at the counter, their activations,
their accounts and digital keys, and the audit trail.

No secret is stored in clear: activation codes and link tokens only as keyed hashes
(``keys.tokens``), passwords only as argon2id hashes, TOTP seeds only encrypted.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.encoding import force_str
from django.utils.translation import gettext_lazy as _

from keys.prepared import PreparedRead
from keys.search import search_name as fold_search_name
from keys.validators import (
    UsernameValidator,
    canonical_username,
    parse_national_number,
    validate_national_number,
)


class RegistrationOffice(models.Model):
    """A local registration office (lokaal registratiekantoor), usually a municipality."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    address = models.CharField(_("address"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("registration office")
        verbose_name_plural = _("registration offices")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        """Look users up by their canonical username, so case and Unicode form do not matter;
        with the citizen they are (a sign-in asks for it next: one query instead of two). Its
        SQL is built once per connection (``keys.prepared``), unless a database is named."""
        canonical = canonical_username(username or "")
        if self._db is None:
            return _user_by_canonical_name().get(username_canonical=canonical)
        return self.select_related("citizen").get(username_canonical=canonical)

    def create_user(self, username: str, password: str | None = None, **extra: object) -> User:
        user = self.model(username=username, **extra)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(username, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """An account: a citizen's (linked through ``citizen``) or a staff member's.

    Usernames are unique under their canonical form (NFKC, case-folded), enforced by a unique
    column so that two concurrent registrations cannot both win.
    """

    username = models.CharField(
        _("username"),
        max_length=64,
        unique=True,
        validators=[UsernameValidator()],
        help_text=_("6 to 64 characters: letters, digits and . _ - @"),
    )
    username_canonical = models.CharField(max_length=256, unique=True, editable=False)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    email = models.EmailField(_("e-mail address"), blank=True)
    office = models.ForeignKey(
        RegistrationOffice,
        verbose_name=_("registration office"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff",
        help_text=_("For registration clerks: the office whose records they handle."),
    )
    session_version = models.PositiveIntegerField(default=0, editable=False)
    is_staff = models.BooleanField(_("staff status"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")

    def __str__(self) -> str:
        return self.username

    def get_session_auth_hash(self) -> str:
        """Sessions are bound to the password hash and to ``session_version``: bumping the
        version ("sign out everywhere") ends every session of the account."""
        return salted_hmac(
            "keys.User.get_session_auth_hash",
            f"{self.password}:{self.session_version}",
            algorithm="sha256",
        ).hexdigest()

    def clean(self) -> None:
        super().clean()
        self.username = unicodedata.normalize("NFKC", self.username or "")
        canonical = canonical_username(self.username)
        taken = User.objects.filter(username_canonical=canonical).exclude(pk=self.pk).exists()
        if taken:
            raise ValidationError({"username": _("This username is not available.")})

    def save(self, *args: object, **kwargs: object) -> None:
        self.username = unicodedata.normalize("NFKC", self.username or "")
        self.username_canonical = canonical_username(self.username)
        super().save(*args, **kwargs)


@functools.cache
def _user_by_canonical_name() -> PreparedRead[User]:
    return PreparedRead(User.objects.select_related("citizen"), "username_canonical")


class Citizen(models.Model):
    """A person as recorded at the counter of a registration office (SPEC §5)."""

    class Language(models.TextChoices):
        NL = "nl", _("Dutch")
        FR = "fr", _("French")
        DE = "de", _("German")
        EN = "en", _("English")

    class DocumentType(models.TextChoices):
        ID_CARD = "id_card", _("Identity card")
        PASSPORT = "passport", _("Passport")
        RESIDENCE_PERMIT = "residence_permit", _("Residence permit")
        OTHER = "other", _("Other identity document")

    first_name = models.CharField(_("first name"), max_length=150)
    last_name = models.CharField(_("last name"), max_length=150)
    national_number = models.CharField(
        _("national register or BIS number"),
        max_length=11,
        unique=True,
        validators=[validate_national_number],
        help_text=_("11 digits, for example 85.07.30-033.28; dots and dashes may be typed."),
    )
    birth_date = models.DateField(_("date of birth"), null=True, blank=True, editable=False)
    email = models.EmailField(_("e-mail address"), help_text=_("The activation link is sent here."))
    phone = models.CharField(
        _("mobile number"),
        max_length=20,
        blank=True,
        help_text=_("Optional. Pre-fills the SMS key, for example +32 470 12 34 56."),
    )
    language = models.CharField(
        _("preferred language"), max_length=2, choices=Language.choices, default=Language.NL
    )
    id_document_type = models.CharField(
        _("identity document"), max_length=20, choices=DocumentType.choices
    )
    id_document_number = models.CharField(_("document number"), max_length=40)
    office = models.ForeignKey(
        RegistrationOffice,
        verbose_name=_("registration office"),
        on_delete=models.PROTECT,
        related_name="citizens",
    )
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("registered by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    account = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("account"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="citizen",
    )
    created_at = models.DateTimeField(_("registered at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("last changed"), auto_now=True)
    # "last first" without accents, case or punctuation (keys.search.fold), kept by save(): the
    # helpdesk's partial name search reads it through a trigram index on PostgreSQL.
    search_name = models.CharField(max_length=301, blank=True, default="", editable=False)

    class Meta:
        verbose_name = _("citizen")
        verbose_name_plural = _("citizens")
        ordering = ["last_name", "first_name"]
        indexes = [
            # the admin's list order (its "-pk" tie-break included): a page without a sort
            models.Index(fields=["last_name", "first_name", "-id"], name="citizen_list_order"),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def save(self, *args: object, **kwargs: object) -> None:
        try:
            self.birth_date = parse_national_number(self.national_number).birth_date
        except ValidationError:
            self.birth_date = None
        self.search_name = fold_search_name(self.first_name, self.last_name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"first_name", "last_name"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "search_name"}
        super().save(*args, **kwargs)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def national_number_display(self) -> str:
        try:
            return parse_national_number(self.national_number).formatted
        except ValidationError:
            return self.national_number


class ActivationQuerySet(models.QuerySet["Activation"]):
    def open(self) -> ActivationQuerySet:
        """Activations the citizen can still use (not closed, not past their expiry)."""
        return self.filter(state__in=Activation.OPEN_STATES, expires_at__gt=timezone.now())


class Activation(models.Model):
    """One issuance of an activation link and paper code to a citizen (SPEC §4)."""

    class State(models.TextChoices):
        ISSUED = "issued", _("Issued")
        OPENED = "opened", _("Link opened")
        CODE_VERIFIED = "code_verified", _("Activation code verified")
        COMPLETED = "completed", _("Completed")
        LOCKED = "locked", _("Locked")
        EXPIRED = "expired", _("Expired")
        REVOKED = "revoked", _("Revoked")
        SUPERSEDED = "superseded", _("Superseded")

    class EmailStatus(models.TextChoices):
        PENDING = "pending", _("Not sent yet")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Sending failed")

    OPEN_STATES = (State.ISSUED, State.OPENED, State.CODE_VERIFIED)

    citizen = models.ForeignKey(
        Citizen, verbose_name=_("citizen"), on_delete=models.CASCADE, related_name="activations"
    )
    office = models.ForeignKey(
        RegistrationOffice,
        verbose_name=_("registration office"),
        on_delete=models.PROTECT,
        related_name="activations",
    )
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("issued by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.ISSUED, db_index=True
    )
    link_token_hash = models.CharField(max_length=64, unique=True, editable=False)
    code_hash = models.CharField(max_length=64, editable=False)
    failed_code_attempts = models.PositiveSmallIntegerField(_("wrong activation codes"), default=0)
    expires_at = models.DateTimeField(_("valid until"))
    created_at = models.DateTimeField(_("issued at"), default=timezone.now)
    opened_at = models.DateTimeField(_("link opened at"), null=True, blank=True)
    code_verified_at = models.DateTimeField(_("code verified at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self",
        verbose_name=_("superseded by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    email_status = models.CharField(
        _("activation e-mail"),
        max_length=10,
        choices=EmailStatus.choices,
        default=EmailStatus.PENDING,
    )
    email_sent_at = models.DateTimeField(_("e-mail sent at"), null=True, blank=True)
    terms_version = models.CharField(_("accepted terms of use"), max_length=20, blank=True)
    terms_accepted_at = models.DateTimeField(_("terms accepted at"), null=True, blank=True)

    objects = ActivationQuerySet.as_manager()

    class Meta:
        verbose_name = _("activation")
        verbose_name_plural = _("activations")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["citizen"],
                condition=Q(state__in=["issued", "opened", "code_verified"]),
                name="one_open_activation_per_citizen",
            )
        ]
        indexes = [
            # the admin's list (newest first) and a citizen's latest activation
            models.Index(fields=["-created_at", "-id"], name="activation_newest_first"),
            models.Index(fields=["citizen", "-created_at"], name="activation_citizen_latest"),
        ]
        permissions = [
            ("issue_activation", _("Can register citizens and issue activations")),
            ("revoke_activation", _("Can revoke activations")),
            ("resend_activation_email", _("Can send the activation e-mail again")),
            ("view_all_offices", _("Can see the records of every registration office")),
        ]

    def __str__(self) -> str:
        return _("Activation %(id)s for %(citizen)s") % {"id": self.pk, "citizen": self.citizen}

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def effective_state(self) -> str:
        """The state as the helpdesk should see it: an open activation past its expiry is
        expired even before anybody touched it again."""
        if self.state in self.OPEN_STATES and self.is_expired:
            return self.State.EXPIRED
        return self.state

    def get_effective_state_display(self) -> str:
        return str(self.State(self.effective_state).label)

    @property
    def is_open(self) -> bool:
        return self.effective_state in self.OPEN_STATES


def key_kind_choices() -> list[tuple[str, Any]]:
    """The kinds of the registry (``keys.digital_keys.KINDS``), so that a new kind of key is one
    module there and needs no change, and no migration, here."""
    from keys.digital_keys import KINDS

    return [(kind.kind, kind.label) for kind in KINDS.values()]


class DigitalKey(models.Model):
    """A digital key of an account: an authenticator app, SMS or e-mailed security codes."""

    class Kind(models.TextChoices):
        TOTP = "totp", _("Mobile app")
        SMS = "sms", _("SMS")
        EMAIL = "email", _("Security code by e-mail")

    class State(models.TextChoices):
        PENDING = "pending", _("Being activated")
        ACTIVE = "active", _("Active")
        BLOCKED = "blocked", _("Blocked")
        REMOVED = "removed", _("Removed")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("account"),
        on_delete=models.CASCADE,
        related_name="digital_keys",
    )
    kind = models.CharField(_("kind"), max_length=10, choices=key_kind_choices)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.PENDING
    )
    phone = models.CharField(_("mobile number"), max_length=20, blank=True)
    email = models.EmailField(_("e-mail address"), blank=True)
    secret_encrypted = models.TextField(blank=True, editable=False)
    last_totp_step = models.BigIntegerField(null=True, blank=True, editable=False)
    # Wrong codes typed for a key whose codes are not sent (the app): counted like the wrong
    # tries of a sent code, and the key is paused for ``TOTP_LOCKOUT`` at the limit.
    failed_attempts = models.PositiveSmallIntegerField(
        _("wrong codes in a row"), default=0, editable=False
    )
    locked_until = models.DateTimeField(_("paused until"), null=True, blank=True, editable=False)
    activation = models.ForeignKey(
        Activation,
        verbose_name=_("activation"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="digital_keys",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    #: A key added in a session that did not sign in with an active key (a recovery code) is on
    #: probation until then (``keys.services.probation``): it gives at most level "low", its
    #: sessions are weak, it cannot be used alone, and the citizen may cancel it.
    probation_until = models.DateTimeField(_("on probation until"), null=True, blank=True)
    #: Whether an account may have only one active key of this kind: the opposite of the kind's
    #: ``several_per_account``, set when the key is created, for the constraint below.
    one_per_account = models.BooleanField(default=True, editable=False)

    class Meta:
        verbose_name = _("digital key")
        verbose_name_plural = _("digital keys")
        ordering = ["created_at"]
        constraints = [
            # One active key per kind, except of the kinds of which a citizen may have several
            # (``KeyKind.several_per_account``: passkeys, one per device).
            models.UniqueConstraint(
                fields=["user", "kind"],
                condition=Q(state="active", one_per_account=True),
                name="one_active_key_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_state_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding:
            from keys.digital_keys import KINDS

            kind = KINDS.get(self.kind)
            self.one_per_account = not (kind is not None and kind.several_per_account)
        super().save(*args, **kwargs)

    def in_probation(self, now: Any = None) -> bool:
        """Whether the key is still on probation (``probation_until`` in the future)."""
        return self.probation_until is not None and self.probation_until > (now or timezone.now())


class OneTimeCode(models.Model):
    """A registration code sent by e-mail or SMS to prove a digital key (SPEC §3).

    Only a keyed hash of the code is stored. A code is valid ``OTP_TTL``, allows
    ``OTP_MAX_ATTEMPTS`` wrong tries, and is consumed by its first correct use. Only the newest
    code of a key counts: sending a new code marks every older unused one as consumed, so an old
    code can never come back once the newest is used.
    """

    key = models.ForeignKey(DigitalKey, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    consumed_at = models.DateTimeField(null=True, blank=True)
    delivered = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("registration code")
        verbose_name_plural = _("registration codes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.key} {self.created_at:%Y-%m-%d %H:%M:%S}"


class SignInAttempt(models.Model):
    """One try to sign in, kept per canonical username, whether that account exists or not:
    lockouts then apply to any name, so they reveal nothing about which usernames exist."""

    username_canonical = models.CharField(max_length=256, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("sign-in attempt")
        verbose_name_plural = _("sign-in attempts")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.username_canonical} {self.created_at:%Y-%m-%d %H:%M:%S}"


class SignInGuard(models.Model):
    """One row per canonical username, locked while a sign-in try is counted.

    Taking this row's lock before reading the failures and recording the try (as a failure until
    proven otherwise) makes the count atomic: parallel guesses, from as many addresses as an
    attacker likes, are serialised here and cannot get past ``SIGNIN_MAX_FAILURES``.
    """

    username_canonical = models.CharField(max_length=256, unique=True)

    class Meta:
        verbose_name = _("sign-in guard")
        verbose_name_plural = _("sign-in guards")

    def __str__(self) -> str:
        return self.username_canonical


class KnownBrowser(models.Model):
    """A browser an account signed in from before (its cookie's id, hashed)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="known_browsers"
    )
    browser_hash = models.CharField(max_length=64)
    user_agent = models.CharField(max_length=300, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("known browser")
        verbose_name_plural = _("known browsers")
        constraints = [
            models.UniqueConstraint(fields=["user", "browser_hash"], name="one_row_per_browser")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.first_seen:%Y-%m-%d}"


class OutboundMessage(models.Model):
    """An e-mail or SMS on its way: the outbox behind every delivery.

    The content (which may carry a code or a link) is stored only encrypted, and erased once the
    message is sent. A delivery task sends it; when the mail server or SMS gateway is down it is
    tried again with growing delays (``DELIVERY_*`` limits). A worker claims a message under a
    row lock (``sending``), sends it with no lock held, then records the outcome; a claim lets no
    other worker send it meanwhile, and a stale claim (a worker killed mid-send) is taken again.
    When tasks run inline (the immediate backend), the row is inserted already claimed by the
    request that sends it (``keys.delivery``).
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENDING = "sending", _("Being sent")
        RETRYING = "retrying", _("Failed, will be tried again")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Not sent")
        CANCELLED = "cancelled", _("No longer needed")

    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    purpose = models.CharField(_("purpose"), max_length=40)
    recipient = models.CharField(_("recipient"), max_length=254)
    payload_encrypted = models.TextField(blank=True, editable=False)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # When a worker took the message to send it; a claim older than DELIVERY_CLAIM_TIMEOUT
    # belongs to a worker that died mid-send, and the message is taken again.
    claimed_at = models.DateTimeField(_("being sent since"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    activation = models.ForeignKey(
        Activation, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    one_time_code = models.ForeignKey(
        OneTimeCode, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )

    class Meta:
        verbose_name = _("outgoing message")
        verbose_name_plural = _("outgoing messages")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.purpose} ({self.get_status_display()})"


def audit_action_choices() -> list[tuple[str, Any]]:
    """The audit trail's actions: the app's own (``AuditEvent.Action``), then those the kinds of
    key add (``KeyKind.audit_actions``), so that a kind's events need no change here."""
    from keys.digital_keys import KINDS

    return [
        *AuditEvent.Action.choices,
        *(action for kind in KINDS.values() for action in kind.audit_actions),
    ]


class AuditEvent(models.Model):
    """Something that happened: a state change or a refused attempt (SPEC §4).

    ``detail`` holds context for the helpdesk and never a secret.
    """

    class Action(models.TextChoices):
        CITIZEN_REGISTERED = "citizen_registered", _("Citizen registered")
        CITIZEN_UPDATED = "citizen_updated", _("Citizen's record changed")
        ACTIVATION_ISSUED = "activation_issued", _("Activation issued")
        ACTIVATION_SUPERSEDED = "activation_superseded", _("Activation superseded by a reissue")
        ACTIVATION_REVOKED = "activation_revoked", _("Activation revoked")
        ACTIVATION_EXPIRED = "activation_expired", _("Activation expired")
        LETTER_SHOWN = "letter_shown", _("Activation letter shown (code displayed once)")
        EMAIL_SENT = "email_sent", _("Activation e-mail sent")
        EMAIL_FAILED = "email_failed", _("Activation e-mail could not be sent")
        ACTIVATION_LINK_RENEWED = (
            "activation_link_renewed",
            _("Activation e-mail sent again with a new link"),
        )
        LINK_OPENED = "link_opened", _("Activation link opened")
        LINK_REFUSED = "link_refused", _("Activation link refused")
        CODE_ACCEPTED = "code_accepted", _("Activation code accepted")
        CODE_REJECTED = "code_rejected", _("Wrong activation code")
        ACTIVATION_LOCKED = "activation_locked", _("Activation locked after too many wrong codes")
        TERMS_ACCEPTED = "terms_accepted", _("Terms of use accepted")
        ACCOUNT_CREATED = "account_created", _("Account created")
        CHALLENGE_SENT = "challenge_sent", _("Registration code sent")
        CHALLENGE_FAILED = "challenge_failed", _("Registration code could not be delivered")
        CHALLENGE_REFUSED = "challenge_refused", _("New code refused (too many requests)")
        KEY_CODE_REJECTED = "key_code_rejected", _("Wrong key code")
        KEY_ACTIVATED = "key_activated", _("Digital key activated")
        ACTIVATION_COMPLETED = "activation_completed", _("Activation completed")
        RATE_LIMITED = "rate_limited", _("Request refused: too many attempts")
        SIGNIN_SUCCEEDED = "signin_succeeded", _("Signed in")
        SIGNIN_FAILED = "signin_failed", _("Sign-in failed")
        SIGNIN_LOCKED = "signin_locked", _("Sign-in locked after too many failures")
        SIGNED_OUT = "signed_out", _("Signed out")
        SIGNED_OUT_EVERYWHERE = "signed_out_everywhere", _("Signed out everywhere")
        NEW_BROWSER = "new_browser", _("Sign-in from a new browser")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        PASSWORD_RESET = "password_reset", _("New password set with a new activation")
        KEY_REMOVED = "key_removed", _("Digital key removed")
        KEY_CANCELLED = "key_cancelled", _("Digital key on probation cancelled")
        CHANGE_REFUSED = "change_refused", _("Change refused: no sign-in with a digital key")
        PHONE_CHANGED = "phone_changed", _("Mobile number of the SMS key changed")
        KEY_BLOCKED = "key_blocked", _("Digital key blocked by the helpdesk")
        SIGNIN_UNLOCKED = "signin_unlocked", _("Sign-in lockout lifted by the helpdesk")
        # staff accounts' second factor (keys/services/staff.py)
        STAFF_FACTOR_ENROLLED = "staff_factor_enrolled", _("Staff second factor set up")
        STAFF_FACTOR_RESET = (
            "staff_factor_reset",
            _("Staff second factor reset by an administrator"),
        )
        CITIZEN_VIEWED = "citizen_viewed", _("Citizen's page viewed by the helpdesk")
        AUDIT_EXPORTED = "audit_exported", _("Activity exported as CSV")
        CITIZEN_LOOKED_UP = "citizen_looked_up", _("Citizen of another office looked up")
        RECOVERY_CODES_CREATED = "recovery_codes_created", _("New recovery codes made")
        RECOVERY_CODE_USED = "recovery_code_used", _("Signed in with a recovery code")
        OIDC_SIGNIN = "oidc_signin", _("Signed in at a government service")
        OIDC_REFUSED = "oidc_refused", _("Sign-in at a government service refused")
        OIDC_CONSENT_WITHDRAWN = (
            "oidc_consent_withdrawn",
            _("Consent for a government service withdrawn"),
        )

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    action = models.CharField(_("what"), max_length=40, choices=audit_action_choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("who"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(_("who"), max_length=150, blank=True)
    citizen = models.ForeignKey(
        Citizen,
        verbose_name=_("citizen"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    activation = models.ForeignKey(
        Activation,
        verbose_name=_("activation"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at", "-id"], name="auditevent_newest_first")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.get_action_display()}"

    def get_action_display(self) -> str:
        """The action's label, as Django's generated method gives it; that one calls the
        callable ``choices`` and hashes all of them on every call (about 0.3 ms an event on a
        citizen's own page, which lists twelve)."""
        return force_str(_action_labels().get(self.action, self.action), strings_only=True)


def _action_labels() -> dict[str, Any]:
    from keys.digital_keys import KINDS

    # Rebuilt only when the kinds' own actions change (a kind registered, a test's plug-in).
    return _labels_for(tuple((name, tuple(kind.audit_actions)) for name, kind in KINDS.items()))


@functools.lru_cache(maxsize=32)
def _labels_for(_kinds_actions: tuple) -> dict[str, Any]:
    return dict(audit_action_choices())  # lazy labels: translated when shown


class RecoveryCode(models.Model):
    """One recovery code of an account, stored only as a keyed hash; used once
    (``keys.services.recovery``)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes"
    )
    code_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")
        indexes = [models.Index(fields=["user", "used_at"], name="recoverycode_user_unused")]

    def __str__(self) -> str:
        return f"{self.user} {self.created_at:%Y-%m-%d}"


# The kinds of key (``keys.digital_keys``), imported once every model above exists: a kind with
# a table of its own (the passkey's credential, ``keys/digital_keys/passkey/models.py``,
# ``app_label = "keys"``) imports its models from its module, so they are registered with this
# app however the registry or this module is first imported. A plain ``import`` (no name taken
# from the module) also works while ``keys.digital_keys`` is itself still being imported.
import keys.digital_keys  # noqa: E402, F401
