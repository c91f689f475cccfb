"""Django's ``createsuperuser``, which then says how the new account's second factor is set up
(``keys.services.staff``): at its first sign-in at ``/admin/login/``. Overrides Django's command
(``keys`` comes before ``django.contrib.auth`` in ``INSTALLED_APPS``)."""

from typing import Any

from django.conf import settings
from django.contrib.auth.management.commands import createsuperuser

from keys.services.staff import second_factor_note


class Command(createsuperuser.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        if options.get("verbosity", 1) >= 1:
            self.stdout.write(second_factor_note(settings.SITE_URL))
