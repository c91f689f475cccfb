"""Mobile numbers: parsed and normalised to E.164 with ``phonenumbers`` (Belgium by default)."""

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

DEFAULT_REGION = "BE"


def normalize_mobile_number(value: str, region: str = DEFAULT_REGION) -> str:
    """Return ``value`` as an E.164 mobile number (``+32470123456``) or raise ValidationError.

    National forms (``0470 12 34 56``) are read as Belgian; numbers of other countries must be
    written with their ``+`` prefix. Fixed lines are refused: they cannot receive an SMS.
    """
    text = (value or "").strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _("Enter a mobile number, for example 0470 12 34 56 or +32 470 12 34 56."),
            code="invalid_phone",
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("This mobile number does not exist. Check the digits and the country code."),
            code="invalid_phone",
        )
    kind = phonenumbers.number_type(number)
    if kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise ValidationError(
            _("This is not a mobile number: it cannot receive text messages."),
            code="not_mobile",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_mobile_number(e164: str) -> str:
    """An E.164 number in the international form people read (``+32 470 12 34 56``)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
