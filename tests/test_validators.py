from datetime import date

import pytest
from django.core.exceptions import ValidationError

from keys.validators import (
    CSAMCompositionValidator,
    MaximumLengthValidator,
    UsernameValidator,
    canonical_username,
    parse_national_number,
)


def check_digits(first_nine: str, born_2000s: bool = False) -> str:
    base = int(first_nine) + (2_000_000_000 if born_2000s else 0)
    return f"{97 - base % 97:02d}"


class TestNationalNumber:
    @pytest.mark.parametrize(
        ("value", "birth_date"),
        [
            ("85073003328", date(1985, 7, 30)),
            ("85.07.30-033.28", date(1985, 7, 30)),
            ("85 07 30 033 28", date(1985, 7, 30)),
            ("90010112395", date(1990, 1, 1)),
        ],
    )
    def test_valid_numbers_of_the_20th_century(self, value, birth_date):
        number = parse_national_number(value)
        assert number.birth_date == birth_date
        assert not number.is_bis
        assert number.digits == value.replace(".", "").replace("-", "").replace(" ", "")

    def test_births_from_2000_use_the_2_prefix(self):
        # 97 - (2010203456 mod 97) = 3; without the prefix the check digits would be 71.
        assert check_digits("010203456", born_2000s=True) == "03"
        number = parse_national_number("01020345603")
        assert number.birth_date == date(2001, 2, 3)

    def test_a_1901_birth_uses_no_prefix(self):
        assert parse_national_number("01020345671").birth_date == date(1901, 2, 3)

    @pytest.mark.parametrize(("offset", "month"), [(20, 7), (40, 7)])
    def test_bis_numbers_add_20_or_40_to_the_month(self, offset, month):
        first_nine = f"85{month + offset:02d}30033"
        number = parse_national_number(first_nine + check_digits(first_nine))
        assert number.is_bis
        assert number.birth_date == date(1985, month, 30)

    def test_unknown_birth_date_is_allowed(self):
        first_nine = "850000033"
        number = parse_national_number(first_nine + check_digits(first_nine))
        assert number.birth_date is None

    @pytest.mark.parametrize(
        ("value", "code"),
        [
            ("85073003329", "checksum"),
            ("8507300332", "format"),
            ("850730033288", "format"),
            ("8507300332a", "format"),
            ("", "format"),
            ("٨٥٠٧٣٠٠٣٣٢٨", "format"),  # Arabic-Indic digits are digits, but not ours
        ],
    )
    def test_bad_numbers_are_refused_with_a_reason(self, value, code):
        with pytest.raises(ValidationError) as error:
            parse_national_number(value)
        assert error.value.code == code
        assert error.value.messages[0]

    @pytest.mark.parametrize(
        ("first_nine", "code"),
        [
            ("851330033", "month"),  # month 13
            ("853530033", "month"),  # 35: neither regular nor BIS
            ("850230033", "date"),  # 30 February
            ("850731000", "serial"),  # serial 000
        ],
    )
    def test_impossible_contents_are_refused(self, first_nine, code):
        with pytest.raises(ValidationError) as error:
            parse_national_number(first_nine + check_digits(first_nine))
        assert error.value.code == code

    def test_a_date_in_the_future_is_refused(self):
        first_nine = "991231033"  # 2099-12-31 with the 2000 prefix
        with pytest.raises(ValidationError) as error:
            parse_national_number(first_nine + check_digits(first_nine, born_2000s=True))
        assert error.value.code == "future"

    def test_formatted(self):
        assert parse_national_number("85073003328").formatted == "85.07.30-033.28"


class TestUsername:
    @pytest.mark.parametrize(
        "value", ["jan.peeters", "jan_peeters-1", "j@n.be", "Zoë.Dubois", "a" * 64]
    )
    def test_valid(self, value):
        UsernameValidator()(value)

    @pytest.mark.parametrize(
        ("value", "code"),
        [
            ("abcde", "min_length"),
            ("a" * 65, "max_length"),
            ("jan peeters", "invalid"),
            ("jan/peeters", "invalid"),
            ("jan<script>", "invalid"),
        ],
    )
    def test_invalid(self, value, code):
        with pytest.raises(ValidationError) as error:
            UsernameValidator()(value)
        assert error.value.code == code

    def test_canonical_form_ignores_case_and_unicode_form(self):
        assert canonical_username("Jan.Peeters") == canonical_username("jan.peeters")
        assert canonical_username("ｊａｎ.peeters") == canonical_username("jan.peeters")
        # "é" precomposed (NFC) and as e + combining accent (NFD)
        assert canonical_username("jos\u00e9.x") == canonical_username("jose\u0301.x")
        assert canonical_username("STRASSE.x") == canonical_username("straße.x")


class TestPasswordRules:
    def test_csam_composition(self):
        validator = CSAMCompositionValidator()
        validator.validate("Correct-Horse-9")
        for weak in ["correct-horse-9", "CORRECT-HORSE-9", "Correct-Horse-x", "CorrectHorse9"]:
            with pytest.raises(ValidationError):
                validator.validate(weak)

    def test_maximum_length_boundary(self):
        validator = MaximumLengthValidator(128)
        validator.validate("A" * 128)
        with pytest.raises(ValidationError):
            validator.validate("A" * 129)
