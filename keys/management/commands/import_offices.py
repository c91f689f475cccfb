"""Create or update registration offices from a CSV file (``code,name,address``).

All or nothing: every line is checked first; when one is wrong, each wrong line is reported with
its number as an editor shows it (the header is line 1) and nothing at all is changed. A good
file is applied in one transaction.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import translation

from keys.models import RegistrationOffice

COLUMNS = ("code", "name", "address")
REQUIRED = ("code", "name")


def read_csv(path: str, columns: tuple[str, ...], required: tuple[str, ...]) -> list[tuple]:
    """The rows of a UTF-8 CSV file (a byte order mark is accepted) with a header row.

    Returns ``(line, values or None, problem)`` for each non-empty record: ``line`` is where the
    record starts as an editor numbers lines (the header is line 1), ``values`` maps the column
    names to the stripped values. Raises ``CommandError`` when the file cannot be read or its
    header is wrong (nothing can be checked then).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CommandError(
            f"{path} is not UTF-8 (line {line}); save it as UTF-8 (CSV UTF-8 in a spreadsheet)."
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise CommandError(f"line 1: {error}") from None
    if not header:
        raise CommandError(f"{path} is empty; the first line must be: {','.join(columns)}")
    header = [name.strip().lower() for name in header]
    unknown = [name for name in header if name not in columns]
    missing = [name for name in required if name not in header]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if unknown or missing or duplicated:
        problems = []
        if missing:
            problems.append("missing column " + ", ".join(missing))
        if unknown:
            problems.append("unknown column " + ", ".join(unknown))
        if duplicated:
            problems.append("repeated column " + ", ".join(duplicated))
        raise CommandError(
            f"line 1: the header must be {','.join(columns)} ({'; '.join(problems)})."
        )
    rows = []
    end_of_previous = reader.line_num
    while True:
        start = end_of_previous + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            rows.append((start, None, f"not a valid CSV line ({error})"))
            break
        end_of_previous = reader.line_num
        if not record or all(not value.strip() for value in record):
            continue
        if len(record) != len(header):
            rows.append((start, None, f"{len(record)} fields where the header has {len(header)}"))
            continue
        values = {name: value.strip() for name, value in zip(header, record, strict=True)}
        rows.append((start, values, ""))
    return rows


def validation_reason(error: ValidationError) -> str:
    with translation.override("en"):
        if hasattr(error, "error_dict"):
            return "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
            )
        return " ".join(error.messages)


class Command(BaseCommand):
    help = (
        "Create or update registration offices from a CSV file with the header code,name,address "
        "(UTF-8). Nothing is changed when a line is wrong."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV file: code,name,address with a header row")
        parser.add_argument(
            "--dry-run", action="store_true", help="check the file and report, change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        rows = read_csv(path, COLUMNS, REQUIRED)
        existing = {office.code: office for office in RegistrationOffice.objects.all()}
        errors: list[str] = []
        first_line_of: dict[str, int] = {}
        changes: list[tuple[str, RegistrationOffice]] = []
        unchanged = 0
        for line, values, problem in rows:
            if values is None:
                errors.append(f"line {line}: {problem}")
                continue
            code = values["code"]
            if code in first_line_of:
                earlier = first_line_of[code]
                errors.append(f"line {line}: code {code!r} is already on line {earlier}")
                continue
            first_line_of[code] = line
            office = existing.get(code)
            new = {"name": values["name"], "address": values.get("address", "")}
            if office is not None:
                if all(getattr(office, field) == value for field, value in new.items()):
                    unchanged += 1
                    continue
                for field, value in new.items():
                    setattr(office, field, value)
                kind = "updated"
            else:
                office = RegistrationOffice(code=code, **new)
                kind = "created"
            try:
                office.full_clean(validate_unique=False)
            except ValidationError as error:
                errors.append(f"line {line}: {validation_reason(error)}")
                continue
            changes.append((kind, office))
        if not rows:
            raise CommandError(f"{path} has a header but no office.")
        if errors:
            for error in errors:
                self.stderr.write(error)
            raise CommandError(
                f"{len(errors)} wrong line{'s' if len(errors) != 1 else ''} in {path}: "
                "nothing was changed. Correct the file and run the command again."
            )
        created = sum(kind == "created" for kind, _ in changes)
        updated = len(changes) - created
        if not options["dry_run"]:
            with transaction.atomic():
                for _kind, office in changes:
                    office.save()
        verb = "would be " if options["dry_run"] else ""
        self.stdout.write(
            f"{created} office{'s' if created != 1 else ''} {verb}created, "
            f"{updated} {verb}updated, {unchanged} unchanged."
        )
