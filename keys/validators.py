"""Validators for what the counter records and what the citizen chooses.

The national register number rules (SPEC §5): 11 digits ``YYMMDD SSS CC``. ``CC`` is
``97 - (YYMMDDSSS mod 97)``, computed over ``2YYMMDDSSS`` for people born from 2000 on. BIS
numbers (for people not in the national register) add 20 to the month when the sex was unknown
at registration, 40 when it was known. A month or day of ``00`` means the birth date is unknown.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from keys.conf import limits

_SEPARATORS = re.compile(r"[\s.\-/]")


@dataclass(frozen=True)
class NationalNumber:
    """A checked national register or BIS number."""

    digits: str
    birth_date: date | None
    is_bis: bool

    @property
    def formatted(self) -> str:
        d = self.digits
        return f"{d[0:2]}.{d[2:4]}.{d[4:6]}-{d[6:9]}.{d[9:11]}"


def parse_national_number(value: str) -> NationalNumber:
    """Check a national register or BIS number and derive the date of birth.

    Accepts the usual written forms (``85.07.30-033.28``, spaces, dashes). Raises
    ``ValidationError`` with a message a clerk can act on.
    """
    digits = _SEPARATORS.sub("", value or "")
    if not digits.isascii() or not digits.isdigit() or len(digits) != 11:
        raise ValidationError(
            _("A national register number has 11 digits, for example 85.07.30-033.28."),
            code="format",
        )
    base, check = int(digits[:9]), int(digits[9:])
    if 97 - base % 97 == check:
        century = 1900
    elif 97 - (2_000_000_000 + base) % 97 == check:
        century = 2000
    else:
        raise ValidationError(
            _("This national register number is not valid: the check digits do not match."),
            code="checksum",
        )
    serial = int(digits[6:9])
    if serial in {0, 998, 999}:
        raise ValidationError(
            _("This national register number is not valid: the serial number is out of range."),
            code="serial",
        )
    year, month, day = century + int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    is_bis = month > 12
    if 20 <= month <= 32:
        month -= 20
    elif 40 <= month <= 52:
        month -= 40
    elif month > 12:
        raise ValidationError(
            _("This national register number is not valid: the month is out of range."),
            code="month",
        )
    birth_date: date | None = None
    if month and day:
        try:
            birth_date = date(year, month, day)
        except ValueError:
            raise ValidationError(
                _("This national register number is not valid: it contains no real date."),
                code="date",
            ) from None
        if birth_date > date.today():
            raise ValidationError(
                _("This national register number is not valid: the date lies in the future."),
                code="future",
            )
    elif day > 31:
        raise ValidationError(
            _("This national register number is not valid: the day is out of range."),
            code="day",
        )
    return NationalNumber(digits=digits, birth_date=birth_date, is_bis=is_bis)


def validate_national_number(value: str) -> None:
    """Model and form field validator wrapping :func:`parse_national_number`."""
    parse_national_number(value)


def normalize_national_number(value: str) -> str:
    """Strip the separators people write, leaving the digits."""
    return _SEPARATORS.sub("", value or "")


def age_on(birth_date: date, today: date) -> int:
    """Age in whole years on ``today``."""
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


# Usernames ---------------------------------------------------------------------------------

_USERNAME_CHARS = re.compile(r"^[\w.@-]+\Z")


def scripts_of(value: str) -> set[str]:
    """The scripts (LATIN, CYRILLIC, GREEK, ...) of the letters in ``value``.

    A username mixing scripts is how look-alikes are made ("јаn.peeters" with Cyrillic ј and а),
    so usernames keep to one script.
    """
    scripts = set()
    for char in value:
        if char.isalpha():
            name = unicodedata.name(char, "")
            scripts.add(name.split(" ")[0] if name else "UNKNOWN")
    return scripts


def canonical_username(value: str) -> str:
    """The form under which usernames must be unique: NFKC, case-folded, NFKC again.

    "Jan.Peeters", "jan.peeters" and "ｊａｎ.peeters" (full-width) all share one canonical form,
    so none of them can be registered next to another.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


@deconstructible
class UsernameValidator:
    """SPEC §3: 6–64 characters, letters, digits and ``. _ - @``."""

    message = gettext_lazy("Use only letters, digits and the characters . _ - @ (no spaces).")

    def __call__(self, value: str) -> None:
        value = unicodedata.normalize("NFKC", value or "")
        minimum, maximum = limits.USERNAME_MIN_LENGTH, limits.USERNAME_MAX_LENGTH
        if len(value) < minimum:
            raise ValidationError(
                ngettext(
                    "A username has at least %(min)d character.",
                    "A username has at least %(min)d characters.",
                    minimum,
                )
                % {"min": minimum},
                code="min_length",
            )
        if len(value) > maximum:
            raise ValidationError(
                ngettext(
                    "A username has at most %(max)d character.",
                    "A username has at most %(max)d characters.",
                    maximum,
                )
                % {"max": maximum},
                code="max_length",
            )
        if not _USERNAME_CHARS.match(value):
            raise ValidationError(self.message, code="invalid")
        if len(scripts_of(value)) > 1:
            raise ValidationError(
                _(
                    "Use the letters of one alphabet only (for example, no Cyrillic “а” among "
                    "Latin letters)."
                ),
                code="mixed_scripts",
            )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UsernameValidator)


# Passwords ---------------------------------------------------------------------------------


class CSAMCompositionValidator:
    """The CSAM rule: an uppercase letter, a lowercase letter, a digit and a special character.

    On by default (SPEC §3); ``PASSWORD_POLICY=nist`` removes it in favour of length alone, as
    NIST SP 800-63B rev 4 asks.
    """

    def validate(self, password: str, user: object = None) -> None:
        missing = []
        if not any(c.isupper() for c in password):
            missing.append(_("an uppercase letter"))
        if not any(c.islower() for c in password):
            missing.append(_("a lowercase letter"))
        if not any(c.isdigit() for c in password):
            missing.append(_("a digit"))
        if all(c.isalnum() for c in password):
            missing.append(_("a special character such as ! ? # or %"))
        if missing:
            raise ValidationError(
                _("Your password must also contain %(missing)s.")
                % {"missing": ", ".join(str(m) for m in missing)},
                code="password_composition",
            )

    def get_help_text(self) -> str:
        return _(
            "Your password must contain an uppercase letter, a lowercase letter, a digit and a "
            "special character."
        )


class MaximumLengthValidator:
    """Refuse very long passwords (SPEC §3: at most 128), which only cost hashing time."""

    def __init__(self, max_length: int = 128) -> None:
        self.max_length = max_length

    def validate(self, password: str, user: object = None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                ngettext(
                    "Your password can have at most %(max)d character.",
                    "Your password can have at most %(max)d characters.",
                    self.max_length,
                )
                % {"max": self.max_length},
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return ngettext(
            "Your password can have at most %(max)d character.",
            "Your password can have at most %(max)d characters.",
            self.max_length,
        ) % {"max": self.max_length}
