"""A citizen's consents: listed on "My digital keys", withdrawn there."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from keys import audit
from keys.models import AuditEvent, User
from oidc.models import Consent
from oidc.services.tokens import revoke_tokens


def consents_of(user: User) -> list[Consent]:
    return list(
        Consent.objects.filter(user=user)
        .select_related("service__application")
        .order_by("service__application__name", "pk")
    )


def withdraw(request: HttpRequest, user: User, consent: Consent) -> None:
    """Forget the citizen's yes and revoke every token the service holds for them: the next
    sign-in at the service asks again."""
    application = consent.service.application
    with transaction.atomic():
        Consent.objects.filter(pk=consent.pk).delete()
        revoke_tokens(user.pk, application.pk)
    audit.record(
        AuditEvent.Action.OIDC_CONSENT_WITHDRAWN,
        request=request,
        actor=user,
        citizen=getattr(user, "citizen", None),
        service=application.name,
        client_id=application.client_id,
    )
