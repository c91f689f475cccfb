"""django-oauth-toolkit's validator, made this provider's: the scopes a service may ask, the
claims it receives (pairwise ``sub``, ``acr``, ``amr``, ``auth_time``), single-use codes whose
reuse revokes what they gave, stored only as their SHA-256 (``Grant.code`` holds
:func:`code_hash`), voided by a wrong ``code_verifier``, and no refresh token."""

from __future__ import annotations

import hashlib
import logging
from contextvars import ContextVar
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.models import Grant
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256

from oidc.models import Service, UsedCode
from oidc.services.claims import allowed_scopes, claims_for
from oidc.services.tokens import USED_CODE_RETENTION, revoke_tokens

log = logging.getLogger(__name__)

#: The key of ``Grant.claims`` under which the view stores how the citizen signed in.
AUTH_CLAIM = "_csam_auth"

#: Set by the token endpoint's view around one request (oidc/views.py): the client ids that
#: authenticated themselves in it (their secret right), for its rate limits.
AUTHENTICATED_CLIENTS: ContextVar[list[str] | None] = ContextVar(
    "csam_authenticated_clients", default=None
)


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def service_of(application: Any) -> Service | None:
    try:
        return application.service
    except (Service.DoesNotExist, AttributeError):
        return None


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

    # Authorization codes at rest: DOT keeps the code itself in ``Grant.code`` for its minute of
    # life; here that column holds its SHA-256, so every method of DOT's validator that writes or
    # reads a Grant by its code is handed the hash (tests/test_oidc.py checks none is missed).

    def _create_authorization_code(self, request, code, expires=None):
        # oauthlib sends ``code`` on to the service afterwards: a copy is stored, hashed.
        hashed = {**code, "code": code_hash(code["code"])}
        return super()._create_authorization_code(request, hashed, expires)

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        hashed = code_hash(code)
        if super().validate_code(client_id, hashed, client, request, *args, **kwargs):
            return True
        used = UsedCode.objects.filter(code_hash=hashed, application=client).first()
        if used is not None:
            revoked = revoke_tokens(used.user_id, used.application_id, since=used.used_at)
            log.warning(
                "An authorization code of client %s was presented again: %d token(s) revoked",
                client.client_id,
                revoked,
            )
        return False

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        hashed = code_hash(code)
        grant = Grant.objects.filter(code=hashed, application=request.client).first()
        if grant is None:
            # Two exchanges of one code at once: both passed validate_code, the other one
            # invalidated it first. A replay: revoke what the code gave, this exchange's
            # tokens included (saved a moment ago), and refuse.
            self._replayed(hashed, request)
            raise errors.InvalidGrantError(request=request)
        # The tokens it gave are those made since the code was: the exchange saves them
        # before the code is invalidated, within the code's minute of life.
        try:
            with transaction.atomic():
                UsedCode.objects.create(
                    code_hash=hashed,
                    application=request.client,
                    user_id=grant.user_id,
                    used_at=grant.created,
                )
        except IntegrityError:
            # The same race, the other exchange between our read of the grant and here.
            self._replayed(hashed, request)
            raise errors.InvalidGrantError(request=request) from None
        # Kept a day: long after the tokens it gave have expired (10 minutes).
        UsedCode.objects.filter(used_at__lt=timezone.now() - USED_CODE_RETENTION).delete()
        super().invalidate_authorization_code(client_id, hashed, request, *args, **kwargs)

    def _replayed(self, hashed: str, request: Any) -> None:
        used = UsedCode.objects.filter(code_hash=hashed, application=request.client).first()
        if used is None:
            return
        revoked = revoke_tokens(used.user_id, used.application_id, since=used.used_at)
        log.warning(
            "An authorization code of client %s was exchanged twice at once: %d token(s) revoked",
            request.client.client_id,
            revoked,
        )

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, *args, **kwargs):
        return super().confirm_redirect_uri(
            client_id, code_hash(code), redirect_uri, client, *args, **kwargs
        )

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        authenticated = super().authenticate_client(request, *args, **kwargs)
        seen = AUTHENTICATED_CLIENTS.get()
        if authenticated and seen is not None:
            seen.append(request.client.client_id)
        return authenticated

    def get_code_challenge(self, code, request):
        hashed = code_hash(code)
        challenge = super().get_code_challenge(hashed, request)
        verifier = getattr(request, "code_verifier", None)
        if challenge is not None and not (
            verifier and code_challenge_method_s256(verifier, challenge)
        ):
            # A wrong or missing code_verifier (only S256 is accepted, oidc/views.py): whoever
            # presents the code may have stolen it. The exchange is refused and the code
            # voided, so that no later try, not even with the right verifier, gets a token for
            # it (RFC 7636 §4.6, RFC 9700 §2.1.1).
            Grant.objects.filter(code=hashed, application=request.client).delete()
            log.warning(
                "A wrong code_verifier for a code of client %s: the code is void",
                request.client.client_id,
            )
            if not verifier:
                raise errors.MissingCodeVerifierError(request=request)
            raise errors.InvalidGrantError(request=request)
        return challenge

    def get_code_challenge_method(self, code, request):
        return super().get_code_challenge_method(code_hash(code), request)

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        return super().get_authorization_code_scopes(
            client_id, code_hash(code), redirect_uri, request
        )

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        return super().get_authorization_code_nonce(
            client_id, code_hash(code), redirect_uri, request
        )

    def _check_and_set_request_resource(self, request):
        # DOT reads the grant's resource indicators (RFC 8707) by ``request.code``.
        code = request.code
        if request.grant_type != "authorization_code" or not code:
            return super()._check_and_set_request_resource(request)
        request.code = code_hash(code)
        try:
            return super()._check_and_set_request_resource(request)
        finally:
            request.code = code

    def save_bearer_token(self, token, request, *args, **kwargs):
        # oauthlib makes a refresh token with every code exchange; the refresh grant is refused
        # here (validate_grant_type), so it is neither stored nor sent to the service.
        token.pop("refresh_token", None)
        return super().save_bearer_token(token, request, *args, **kwargs)

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
