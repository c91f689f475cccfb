"""SMS: a 6-digit code sent to the GSM-nummer through the SMS backend."""

from typing import Any

from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from keys.conf import limits
from keys.delivery import queue_sms
from keys.digital_keys.base import DeliveredCodeKind
from keys.models import DigitalKey, OneTimeCode, OutboundMessage
from keys.phones import format_mobile_number


def mask_phone(e164: str) -> str:
    """``+32470123456`` -> ``+32 470 •• •• 56``: enough to recognise, not to copy."""
    formatted = format_mobile_number(e164)
    digits_seen = 0
    out = []
    total = sum(ch.isdigit() for ch in formatted)
    for ch in formatted:
        if ch.isdigit():
            digits_seen += 1
            out.append(ch if digits_seen <= 5 or digits_seen > total - 2 else "•")
        else:
            out.append(ch)
    return "".join(out)


class SmsKind(DeliveredCodeKind):
    kind = DigitalKey.Kind.SMS
    amr = "sms"
    label = _("SMS")
    code_label = _("Registration code")
    activated_title = _("Mobile number activated!")
    activated_text = _(
        "Your mobile number was activated successfully. From now on you can sign in to the "
        "online government (*) with your username + password and the security code you "
        "receive by SMS."
    )
    instructions_template = "keys/digital_keys/sms.html"
    needs_phone = True

    def choice_help(self, citizen: Any) -> str:
        return str(_("You receive a code by text message on your mobile phone."))

    def target_fields(self, citizen: Any, phone: str = "") -> dict[str, str]:
        return {"phone": phone}

    def deliver(
        self, key: DigitalKey, code: str, challenge: OneTimeCode, *, signin: bool = False
    ) -> OutboundMessage:
        citizen = getattr(key.user, "citizen", None)
        with translation.override(citizen.language if citizen else "nl"):
            template = (
                gettext(
                    "CSAM My Digital Keys: your security code to sign in is %(code)s. It is "
                    "valid for %(minutes)d minutes. Never share it with anyone."
                )
                if signin
                else gettext(
                    "CSAM My Digital Keys: your registration code is %(code)s. It is valid for "
                    "%(minutes)d minutes. Never share it with anyone."
                )
            )
            body = template % {"code": code, "minutes": int(limits.OTP_TTL.total_seconds() // 60)}
        return queue_sms(key.phone, body, purpose="registration_code", one_time_code=challenge)

    def describe(self, key: DigitalKey) -> str:
        return mask_phone(key.phone)
