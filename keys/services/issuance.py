"""Issuing activations at the counter: register, issue, reissue, revoke, resend.

The paper code and link token exist in clear only in the :class:`IssuedActivation` returned to
the caller, which shows the code once (the printable letter, or the command's output) and mails
the link. Nothing else keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone, translation

from keys import audit, delivery, tokens
from keys.conf import limits
from keys.mail import build_email
from keys.models import (
    Activation,
    AuditEvent,
    Citizen,
    OutboundMessage,
    RegistrationOffice,
    User,
)

Action = AuditEvent.Action


@dataclass
class IssuedActivation:
    """An activation just issued, with its secrets in clear: show the code once, then drop it."""

    activation: Activation
    activation_code: str
    activation_link: str

    @property
    def formatted_code(self) -> str:
        return tokens.format_activation_code(self.activation_code)

    @property
    def email_sent(self) -> bool:
        return self.activation.email_status == Activation.EmailStatus.SENT


def activation_link(token: str, language: str) -> str:
    """The absolute link the citizen receives, opening the wizard in their language."""
    with translation.override(language):
        path = reverse("keys:activation-link", kwargs={"token": token})
    return f"{settings.SITE_URL}{path}"


class OpenActivationExists(Exception):
    """The citizen already has an open activation and the caller asked not to supersede it."""

    def __init__(self, activation: Activation) -> None:
        super().__init__(f"activation {activation.pk} is still open")
        self.activation = activation


def issue_activation(
    citizen: Citizen,
    *,
    issued_by: User | None,
    office: RegistrationOffice | None = None,
    request: HttpRequest | None = None,
    actor_label: str = "",
    supersede: bool = True,
) -> IssuedActivation:
    """Issue a fresh activation to ``citizen`` and e-mail its link.

    Any activation still open for the citizen is superseded first (a reissue), so at most one
    link and code work at a time; the database enforces that too. The e-mail is sent after the
    activation is saved; its outcome is recorded on the activation (``email_status``) so that a
    failed delivery is visible and can be retried with :func:`resend_activation_email`.
    """
    issued = create_activation(
        citizen,
        issued_by=issued_by,
        office=office,
        request=request,
        actor_label=actor_label,
        supersede=supersede,
    )
    send_activation_email(issued.activation, issued.activation_link)
    return issued


def create_activation(
    citizen: Citizen,
    *,
    issued_by: User | None,
    office: RegistrationOffice | None = None,
    request: HttpRequest | None = None,
    actor_label: str = "",
    supersede: bool = True,
) -> IssuedActivation:
    """Save a fresh activation in one transaction, without sending its e-mail.

    The caller sends the e-mail (:func:`send_activation_email`) once its own transaction, if
    any, has committed, so that no lock is held while a mail server answers. With
    ``supersede=False`` an open activation is not replaced: :class:`OpenActivationExists` is
    raised instead (bulk issuance: running the same file twice issues nothing twice).

    When ``office`` is not the citizen's office, the citizen is served where they came: their
    record moves to ``office`` (see :func:`take_over`) and the audit trail names both offices.
    """
    office = office or citizen.office
    code = tokens.generate_activation_code()
    token = tokens.generate_link_token()
    now = timezone.now()
    with transaction.atomic():
        Citizen.objects.select_for_update().filter(pk=citizen.pk).first()
        previous = list(
            Activation.objects.select_for_update().filter(
                citizen=citizen, state__in=Activation.OPEN_STATES
            )
        )
        if previous and not supersede:
            raise OpenActivationExists(previous[0])
        previous_office = take_over(
            citizen, office, by=issued_by, request=request, actor_label=actor_label
        )
        for old in previous:
            old.state = Activation.State.SUPERSEDED
            old.closed_at = now
            old.save(update_fields=["state", "closed_at"])
        activation = Activation.objects.create(
            citizen=citizen,
            office=office,
            issued_by=issued_by,
            link_token_hash=tokens.hash_link_token(token),
            code_hash=tokens.hash_activation_code(code),
            expires_at=now + limits.ACTIVATION_LINK_TTL,
            created_at=now,
        )
        for old in previous:
            old.superseded_by = activation
            old.save(update_fields=["superseded_by"])
            audit.record(
                Action.ACTIVATION_SUPERSEDED,
                request=request,
                actor=issued_by,
                actor_label=actor_label,
                activation=old,
                superseded_by=activation.pk,
            )
        detail = {"previous_office": previous_office.code} if previous_office else {}
        audit.record(
            Action.ACTIVATION_ISSUED,
            request=request,
            actor=issued_by,
            actor_label=actor_label,
            activation=activation,
            office=office.code,
            expires_at=activation.expires_at.isoformat(),
            reissue_of=[old.pk for old in previous],
            **detail,
        )
    link = activation_link(token, citizen.language)
    return IssuedActivation(activation=activation, activation_code=code, activation_link=link)


def take_over(
    citizen: Citizen,
    office: RegistrationOffice,
    *,
    by: User | None,
    request: HttpRequest | None = None,
    actor_label: str = "",
) -> RegistrationOffice | None:
    """Move the citizen's record to ``office``, where they are being served now.

    A citizen may go to any registration office: the office that reissues or revokes their
    activation takes their record over (it then lists it; the former office keeps listing the
    activations it issued). Records ``citizen_updated`` with both offices. Returns the former
    office, or None when the record was already there. Call inside a transaction.
    """
    current = Citizen.objects.select_for_update().select_related("office").get(pk=citizen.pk)
    if current.office_id == office.pk:
        return None
    previous = current.office
    Citizen.objects.filter(pk=citizen.pk).update(office=office, updated_at=timezone.now())
    citizen.office = office
    audit.record(
        Action.CITIZEN_UPDATED,
        request=request,
        actor=by,
        actor_label=actor_label,
        citizen=citizen,
        fields=["office"],
        office=office.code,
        previous_office=previous.code,
    )
    return previous


def send_activation_email(activation: Activation, link: str) -> bool:
    """Queue the activation e-mail; True when it is already sent (immediate delivery).

    The outcome is recorded on the activation (``email_status``) by the delivery, so a failed or
    delayed e-mail is visible to the clerk and the helpdesk and can be sent again.
    """
    citizen = activation.citizen
    message = build_email(
        "activation",
        {"citizen": citizen, "activation": activation, "activation_link": link},
        to=citizen.email,
        language=citizen.language,
    )
    outbound = delivery.queue_email(message, purpose="activation_link", activation=activation)
    activation.refresh_from_db()
    return outbound.status == OutboundMessage.Status.SENT


def resend_activation_email(
    activation: Activation, *, by: User | None, request: HttpRequest | None = None
) -> bool:
    """Mail the link of an open activation again, to the address now on record.

    The link token is never stored in clear, so the resent mail carries a new link; the old
    link stops working and the paper code stays the same. Returns whether the mail went out.
    """
    token = tokens.generate_link_token()
    with transaction.atomic():
        # The state is read with the row locked: a citizen completing, a clerk revoking or
        # reissuing at the same moment is either before or after this, never in between.
        locked = Activation.objects.select_for_update().get(pk=activation.pk)
        if not locked.is_open:
            raise ValueError("Only an open activation can be sent again.")
        delivery.cancel_pending(locked, "activation_link")
        Activation.objects.filter(pk=locked.pk).update(
            link_token_hash=tokens.hash_link_token(token),
            email_status=Activation.EmailStatus.PENDING,
        )
        audit.record(Action.ACTIVATION_LINK_RENEWED, request=request, actor=by, activation=locked)
    activation.refresh_from_db()
    link = activation_link(token, activation.citizen.language)
    return send_activation_email(activation, link)


def revoke_activation(
    activation: Activation,
    *,
    by: User | None,
    request: HttpRequest | None = None,
    office: RegistrationOffice | None = None,
) -> bool:
    """Cancel an open activation: its link and code stop working. Returns whether it changed.

    ``office`` is the office of the clerk who revokes: when it is not the citizen's, it takes the
    record over (:func:`take_over`) and the audit event names both offices. The activation
    itself keeps the office that issued it.
    """
    with transaction.atomic():
        updated = Activation.objects.filter(
            pk=activation.pk, state__in=Activation.OPEN_STATES
        ).update(state=Activation.State.REVOKED, closed_at=timezone.now())
        if updated:
            activation.refresh_from_db()
            detail = {}
            if office is not None:
                previous_office = take_over(activation.citizen, office, by=by, request=request)
                detail["office"] = office.code
                if previous_office is not None:
                    detail["previous_office"] = previous_office.code
            audit.record(
                Action.ACTIVATION_REVOKED,
                request=request,
                actor=by,
                activation=activation,
                **detail,
            )
    return bool(updated)


def current_activation(citizen: Citizen) -> Activation | None:
    """The citizen's most recent activation, whatever its state."""
    return citizen.activations.order_by("-created_at").first()
