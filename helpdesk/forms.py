from __future__ import annotations

import datetime

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from keys.models import RegistrationOffice, audit_action_choices

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ReasonForm(forms.Form):
    """The agent's reason for an action: required, kept in the audit event."""

    reason = forms.CharField(
        label=_("Reason"),
        min_length=5,
        max_length=500,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_(
            "Why you do this, for example how you checked the caller's identity. It is kept in "
            "the citizen's audit trail."
        ),
    )


class TimelineFilterForm(forms.Form):
    action = forms.MultipleChoiceField(
        label=_("What"),
        required=False,
        choices=audit_action_choices,
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    since = forms.DateField(label=_("From"), required=False, widget=DATE_INPUT)
    until = forms.DateField(label=_("To"), required=False, widget=DATE_INPUT)
    office = forms.ChoiceField(label=_("Office of the activation"), required=False)

    def __init__(self, *args, offices: list[RegistrationOffice], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The offices are read once by the view, for the choices and the filter.
        self.offices = {str(o.pk): o for o in offices}
        self.fields["office"].choices = [("", _("All offices")), *((o.pk, o.name) for o in offices)]

    def filters(self) -> dict:
        if not self.is_bound or not self.is_valid():
            return {}
        data = self.cleaned_data
        return {
            "actions": data["action"] or None,
            "since": data["since"],
            "until": data["until"],
            "office": self.offices.get(data["office"] or ""),
        }


class FunnelFilterForm(forms.Form):
    since = forms.DateField(label=_("Issued from"), required=False, widget=DATE_INPUT)
    until = forms.DateField(label=_("Issued until"), required=False, widget=DATE_INPUT)
    office = forms.ChoiceField(label=_("Registration office"), required=False)

    WEEKS = 12
    MAX_DAYS = 2 * 366

    def __init__(self, *args, offices: list[RegistrationOffice] | None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.offices = {str(o.pk): o for o in offices or []}
        if offices is None:
            del self.fields["office"]
        else:
            self.fields["office"].choices = [
                ("", _("All offices")),
                *((o.pk, o.name) for o in offices),
            ]

    def clean(self) -> dict:
        data = super().clean()
        today = timezone.localdate()
        until = data.get("until") or today
        since = data.get("since") or until - datetime.timedelta(
            days=until.weekday() + 7 * (self.WEEKS - 1)
        )
        if since > until:
            raise forms.ValidationError(_("The start of the period is after its end."))
        if (until - since).days > self.MAX_DAYS:
            raise forms.ValidationError(_("Choose a period of two years at most."))
        data["since"], data["until"] = since, until
        return data

    def period(self) -> tuple[datetime.date, datetime.date, RegistrationOffice | None]:
        if self.is_valid():
            data = self.cleaned_data
            return data["since"], data["until"], self.offices.get(data.get("office") or "")
        today = timezone.localdate()
        since = today - datetime.timedelta(days=today.weekday() + 7 * (self.WEEKS - 1))
        return since, today, None
