"""Enqueue the e-mails and SMS whose next attempt is due (for backends that cannot defer)."""

from typing import Any

from django.core.management.base import BaseCommand

from keys import delivery


class Command(BaseCommand):
    help = "Retry the outgoing messages that failed and are due for another attempt."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Enqueued {delivery.retry_due()} message(s).")
