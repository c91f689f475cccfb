"""Issue activations from the command line, as a clerk does at the counter (SPEC §6).

One person from the options, or many from a CSV file (``--csv``): each row is checked exactly as
a clerk's entry in the admin (``keys.admin_forms.CitizenForm``), issued in its own transaction,
and its link e-mailed after that transaction; a wrong row is reported with its line number and
does not stop the others. The paper codes are shown once: in the printable letters file
(``--letters``) and/or in the ``--json`` lines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from django.contrib.staticfiles import finders
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from keys import audit
from keys.admin_forms import CitizenForm
from keys.context_processors import helpdesk
from keys.management.commands.import_offices import read_csv
from keys.models import Activation, AuditEvent, Citizen, RegistrationOffice
from keys.services import issuance
from keys.validators import normalize_national_number

LABEL = "manage.py issue_activation"
CSV_COLUMNS = (
    "first_name",
    "last_name",
    "national_number",
    "email",
    "phone",
    "language",
    "document_type",
    "document_number",
)
# the CSV column of each field of the clerk's form, for the reasons given to the user
CSV_NAME = {"id_document_type": "document_type", "id_document_number": "document_number"}
PERSON_OPTIONS = ("first_name", "last_name", "national_number", "email")
LETTERS_MARKER = "<!-- letters -->"
NO_OFFICE = (
    "There is no registration office yet. Create them first with: "
    "python manage.py import_offices FILE.csv (a UTF-8 file with the header code,name,address)."
)


class RowRefused(Exception):
    """A row (or the one person) that cannot be issued, with the reason in English."""

    def __init__(self, reason: str, *, open_activation: bool = False) -> None:
        super().__init__(reason)
        self.open_activation = open_activation


def form_reason(form: CitizenForm) -> str:
    return "; ".join(
        f"{CSV_NAME.get(field, field)}: {' '.join(str(m) for m in messages)}"
        for field, messages in form.errors.items()
    )


def open_activation_reason(citizen: Citizen) -> str | None:
    activation = citizen.activations.open().select_related("office").first()
    if activation is None:
        return None
    return (
        f"{citizen.full_name} already has an open activation (id {activation.pk}, issued "
        f"{timezone.localtime(activation.created_at):%Y-%m-%d} by {activation.office.code})"
    )


def register_and_issue(
    data: dict[str, str], office: RegistrationOffice, *, reissue: bool
) -> issuance.IssuedActivation:
    """Check ``data`` as the clerk's form does, save the record and issue, in one transaction;
    then send the link e-mail (no lock held). Raises :class:`RowRefused`."""
    digits = normalize_national_number(data["national_number"])
    existing = Citizen.objects.filter(national_number=digits).select_related("office").first()
    if existing is not None and not reissue:
        reason = open_activation_reason(existing)
        if reason:
            raise RowRefused(reason, open_activation=True)
    # A known person: their record is updated and they get a fresh activation; when they come
    # to another office than before, issuance.take_over moves the record there and says so.
    form_data = {**data, "office": (existing.office if existing else office).pk}
    form = CitizenForm(data=form_data, instance=existing)
    with translation.override("en"):
        valid = form.is_valid()
        if not valid:
            raise RowRefused(form_reason(form))
    try:
        with transaction.atomic():
            citizen = form.save()
            if existing is None:
                audit.record(
                    AuditEvent.Action.CITIZEN_REGISTERED,
                    actor_label=LABEL,
                    citizen=citizen,
                    office=citizen.office.code,
                    document_type=citizen.id_document_type,
                )
            elif form.changed_data:
                audit.record(
                    AuditEvent.Action.CITIZEN_UPDATED,
                    actor_label=LABEL,
                    citizen=citizen,
                    fields=form.changed_data,
                )
            issued = issuance.create_activation(
                citizen, issued_by=None, office=office, actor_label=LABEL, supersede=reissue
            )
    except issuance.OpenActivationExists as error:
        reason = open_activation_reason(error.activation.citizen) or str(error)
        raise RowRefused(reason, open_activation=True) from None
    except IntegrityError:
        # a clerk registered or issued for the same person at this very moment
        raise RowRefused(
            "this person was registered or issued an activation at the same moment; "
            "nothing was issued"
        ) from None
    issuance.send_activation_email(issued.activation, issued.activation_link)
    return issued


class LettersFile:
    """The printable letters (one A4 page each), written as activations are issued so that a
    run that stops half-way still leaves the codes it issued on paper. Created new (never
    overwritten: an earlier file may hold codes not printed yet), readable by its owner only."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CommandError(
                f"{path} exists already. It may hold codes not printed yet: print it, delete it, "
                "or give another file with --letters."
            ) from None
        except OSError as error:
            raise CommandError(f"Cannot write {path}: {error.strerror}.") from None
        self.file: IO[str] = os.fdopen(fd, "w", encoding="utf-8")
        css = Path(finders.find("keys/letter.css")).read_text(encoding="utf-8")
        page = render_to_string("keys/letters_file.html", {"css": css})
        self.head, self.foot = page.split(LETTERS_MARKER)
        self.file.write(self.head)
        self.file.flush()

    def add(self, issued: issuance.IssuedActivation) -> None:
        self.file.write(
            render_to_string("keys/letter_page.html", {"letter": issued, **helpdesk(None)})
        )
        self.file.flush()
        self.count += 1
        audit.record(
            AuditEvent.Action.LETTER_SHOWN,
            actor_label=LABEL,
            activation=issued.activation,
            letters_file=Path(self.path).name,
        )

    def close(self) -> None:
        self.file.write(self.foot)
        self.file.close()


class Command(BaseCommand):
    help = (
        "Register a citizen and issue an activation: sends the link e-mail and prints the paper "
        "code and the link (once; they are not stored in clear). With --csv FILE, one activation "
        "per row of the file, the letters written to --letters FILE."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--first-name")
        parser.add_argument("--last-name")
        parser.add_argument("--national-number", help="11 digits, dots allowed")
        parser.add_argument("--email")
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
        parser.add_argument(
            "--csv",
            metavar="FILE",
            help=(
                "issue one activation per row of this UTF-8 CSV file, header "
                + ",".join(CSV_COLUMNS)
            ),
        )
        parser.add_argument(
            "--letters",
            metavar="FILE",
            help="with --csv: write the printable letters (one A4 page each) to this new HTML file",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="print a JSON object (with --csv: one a line, one per row)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["csv"]:
            self.handle_csv(options)
            return
        if options["letters"]:
            raise CommandError("--letters goes with --csv.")
        missing = [f"--{name.replace('_', '-')}" for name in PERSON_OPTIONS if not options[name]]
        if missing:
            raise CommandError(f"Give {', '.join(missing)} (or --csv FILE).")
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
        }
        try:
            issued = register_and_issue(data, office, reissue=options["reissue"])
        except RowRefused as error:
            message = str(error)
            if error.open_activation:
                message += "; pass --reissue to replace it."
            raise CommandError(message) from None
        citizen = issued.activation.citizen
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
        status = issued.activation.email_status
        if status == Activation.EmailStatus.PENDING:
            self.stdout.write(
                "  activation e-mail: queued; the task worker (manage.py delivery_worker) sends it"
            )
        elif not issued.email_sent:
            self.stderr.write(
                "  WARNING: the activation e-mail could not be sent yet (it is retried); give the "
                "link by other means or resend it from the admin."
            )

    # -- many people from a CSV file -----------------------------------------------------------

    def handle_csv(self, options: dict[str, Any]) -> None:
        given = [f"--{name.replace('_', '-')}" for name in PERSON_OPTIONS if options[name]]
        if given or options["reissue"]:
            not_allowed = ", ".join(given) or "--reissue"
            raise CommandError(
                f"--csv takes the people from the file; do not give {not_allowed}"
                " (a person with an open activation is reported, never reissued, so that running "
                "the same file twice issues nothing twice)."
            )
        if not options["letters"] and not options["json"]:
            raise CommandError(
                "The paper codes are shown only once: give --letters FILE (printable letters, "
                "one page per citizen) or --json (the codes in the output), or both."
            )
        office = self._office(options["office"])
        rows = read_csv(options["csv"], CSV_COLUMNS, CSV_COLUMNS)
        if not rows:
            raise CommandError(f"{options['csv']} has a header but no row.")
        letters = LettersFile(options["letters"]) if options["letters"] else None
        as_json = options["json"]
        progress = None
        if not as_json and self.stdout.isatty():
            progress = self._progress_bar()
        results = {"issued": 0, "refused": 0, "email_failed": 0}
        try:
            task = progress.add_task("Issuing", total=len(rows)) if progress else None
            for line, values, problem in rows:
                outcome = self._issue_row(line, values, problem, office, letters)
                results[outcome["status"]] += 1
                if outcome["status"] == "issued" and not outcome["email_sent"]:
                    results["email_failed"] += 1
                self._report(outcome, as_json, progress)
                if progress is not None:
                    progress.advance(task)
        finally:
            if progress is not None:
                progress.stop()
            if letters is not None:
                letters.close()
        self._summary(results, len(rows), letters, as_json)

    def _issue_row(
        self,
        line: int,
        values: dict[str, str] | None,
        problem: str,
        office: RegistrationOffice,
        letters: LettersFile | None,
    ) -> dict[str, Any]:
        if values is None:
            return {"line": line, "status": "refused", "reason": problem}
        data = {
            "first_name": values["first_name"],
            "last_name": values["last_name"],
            "national_number": values["national_number"],
            "email": values["email"],
            "phone": values["phone"],
            "language": values["language"].lower(),
            "id_document_type": values["document_type"].lower(),
            "id_document_number": values["document_number"],
        }
        try:
            issued = register_and_issue(data, office, reissue=False)
        except RowRefused as error:
            return {"line": line, "status": "refused", "reason": str(error)}
        if letters is not None:
            letters.add(issued)
        citizen = issued.activation.citizen
        return {
            "line": line,
            "status": "issued",
            "id": issued.activation.pk,
            "name": citizen.full_name,
            "national_number": citizen.national_number,
            "activation_code": issued.formatted_code,
            "activation_link": issued.activation_link,
            "expires_at": issued.activation.expires_at.isoformat(),
            "email_sent": issued.email_sent,
        }

    def _report(self, outcome: dict[str, Any], as_json: bool, progress: Any) -> None:
        if as_json:
            self.stdout.write(json.dumps(outcome, ensure_ascii=False))
            return
        if outcome["status"] == "issued":
            text = f"line {outcome['line']}: issued activation {outcome['id']} to {outcome['name']}"
            if not outcome["email_sent"]:
                text += " (the e-mail could not be sent yet; it is retried)"
        else:
            text = f"line {outcome['line']}: NOT issued: {outcome['reason']}"
        if progress is not None:
            if outcome["status"] != "issued":
                progress.console.print(text, markup=False, highlight=False)
        else:
            self.stdout.write(text)

    def _summary(
        self, results: dict[str, int], rows: int, letters: LettersFile | None, as_json: bool
    ) -> None:
        lines = [
            f"{rows} row{'s' if rows != 1 else ''}: {results['issued']} issued, "
            f"{results['refused']} not issued."
        ]
        if results["email_failed"]:
            lines.append(
                f"{results['email_failed']} activation e-mail(s) could not be sent yet; they are "
                "retried automatically."
            )
        if letters is not None:
            lines.append(
                f"Letters: {letters.path} ({letters.count} page{'s' if letters.count != 1 else ''})"
                ". Print it now and delete it: the codes are shown nowhere else."
            )
        stream = self.stderr if as_json else self.stdout
        for text in lines:
            stream.write(text)
        if results["refused"]:
            raise CommandError(
                f"{results['refused']} row{'s' if results['refused'] != 1 else ''} not issued "
                "(see the reasons above).",
                returncode=1,
            )

    def _progress_bar(self) -> Any:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        console = Console(file=getattr(self.stdout, "_out", self.stdout))
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        progress.start()
        return progress

    def _office(self, code: str) -> RegistrationOffice:
        offices = list(RegistrationOffice.objects.all()[:2])
        if not offices:
            raise CommandError(NO_OFFICE)
        if code:
            try:
                return RegistrationOffice.objects.get(code=code)
            except RegistrationOffice.DoesNotExist:
                raise CommandError(f"No registration office with code {code!r}.") from None
        if len(offices) == 1:
            return offices[0]
        known = ", ".join(RegistrationOffice.objects.values_list("code", flat=True))
        raise CommandError(f"Choose a registration office with --office (known: {known}).")
