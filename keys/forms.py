"""The citizen's forms. Labels follow the seed's Dutch wording through the catalogs.

Forms that check a secret do not do it themselves: the view hands them a ``check`` callable from
``keys.services.activation``, so the check (and its counting of wrong tries) runs exactly once, on
the POST of that step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from keys import tokens
from keys.conf import limits
from keys.digital_keys import KINDS, VerifyResult
from keys.models import Citizen, User
from keys.phones import format_mobile_number, normalize_mobile_number
from keys.services.activation import CodeOutcome, CodeResult
from keys.services.challenges import verify_error
from keys.validators import UsernameValidator, canonical_username

CODE_INPUT_ATTRS = {
    "autocomplete": "off",
    "autocapitalize": "characters",
    "spellcheck": "false",
    "class": "code-input",
}


def password_help() -> str:
    """The password rules as HTML (Django's ``password_validators_help_text_html``), built once
    per language and set of validators. Django's is lazy: it asks each validator for its text
    again wherever the page reads it (twice per field, about 0.1 ms each time)."""
    validators = tuple(password_validation.get_default_password_validators())
    return _password_help_for(translation.get_language(), validators)


@functools.lru_cache(maxsize=32)
def _password_help_for(_language: str | None, validators: tuple) -> str:
    # Made now, in the language it is kept under (the active one); format_html's output, safe.
    made = str(password_validation.password_validators_help_text_html(list(validators)))
    return mark_safe(made)  # noqa: S308


class ActivationCodeForm(forms.Form):
    activation_code = forms.CharField(
        label=gettext_lazy("Activation code"),
        max_length=30,
        help_text=gettext_lazy("10 characters, as printed on your paper: for example ABCDE-12345."),
        widget=forms.TextInput(attrs=CODE_INPUT_ATTRS),
    )

    def __init__(
        self,
        *args: object,
        check: Callable[[str], CodeResult] | None = None,
        verified: bool = False,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.check = check
        self.verified = verified
        if verified:
            self.fields["activation_code"].required = False

    def clean_activation_code(self) -> str:
        if self.verified:
            return ""
        code = tokens.normalize_activation_code(self.cleaned_data["activation_code"])
        if not tokens.is_well_formed_activation_code(code):
            raise ValidationError(
                _(
                    "An activation code has 10 characters, digits and capital letters, for "
                    "example ABCDE-12345. Check what you typed."
                ),
                code="format",
            )
        result = self.check(code) if self.check else CodeResult(CodeOutcome.CLOSED)
        if result.outcome == CodeOutcome.WRONG:
            raise ValidationError(
                ngettext(
                    "This activation code is not correct. You have %(count)d more attempt.",
                    "This activation code is not correct. You have %(count)d more attempts.",
                    result.remaining_attempts,
                )
                % {"count": result.remaining_attempts},
                code="wrong",
            )
        if result.outcome == CodeOutcome.LOCKED:
            raise ValidationError(
                _(
                    "Too many wrong activation codes: this activation is now locked. Go back to "
                    "your registration office for a new activation code."
                ),
                code="locked",
            )
        if result.outcome == CodeOutcome.CLOSED:
            raise ValidationError(
                _("This activation can no longer be used. Go back to your registration office."),
                code="closed",
            )
        return ""


class KeyChoiceForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("Choose your digital key"),
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("Choose a digital key.")},
    )
    phone = forms.CharField(
        label=gettext_lazy("Mobile number"),
        required=False,
        max_length=30,
        help_text=gettext_lazy(
            "Only for SMS: the number that will receive the codes, for example 0470 12 34 56."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}),
    )
    accept_terms = forms.BooleanField(
        label=gettext_lazy("I accept the terms of use"),
        error_messages={
            "required": gettext_lazy("You can only continue if you accept the terms of use.")
        },
    )

    def __init__(
        self,
        *args: object,
        excluded_kinds: tuple[str, ...] = (),
        citizen: Citizen | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.citizen = citizen
        self.fields["kind"].choices = [
            (kind.kind, kind.label) for kind in KINDS.values() if kind.kind not in excluded_kinds
        ]

    @property
    def kind_options(self) -> list[tuple[object, str, bool, bool]]:
        """Each radio with its kind's help line, whether it asks for a mobile number and
        whether the browser must be able to make the key (``browser_ceremony``: shown by the
        kind's script)."""
        options = []
        for radio in self["kind"]:
            kind = KINDS[radio.data["value"]]
            options.append(
                (radio, kind.choice_help(self.citizen), kind.needs_phone, kind.browser_ceremony)
            )
        return options

    @property
    def kind_notes(self) -> list[str]:
        """The ``choice_note`` of each offered kind the browser must be able to make."""
        notes = []
        for radio in self["kind"]:
            kind = KINDS[radio.data["value"]]
            if kind.browser_ceremony and kind.choice_note:
                notes.append(kind.choice_note)
        return notes

    def clean(self) -> dict:
        data = super().clean()
        kind = KINDS.get(data.get("kind") or "")
        if kind is not None and kind.needs_phone:
            phone = (data.get("phone") or "").strip()
            if not phone:
                self.add_error("phone", _("Enter the mobile number that should receive the SMS."))
            else:
                try:
                    data["phone"] = normalize_mobile_number(phone)
                except ValidationError as error:
                    self.add_error("phone", error)
        else:
            data["phone"] = ""
        return data


def new_password_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        strip=False,
        max_length=1000,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


def check_new_password(form: forms.Form, data: dict, user: User) -> None:
    """The two new passwords agree and pass the password validators (``user`` for similarity)."""
    password, confirm = data.get("password"), data.get("password_confirm")
    if password and confirm and password != confirm:
        form.add_error("password_confirm", _("The two passwords are not the same."))
    elif password:
        try:
            password_validation.validate_password(password, user)
        except ValidationError as error:
            form.add_error("password", error)


class AccountForm(forms.Form):
    username = forms.CharField(
        label=gettext_lazy("Username"),
        max_length=200,
        help_text=gettext_lazy("6 to 64 characters: letters, digits and . _ - @"),
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )
    password = new_password_field(gettext_lazy("Password"))
    password_confirm = new_password_field(gettext_lazy("Confirm password"))

    def __init__(
        self,
        *args: object,
        citizen: Citizen | None = None,
        existing: User | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.citizen = citizen
        self.existing = existing
        if existing is not None:
            # A new activation for an existing account: keep the username, set a new password.
            del self.fields["username"]
        self.fields["password"].help_text = password_help()

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        UsernameValidator()(username)
        if User.objects.filter(username_canonical=canonical_username(username)).exists():
            raise ValidationError(
                _("This username is not available. Choose another one."), code="taken"
            )
        return username

    def clean(self) -> dict:
        data = super().clean()
        probe = self.existing or User(username=data.get("username", ""))
        if self.citizen is not None:
            probe.first_name = self.citizen.first_name
            probe.last_name = self.citizen.last_name
            probe.email = self.citizen.email
        check_new_password(self, data, probe)
        return data


class VerifyForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Registration code"),
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9 ]*",
                "class": "code-input",
            }
        ),
    )

    def __init__(
        self,
        *args: object,
        label: str | None = None,
        check: Callable[[str], VerifyResult] | None = None,
        digits: int | None = None,
        no_answer: str = "",
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        if label:
            self.fields["code"].label = label
        self.check = check
        self.no_answer = no_answer
        self.digits = limits.OTP_DIGITS if digits is None else digits
        if self.digits == 0:
            # A kind whose "code" is the browser's answer (``browser_ceremony``): a hidden
            # field that the page's static script fills; ``no_answer`` (the kind's
            # ``ceremony_no_answer``) says so when it comes back empty.
            field = self.fields["code"]
            field.required = False
            field.max_length = 20_000
            field.validators = [
                *(v for v in field.validators if not isinstance(v, MaxLengthValidator)),
                MaxLengthValidator(20_000),
            ]
            field.widget = forms.HiddenInput()

    def clean_code(self) -> str:
        if self.digits == 0:
            return self._clean_browser_answer(self.cleaned_data["code"])
        code = "".join(self.cleaned_data["code"].split())
        digits = self.digits
        if not (code.isascii() and code.isdigit() and len(code) == digits):
            raise ValidationError(
                _("Enter the %(digits)d digits of the code.") % {"digits": digits}, code="format"
            )
        if self.check is None:
            raise ValidationError(_("This code cannot be checked now."), code="no_check")
        result = self.check(code)
        if result.ok:
            return ""
        raise ValidationError(verify_error(result), code=str(result.outcome))

    def _clean_browser_answer(self, answer: str) -> str:
        if not answer.strip():
            raise ValidationError(
                self.no_answer or _("This code is not correct."), code="no_answer"
            )
        if self.check is None:
            raise ValidationError(_("This code cannot be checked now."), code="no_check")
        result = self.check(answer)
        if result.ok:
            return ""
        raise ValidationError(verify_error(result), code=str(result.outcome))


class ActivatedForm(forms.Form):
    next_action = forms.ChoiceField(
        choices=[("another", "another"), ("done", "done")], widget=forms.HiddenInput
    )


def phone_initial(citizen: Citizen) -> str:
    """The clerk's recorded number, in the form people read, to pre-fill the SMS choice."""
    return format_mobile_number(citizen.phone) if citizen.phone else ""


class SignInForm(forms.Form):
    username = forms.CharField(
        label=gettext_lazy("Username"),
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "username webauthn",
                "autocapitalize": "none",
                "spellcheck": "false",
            }
        ),
    )
    password = forms.CharField(
        label=gettext_lazy("Password"),
        strip=False,
        max_length=1000,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class KeyPickForm(forms.Form):
    key = forms.ChoiceField(
        label=gettext_lazy("Choose your digital key"),
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("Choose a digital key.")},
    )

    def __init__(self, *args: object, keys: list | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key"].choices = [
            (str(key.pk), KINDS[key.kind].display_name(key)) for key in (keys or [])
        ]


class CurrentPasswordForm(forms.Form):
    """Asks for the current password before a sensitive change."""

    current_password = forms.CharField(
        label=gettext_lazy("Current password"),
        strip=False,
        max_length=1000,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: object, user: User | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_current_password(self) -> str:
        password = self.cleaned_data["current_password"]
        if self.user is None or not self.user.check_password(password):
            raise ValidationError(_("This is not your current password."), code="wrong_password")
        return password


class NewPasswordForm(CurrentPasswordForm):
    password = new_password_field(gettext_lazy("New password"))
    password_confirm = new_password_field(gettext_lazy("Confirm new password"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password"].help_text = password_help()

    def clean(self) -> dict:
        data = super().clean()
        check_new_password(self, data, self.user)
        return data


class AddKeyForm(KeyChoiceForm):
    """Another key from "Mijn digitale sleutels": a new way to sign in, so the password first."""

    current_password = CurrentPasswordForm.base_fields["current_password"]
    field_order = ["current_password", "kind", "phone", "accept_terms"]

    def __init__(self, *args: object, user: User | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    clean_current_password = CurrentPasswordForm.clean_current_password


class PhoneForm(forms.Form):
    phone = forms.CharField(
        label=gettext_lazy("Mobile number"),
        max_length=30,
        help_text=gettext_lazy("For example 0470 12 34 56 or +32 470 12 34 56."),
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}),
    )

    def clean_phone(self) -> str:
        return normalize_mobile_number(self.cleaned_data["phone"])


class PhoneChangeForm(PhoneForm):
    """A new mobile number changes a way to sign in: the password first."""

    current_password = CurrentPasswordForm.base_fields["current_password"]
    field_order = ["current_password", "phone"]

    def __init__(self, *args: object, user: User | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    clean_current_password = CurrentPasswordForm.clean_current_password
