"""Delete sign-in records and audit events past their retention, for a daily timer.

- sign-in attempts, and the sign-in audit events (signed in, failed, locked, signed out, new
  browser), older than ``SIGNIN_RECORD_RETENTION`` (6 months: what the helpdesk shows);
- every other audit event older than ``AUDIT_EVENT_RETENTION`` (24 months);
- where the OpenID Connect provider is installed (``oidc``), its codes and tokens a day after
  they expired and exchanged codes' hashes after a day (``oidc.services.tokens``), so the
  provider's tables do not grow with every sign-in at a service.

Both are limits of ``keys/conf.py`` (``CSAM`` in settings). Rows go ``PRUNE_BATCH_SIZE``
(5 000) at a time, each batch in its own short transaction: ids are picked through the
``created_at`` index, then deleted by primary key, so no lock is held for long and the
service keeps writing meanwhile. Running it again deletes nothing more (idempotent); the counts
are logged (logger ``keys.prune``) and printed. ``--dry-run`` only counts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from keys.conf import limits
from keys.models import AuditEvent, SignInAttempt

logger = logging.getLogger("keys.prune")

A = AuditEvent.Action
SIGNIN_ACTIONS = (
    A.SIGNIN_SUCCEEDED,
    A.SIGNIN_FAILED,
    A.SIGNIN_LOCKED,
    A.SIGNED_OUT,
    A.SIGNED_OUT_EVERYWHERE,
    A.NEW_BROWSER,
)


def expired_records(now: Any = None) -> dict[str, QuerySet]:
    """What is past its retention at ``now``, by kind."""
    now = now or timezone.now()
    signins_before = now - limits.SIGNIN_RECORD_RETENTION
    audit_before = now - limits.AUDIT_EVENT_RETENTION
    records = {
        "sign-in attempts": SignInAttempt.objects.filter(created_at__lt=signins_before),
        "sign-in audit events": AuditEvent.objects.filter(
            created_at__lt=signins_before, action__in=SIGNIN_ACTIONS
        ),
        "other audit events": AuditEvent.objects.filter(created_at__lt=audit_before),
    }
    if apps.is_installed("oidc"):
        from oidc.services.tokens import expired_records as expired_tokens

        records.update(expired_tokens(now))
    return records


def delete_in_batches(queryset: QuerySet, batch_size: int, pause: float = 0.0) -> int:
    """Delete the rows of ``queryset``, ``batch_size`` a transaction; returns how many."""
    deleted = 0
    model = queryset.model
    while True:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic(using=queryset.db):
            count, _ = model.objects.using(queryset.db).filter(pk__in=ids).delete()
        deleted += count
        if len(ids) < batch_size:
            return deleted
        if pause:
            time.sleep(pause)


class Command(BaseCommand):
    help = (
        "Delete sign-in records older than SIGNIN_RECORD_RETENTION (6 months) and audit events "
        "older than AUDIT_EVENT_RETENTION (24 months), and the OpenID Connect provider's codes "
        "and tokens a day after they expired, in small batches; for a daily timer."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="rows a transaction (default PRUNE_BATCH_SIZE, 5000)",
        )
        parser.add_argument(
            "--pause",
            type=float,
            default=0.0,
            help="seconds to wait between batches (to spare a busy database)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"] or limits.PRUNE_BATCH_SIZE
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        dry_run = options["dry_run"]
        started = time.monotonic()
        counts = {}
        for kind, queryset in expired_records().items():
            if dry_run:
                counts[kind] = queryset.count()
            else:
                counts[kind] = delete_in_batches(queryset, batch_size, options["pause"])
        verb = "would delete" if dry_run else "deleted"
        summary = ", ".join(f"{count} {kind}" for kind, count in counts.items())
        elapsed = time.monotonic() - started
        logger.info(
            "prune_records %s %s in %.1f s",
            verb,
            summary,
            elapsed,
            extra={"prune": counts, "dry_run": dry_run},
        )
        self.stdout.write(
            f"{'Dry run: ' if dry_run else ''}{verb} {summary} "
            f"(sign-ins older than {limits.SIGNIN_RECORD_RETENTION.days} days, audit events "
            f"older than {limits.AUDIT_EVENT_RETENTION.days} days) in {elapsed:.1f} s."
        )
