"""Re-encrypt every value encrypted at rest under the newest key of FIELD_ENCRYPTION_KEYS."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from keys import crypto
from keys.models import DigitalKey, OutboundMessage


class Command(BaseCommand):
    help = (
        "Re-encrypt the TOTP seeds and the queued messages under the first key of "
        "FIELD_ENCRYPTION_KEYS. Put the new key first, keep the old ones after it, run this, "
        "then remove the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        seeds = self._rotate(DigitalKey, "secret_encrypted")
        # Queued and retrying messages too: one left under a dropped key could never be sent.
        messages = self._rotate(OutboundMessage, "payload_encrypted")
        self.stdout.write(f"Re-encrypted {seeds} secret(s) and {messages} queued message(s).")

    def _rotate(self, model: type, field: str) -> int:
        count = 0
        with transaction.atomic():
            for row in model.objects.select_for_update().exclude(**{field: ""}).only("pk", field):
                model.objects.filter(pk=row.pk).update(
                    **{field: crypto.rotate(getattr(row, field))}
                )
                count += 1
        return count
