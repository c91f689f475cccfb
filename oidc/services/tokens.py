"""Revoking a citizen's tokens at a service: on a reused code (oidc.validators) and when the
citizen withdraws consent (oidc.services.consent). Only django-oauth-toolkit's models, not its
validator or views: "Mijn digitale sleutels" lists services on every worker, the provider's
endpoints may be off (``OIDC_PROVIDER_ENABLED``)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken


def revoke_tokens(user_id: int, application_id: int, *, since: datetime | None = None) -> int:
    """Revoke every token of ``user_id`` at ``application_id`` (created ``since`` when given):
    access and ID tokens deleted, refresh tokens revoked. The number of access tokens."""
    access = AccessToken.objects.filter(user_id=user_id, application_id=application_id)
    refresh = RefreshToken.objects.filter(
        user_id=user_id, application_id=application_id, revoked__isnull=True
    )
    id_tokens = IDToken.objects.filter(user_id=user_id, application_id=application_id)
    if since is not None:
        access = access.filter(created__gte=since)
        refresh = refresh.filter(created__gte=since)
        id_tokens = id_tokens.filter(created__gte=since)
    with transaction.atomic():
        refresh.update(revoked=timezone.now(), access_token=None)
        count, _ = access.delete()
        id_tokens.delete()
        Grant.objects.filter(user_id=user_id, application_id=application_id).delete()
    return count
