"""Register a government service that signs citizens in with their digital keys.

    manage.py register_service --name "Tax on web" --redirect-uri https://tax.example/cb \
        [--redirect-uri ...] [--post-logout-redirect-uri ...] [--allow-nrn] \
        [--min-level substantial] [--sector tax.example] [--json]

Prints the client id and the client secret: the secret is shown this once and stored hashed.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from keys.digital_keys import SITE_LEVELS
from oidc.services.registration import register


class Command(BaseCommand):
    help = "Register a government service (OpenID Connect client); prints its id and secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris")
        parser.add_argument(
            "--post-logout-redirect-uri", action="append", default=[], dest="logout_uris"
        )
        parser.add_argument(
            "--allow-nrn", action="store_true", help="may receive the national register number"
        )
        parser.add_argument("--min-level", choices=SITE_LEVELS, default="substantial")
        parser.add_argument("--sector", default="", help="default: the redirect URI's host")
        parser.add_argument("--json", action="store_true", help="one JSON object on stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            registered = register(
                name=options["name"],
                redirect_uris=options["redirect_uris"],
                post_logout_redirect_uris=options["logout_uris"],
                allow_nrn=options["allow_nrn"],
                min_level=options["min_level"],
                sector=options["sector"],
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        service = registered.service
        data = {
            "client_id": registered.client_id,
            "client_secret": registered.client_secret,
            "name": service.application.name,
            "redirect_uris": options["redirect_uris"],
            "allow_nrn": service.allow_nrn,
            "min_level": service.min_level,
            "sector": service.sector,
        }
        if options["json"]:
            self.stdout.write(json.dumps(data))
            return
        for key, value in data.items():
            self.stdout.write(f"{key}: {value}")
        self.stdout.write("The client secret is shown only now: it is stored hashed.")
