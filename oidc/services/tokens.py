"""Revoking a citizen's tokens at a service: on a reused code (oidc.validators) and when the
citizen withdraws consent (oidc.services.consent). Only django-oauth-toolkit's models, not its
validator or views: "Mijn digitale sleutels" lists services on every worker, the provider's
endpoints may be off (``OIDC_PROVIDER_ENABLED``). And what ``manage.py prune_records`` deletes
of the provider's rows once they can serve no one (:func:`expired_records`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken

from oidc.models import UsedCode

#: How long an exchanged code's hash is kept: presented again within it, the tokens it gave are
#: revoked; long after those tokens (10 minutes) and the code itself (1 minute) have expired.
USED_CODE_RETENTION = timedelta(days=1)
#: How long an expired code or token is kept before ``prune_records`` deletes it. None of them
#: is of use once expired; the day only keeps the rows of a recent exchange for a look at them.
EXPIRED_TOKEN_RETENTION = timedelta(days=1)


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


def expired_records(now: datetime | None = None) -> dict[str, QuerySet]:
    """The provider's rows that can serve no one at ``now``, by kind, for ``prune_records``:
    codes and tokens expired more than :data:`EXPIRED_TOKEN_RETENTION` ago (an access token goes
    with its ID token), refresh tokens revoked as long ago (none is issued, but a row would be),
    and exchanged codes' hashes past :data:`USED_CODE_RETENTION`."""
    now = now or timezone.now()
    before = now - EXPIRED_TOKEN_RETENTION
    return {
        "expired authorization codes": Grant.objects.filter(expires__lt=before),
        "expired access tokens": AccessToken.objects.filter(expires__lt=before),
        "expired ID tokens": IDToken.objects.filter(expires__lt=before),
        "revoked refresh tokens": RefreshToken.objects.filter(revoked__lt=before),
        "exchanged authorization codes": UsedCode.objects.filter(
            used_at__lt=now - USED_CODE_RETENTION
        ),
    }
