"""``{% connected_services %}``: the services a signed-in citizen allowed, with a button to
withdraw each (included in keys/account/my_keys.html)."""

from __future__ import annotations

from django import template
from django.conf import settings

from oidc.services.consent import consents_of

register = template.Library()


@register.inclusion_tag("oidc/account/connected_services.html", takes_context=True)
def connected_services(context: template.Context) -> dict:
    request = context["request"]
    enabled = getattr(settings, "OIDC_PROVIDER_ENABLED", False)
    return {
        "enabled": enabled,
        "consents": consents_of(request.user) if enabled else [],
        "csrf_token": context.get("csrf_token"),
    }
