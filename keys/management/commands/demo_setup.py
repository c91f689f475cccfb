"""Prepare a local demo: an office, three staff accounts and one fresh activation.

Run by ``make demo``. Passwords are new on every run and printed once; the demo citizen gets a
new activation each time (the previous one is superseded).
"""

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from keys.models import RegistrationOffice, User
from keys.services.staff import second_factor_note

DEMO_OFFICE = {
    "code": "leuven",
    "name": "Stad Leuven – Burgerzaken",
    "address": "Professor Van Overstraetenplein 1, 3000 Leuven",
}
DEMO_SERVICE_URL = "http://127.0.0.1:8010"
DEMO_CITIZEN = {
    "first_name": "Jan",
    "last_name": "Peeters",
    "national_number": "85.07.30-033.28",
    "email": "jan.peeters@example.be",
    "phone": "+32470123456",
}


class Command(BaseCommand):
    help = "Create demo staff accounts and issue a demo activation (development only)."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            office, _ = RegistrationOffice.objects.update_or_create(
                code=DEMO_OFFICE["code"], defaults=DEMO_OFFICE
            )
            accounts = [
                self._staff("clerk", "Registration office", office, superuser=False),
                self._staff("helpdesk", "Helpdesk", None, superuser=False),
                self._staff("admin", None, None, superuser=True),
            ]
        self.stdout.write("")
        self.stdout.write(
            self.style.MIGRATE_HEADING("Staff accounts (admin: http://127.0.0.1:8000/admin/)")
        )
        for username, role, password in accounts:
            self.stdout.write(f"  {role:<22} username {username:<10} password {password}")
        self.stdout.write(f"  {second_factor_note(settings.SITE_URL)}")
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING("Demo activation for Jan Peeters"))
        call_command(
            "issue_activation",
            first_name=DEMO_CITIZEN["first_name"],
            last_name=DEMO_CITIZEN["last_name"],
            national_number=DEMO_CITIZEN["national_number"],
            email=DEMO_CITIZEN["email"],
            phone=DEMO_CITIZEN["phone"],
            language="nl",
            office=office.code,
            document_number="592123456789",
            reissue=True,
            stdout=self.stdout,
            stderr=self.stderr,
        )
        self.stdout.write(
            "  Open the link in a browser and type the activation code. E-mails (with the link "
            "and the registration codes) and SMS messages appear in this console."
        )
        if settings.OIDC_PROVIDER_ENABLED:
            from oidc.services.registration import setup_demo_service

            registered = setup_demo_service(
                DEMO_SERVICE_URL, settings.VAR_DIR / "demo-service.json", settings.SITE_URL
            )
            self.stdout.write("")
            self.stdout.write(self.style.MIGRATE_HEADING("Demo government service (demo_service/)"))
            self.stdout.write(
                f"  {DEMO_SERVICE_URL}/ signs in through this site (client id "
                f"{registered.client_id}; its configuration: var/demo-service.json)."
            )

    def _staff(
        self,
        username: str,
        group: str | None,
        office: RegistrationOffice | None,
        *,
        superuser: bool,
    ) -> tuple[str, str, str]:
        password = secrets.token_urlsafe(12)
        user = User.objects.filter(username=username).first() or User(username=username)
        user.is_staff = True
        user.is_superuser = superuser
        user.office = office
        user.set_password(password)
        user.save()
        if group:
            user.groups.set([Group.objects.get(name=group)])
        role = "administrator" if superuser else group
        return username, role, password
