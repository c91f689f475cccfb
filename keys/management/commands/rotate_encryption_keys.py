"""Re-encrypt every TOTP seed under the newest key of FIELD_ENCRYPTION_KEYS."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from keys import crypto
from keys.models import DigitalKey


class Command(BaseCommand):
    help = (
        "Re-encrypt the TOTP seeds under the first key of FIELD_ENCRYPTION_KEYS. Put the new key "
        "first, keep the old ones after it, run this, then remove the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        with transaction.atomic():
            for key in DigitalKey.objects.select_for_update().exclude(secret_encrypted=""):
                key.secret_encrypted = crypto.rotate(key.secret_encrypted)
                key.save(update_fields=["secret_encrypted"])
                count += 1
        self.stdout.write(f"Re-encrypted {count} secret(s).")
