"""Registering a government service (``manage.py register_service``, ``demo_setup``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import Application
from oauth2_provider.settings import oauth2_settings

from keys.digital_keys import SITE_LEVELS
from oidc.models import Service


@dataclass(frozen=True)
class Registered:
    service: Service
    client_id: str
    client_secret: str  # in clear only here, once: stored hashed


def register(
    *,
    name: str,
    redirect_uris: list[str],
    allow_nrn: bool = False,
    min_level: str = "substantial",
    sector: str = "",
    post_logout_redirect_uris: list[str] | None = None,
    client_id: str = "",
    client_secret: str = "",
) -> Registered:
    """A confidential client of the authorization code flow, RS256, exact redirect URIs.
    Raises ValidationError on a bad URI, level or duplicate client id."""
    if min_level not in SITE_LEVELS:
        # "high" (FAS's eID card and itsme) is given by no key of this site.
        raise ValidationError(f"min level must be one of {', '.join(SITE_LEVELS)}")
    if not redirect_uris:
        raise ValidationError("at least one redirect URI")
    secret = client_secret or generate_client_secret()
    application = Application(
        name=name,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(redirect_uris),
        post_logout_redirect_uris=" ".join(post_logout_redirect_uris or []),
        algorithm=Application.RS256_ALGORITHM,
        client_secret=secret,
        hash_client_secret=True,
        skip_authorization=False,
    )
    if client_id:
        application.client_id = client_id
    application.full_clean(exclude=["user"])
    # Hashed here, before the transaction (the field would hash it on save, inside it).
    application.client_secret = make_password(secret, hasher=oauth2_settings.CLIENT_SECRET_HASHER)
    sector = sector or urlsplit(redirect_uris[0]).hostname or name
    with transaction.atomic():
        application.save()
        service = Service.objects.create(
            application=application, allow_nrn=allow_nrn, min_level=min_level, sector=sector
        )
    return Registered(service=service, client_id=application.client_id, client_secret=secret)


DEMO_SERVICE_NAME = "Demo service (demo_service/)"


def setup_demo_service(base_url: str, config_path: Any, provider: str) -> Registered:
    """Register the demo service of ``demo_service/`` afresh (a new secret each time) and write
    its configuration, secret included, to ``config_path`` (var/, mode 600): development only,
    the secret is the demo service's own, kept where a service would keep it."""
    import json
    import os

    base_url = base_url.rstrip("/")
    Application.objects.filter(name=DEMO_SERVICE_NAME).delete()
    registered = register(
        name=DEMO_SERVICE_NAME,
        redirect_uris=[f"{base_url}/callback"],
        post_logout_redirect_uris=[f"{base_url}/"],
        allow_nrn=True,
        min_level="substantial",
    )
    config = {
        "provider": provider,
        "client_id": registered.client_id,
        "client_secret": registered.client_secret,
        "redirect_uri": f"{base_url}/callback",
        "name": "Demo service",
    }
    config_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
    return registered
