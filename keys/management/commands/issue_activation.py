"""Issue an activation from the command line, as a clerk does at the counter (SPEC §6)."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone, translation

from keys import audit
from keys.admin_forms import CitizenForm
from keys.models import AuditEvent, Citizen, RegistrationOffice
from keys.services import issuance


class Command(BaseCommand):
    help = (
        "Register a citizen and issue an activation: sends the link e-mail and prints the paper "
        "code and the link (once; they are not stored in clear)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--first-name", required=True)
        parser.add_argument("--last-name", required=True)
        parser.add_argument("--national-number", required=True, help="11 digits, dots allowed")
        parser.add_argument("--email", required=True)
        parser.add_argument("--phone", default="", help="mobile number, e.g. +32470123456")
        parser.add_argument(
            "--language", default="nl", choices=[c for c, _ in Citizen.Language.choices]
        )
        parser.add_argument(
            "--office",
            default="",
            help="code of the registration office (default: the only office there is)",
        )
        parser.add_argument(
            "--document-type",
            default=Citizen.DocumentType.ID_CARD,
            choices=[c for c, _ in Citizen.DocumentType.choices],
        )
        parser.add_argument("--document-number", default="")
        parser.add_argument(
            "--reissue",
            action="store_true",
            help="replace an open activation of this person (the old link and code stop working)",
        )
        parser.add_argument("--json", action="store_true", help="print a JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        office = self._office(options["office"])
        data = {
            "first_name": options["first_name"],
            "last_name": options["last_name"],
            "national_number": options["national_number"],
            "email": options["email"],
            "phone": options["phone"],
            "language": options["language"],
            "id_document_type": options["document_type"],
            "id_document_number": options["document_number"] or "-",
            "office": office.pk,
        }
        existing = Citizen.objects.filter(
            national_number="".join(ch for ch in options["national_number"] if ch.isdigit())
        ).first()
        form = CitizenForm(data=data)
        if existing is not None:
            open_activation = existing.activations.open().first()
            if open_activation is not None and not options["reissue"]:
                raise CommandError(
                    f"{existing.full_name} already has an open activation "
                    f"(id {open_activation.pk}, issued {open_activation.created_at:%Y-%m-%d}); "
                    "pass --reissue to replace it."
                )
            # A known person: update their record and issue a fresh activation (a reissue).
            form = CitizenForm(data=data, instance=existing)
        with translation.override("en"):
            valid = form.is_valid()
        if not valid:
            problems = "; ".join(
                f"{field}: {' '.join(str(m) for m in messages)}"
                for field, messages in form.errors.items()
            )
            raise CommandError(problems)
        label = "manage.py issue_activation"
        with transaction.atomic():
            citizen = form.save()
            action = (
                AuditEvent.Action.CITIZEN_UPDATED
                if existing
                else AuditEvent.Action.CITIZEN_REGISTERED
            )
            audit.record(action, actor_label=label, citizen=citizen, office=citizen.office.code)
        issued = issuance.issue_activation(
            citizen, issued_by=None, office=office, actor_label=label
        )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "id": issued.activation.pk,
                        "activation_code": issued.formatted_code,
                        "activation_link": issued.activation_link,
                        "expires_at": issued.activation.expires_at.isoformat(),
                        "email_sent": issued.email_sent,
                    }
                )
            )
            return
        self.stdout.write(f"Activation {issued.activation.pk} for {citizen.full_name}")
        self.stdout.write(f"  activation code (paper): {issued.formatted_code}")
        self.stdout.write(f"  activation link (e-mail): {issued.activation_link}")
        valid_until = timezone.localtime(issued.activation.expires_at)
        self.stdout.write(f"  valid until: {valid_until:%Y-%m-%d %H:%M %Z}")
        if not issued.email_sent:
            self.stderr.write(
                "  WARNING: the activation e-mail could not be sent; give the link by other "
                "means or resend it from the admin."
            )

    def _office(self, code: str) -> RegistrationOffice:
        if code:
            try:
                return RegistrationOffice.objects.get(code=code)
            except RegistrationOffice.DoesNotExist:
                raise CommandError(f"No registration office with code {code!r}.") from None
        offices = list(RegistrationOffice.objects.all()[:2])
        if len(offices) == 1:
            return offices[0]
        known = ", ".join(RegistrationOffice.objects.values_list("code", flat=True)) or "none"
        raise CommandError(f"Choose a registration office with --office (known: {known}).")
