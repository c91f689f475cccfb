"""Beveiligingscode via e-mail: a 6-digit code mailed from "CSAM My Digital Keys"."""

from typing import Any

from django.utils.translation import gettext_lazy as _

from keys.conf import limits
from keys.delivery import queue_email
from keys.digital_keys.base import DeliveredCodeKind
from keys.mail import build_email
from keys.models import DigitalKey, OneTimeCode, OutboundMessage


def mask_email(address: str) -> str:
    """``jan.peeters@example.be`` -> ``ja…@example.be``."""
    local, _sep, domain = address.partition("@")
    return f"{local[:2]}…@{domain}" if domain else address


class EmailKind(DeliveredCodeKind):
    kind = DigitalKey.Kind.EMAIL
    amr = "email"
    label = _("Security code by e-mail")
    code_label = _("Registration code")
    activated_title = _("E-mail address activated!")
    activated_text = _(
        "Your e-mail address was activated successfully. From now on you can sign in to the "
        "online government (*) with your username + password and the security code you "
        "receive by e-mail."
    )
    instructions_template = "keys/digital_keys/email.html"

    def choice_help(self, citizen: Any) -> str:
        email = getattr(citizen, "email", "")
        return _("You receive a code by e-mail at %(email)s.") % {"email": email}

    def target_fields(self, citizen: Any, phone: str = "") -> dict[str, str]:
        return {"email": getattr(citizen, "email", "")}

    def deliver(
        self, key: DigitalKey, code: str, challenge: OneTimeCode, *, signin: bool = False
    ) -> OutboundMessage:
        citizen = getattr(key.user, "citizen", None)
        language = citizen.language if citizen else "nl"
        message = build_email(
            "registration_code",
            {
                "code": code,
                "key": key,
                "minutes": int(limits.OTP_TTL.total_seconds() // 60),
                "signin": signin,
            },
            to=key.email,
            language=language,
        )
        return queue_email(message, purpose="registration_code", one_time_code=challenge)

    def describe(self, key: DigitalKey) -> str:
        return mask_email(key.email)
