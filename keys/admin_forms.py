"""Forms the registration clerks fill in through the admin."""

from datetime import date

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from keys.conf import limits
from keys.models import Activation, Citizen, RegistrationOffice
from keys.phones import normalize_mobile_number
from keys.validators import age_on, normalize_national_number, parse_national_number


class CitizenForm(forms.ModelForm):
    """The record taken at the counter, with the checks a clerk needs to get it right once."""

    # The office of the clerk registering (set by the admin): a person already registered at
    # another office is pointed to the lookup that lets this office serve them.
    clerk_office: RegistrationOffice | None = None

    class Meta:
        model = Citizen
        fields = [
            "first_name",
            "last_name",
            "national_number",
            "email",
            "phone",
            "language",
            "id_document_type",
            "id_document_number",
            "office",
        ]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Accept "85.07.30-033.28": the model field holds 11 digits, the form takes the
        # written form and normalises it in clean_national_number.
        if "national_number" in self.fields:
            self.fields["national_number"].max_length = 20
            self.fields["national_number"].widget.attrs["maxlength"] = 20
            self.fields["national_number"].validators = []

    def clean_first_name(self) -> str:
        return " ".join(self.cleaned_data["first_name"].split())

    def clean_last_name(self) -> str:
        return " ".join(self.cleaned_data["last_name"].split())

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean_id_document_number(self) -> str:
        return "".join(self.cleaned_data["id_document_number"].split()).upper()

    def clean_national_number(self) -> str:
        number = parse_national_number(self.cleaned_data["national_number"])
        today = timezone.localdate()
        if number.birth_date and age_on(number.birth_date, today) < limits.MINIMUM_AGE_YEARS:
            raise ValidationError(
                _("Digital keys can only be issued from the age of %(age)d.")
                % {"age": limits.MINIMUM_AGE_YEARS},
                code="too_young",
            )
        digits = number.digits
        existing = Citizen.objects.filter(national_number=digits).exclude(pk=self.instance.pk)
        existing = existing.select_related("office").first()
        if (
            existing is not None
            and self.clerk_office is not None
            and existing.office_id != self.clerk_office.pk
        ):
            raise ValidationError(
                format_html(
                    '{} <a href="{}">{}</a>',
                    _(
                        "This person is already registered, at %(office)s. Any office may serve "
                        "them: find them by their national number to reissue or revoke their "
                        "activation here."
                    )
                    % {"office": existing.office},
                    reverse("admin:keys_citizen_find"),
                    _("Find a citizen of another office"),
                ),
                code="registered_elsewhere",
            )
        if existing is not None:
            open_activation = existing.activations.open().first()
            if open_activation is not None:
                raise ValidationError(
                    _(
                        "This person already has an open activation, issued on %(date)s by "
                        "%(office)s. Use “Reissue activation” on their record instead of "
                        "registering them again."
                    )
                    % {
                        "date": formats.date_format(
                            timezone.localtime(open_activation.created_at), "DATE_FORMAT"
                        ),
                        "office": open_activation.office,
                    },
                    code="duplicate_open",
                )
            raise ValidationError(
                _(
                    "This person is already registered (by %(office)s). Open their record and "
                    "use “Reissue activation” to give them a new activation."
                )
                % {"office": existing.office},
                code="duplicate",
            )
        return digits

    def clean_phone(self) -> str:
        phone = self.cleaned_data.get("phone", "").strip()
        if not phone:
            return ""
        return normalize_mobile_number(phone)


def birth_date_of(national_number: str) -> date | None:
    """The birth date a valid national number encodes, for display."""
    return parse_national_number(normalize_national_number(national_number)).birth_date


class ConfirmActionForm(forms.Form):
    """The second step of a destructive admin action."""

    confirm = forms.BooleanField(required=True)


def open_activation_of(citizen: Citizen) -> Activation | None:
    return citizen.activations.open().first()


class FindCitizenForm(forms.Form):
    """A citizen of another office is found by their exact national number only: the whole
    number as people type it (dots, dashes, spaces), never a part of it, a name or a list."""

    national_number = forms.CharField(
        label=gettext_lazy("National register or BIS number"),
        max_length=20,
        help_text=gettext_lazy("The whole number, for example 85.07.30-033.28."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )

    def clean_national_number(self) -> str:
        value = self.cleaned_data["national_number"]
        digits = normalize_national_number(value)
        if digits.isdigit() and len(digits) < 11:
            raise ValidationError(
                _(
                    "Type the whole national register or BIS number (11 digits): a citizen of "
                    "another office is found by their exact number only."
                ),
                code="partial",
            )
        return parse_national_number(value).digits
