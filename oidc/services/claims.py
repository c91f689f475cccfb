"""What a service receives about a citizen: a pairwise ``sub``, names and language with
``profile``, the national register number with ``egovnrn`` (only services allowed it)."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.utils.crypto import salted_hmac

from keys.models import User
from oidc.models import Service

SCOPE_CLAIMS = {
    "profile": ["name", "given_name", "family_name", "locale"],
    "egovnrn": ["egovNRN"],
}


def pairwise_sub(service: Service, user: User) -> str:
    """The citizen's identifier at ``service``'s sector (OpenID Connect Core §8.1): the same
    for every service of the sector, different across sectors, stable, not reversible."""
    secret = settings.OIDC_PAIRWISE_SECRET
    message = f"{service.sector}\x00{user.pk}".encode()
    if secret:
        return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return salted_hmac("oidc.pairwise-sub", message, algorithm="sha256").hexdigest()


def allowed_scopes(service: Service) -> set[str]:
    scopes = {"openid", "profile"}
    if service.allow_nrn:
        scopes.add("egovnrn")
    return scopes


def claims_for(service: Service, user: User, scopes: list[str]) -> dict[str, str]:
    """The claims of ``user`` that ``scopes`` give ``service`` (userinfo and ID token)."""
    claims = {"sub": pairwise_sub(service, user)}
    citizen = getattr(user, "citizen", None)
    if citizen is None:
        return claims
    if "profile" in scopes:
        claims.update(
            name=citizen.full_name,
            given_name=citizen.first_name,
            family_name=citizen.last_name,
            locale=citizen.language,
        )
    if "egovnrn" in scopes and service.allow_nrn:
        claims["egovNRN"] = citizen.national_number
    return claims
