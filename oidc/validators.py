"""django-oauth-toolkit's validator, made this provider's: the scopes a service may ask, the
claims it receives (pairwise ``sub``, ``acr``, ``amr``, ``auth_time``), and single-use codes
whose reuse revokes what they gave."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from oidc.models import Service, UsedCode
from oidc.services.claims import allowed_scopes, claims_for

log = logging.getLogger(__name__)

USED_CODE_RETENTION = timedelta(days=1)
#: The key of ``Grant.claims`` under which the view stores how the citizen signed in.
AUTH_CLAIM = "_csam_auth"


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def service_of(application: Any) -> Service | None:
    try:
        return application.service
    except (Service.DoesNotExist, AttributeError):
        return None


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


class CitizenValidator(OAuth2Validator):
    # Scopes are checked per service (validate_scopes) and claims chosen per scope by
    # oidc.services.claims, so nothing is filtered again here.
    oidc_claim_scope = None

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs) -> bool:
        service = service_of(client)
        if service is None:
            return False
        return "openid" in scopes and set(scopes) <= allowed_scopes(service)

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        return response_type == "code" and super().validate_response_type(
            client_id, response_type, client, request, *args, **kwargs
        )

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        # The authorization code only: a refreshed ID token would not say how the citizen
        # signed in, and a service that needs a new one sends the citizen back (prompt=none).
        if grant_type != "authorization_code":
            return False
        return super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        if super().validate_code(client_id, code, client, request, *args, **kwargs):
            return True
        used = UsedCode.objects.filter(code_hash=code_hash(code), application=client).first()
        if used is not None:
            revoked = revoke_tokens(used.user_id, used.application_id, since=used.used_at)
            log.warning(
                "An authorization code of client %s was presented again: %d token(s) revoked",
                client.client_id,
                revoked,
            )
        return False

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        grant = Grant.objects.filter(code=code, application=request.client).first()
        if grant is None:
            raise errors.InvalidGrantError(request=request)
        # The tokens it gave are those made since the code was: the exchange saves them
        # before the code is invalidated, within the code's minute of life.
        UsedCode.objects.create(
            code_hash=code_hash(code),
            application=request.client,
            user_id=grant.user_id,
            used_at=grant.created,
        )
        # Kept a day: long after the tokens it gave have expired (10 minutes).
        UsedCode.objects.filter(used_at__lt=timezone.now() - USED_CODE_RETENTION).delete()
        super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)

    # prompt=none is answered by the view, which sees the session (oidc/views.py).
    def validate_silent_login(self, request) -> bool:
        return True

    def validate_silent_authorization(self, request) -> bool:
        return True

    def _auth(self, request) -> dict:
        claims = getattr(request, "claims", None) or {}
        auth = claims.get(AUTH_CLAIM) if isinstance(claims, dict) else None
        return auth if isinstance(auth, dict) else {}

    def get_additional_claims(self, request) -> dict[str, Any]:
        service = service_of(request.client)
        if service is None:
            return {}
        claims: dict[str, Any] = claims_for(service, request.user, list(request.scopes or []))
        auth = self._auth(request)
        if auth:
            claims["acr"] = auth["acr"]
            claims["amr"] = list(auth["amr"])
        return claims

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        auth = self._auth(request)
        if auth.get("at"):
            claims["auth_time"] = int(auth["at"])
        return claims, expiration_time

    def get_userinfo_claims(self, request) -> dict[str, Any]:
        service = service_of(request.client)
        if service is None:
            return {"sub": ""}
        return claims_for(service, request.user, list(request.scopes or []))
