"""The service's origin in a response's CSP form-action (browsers apply form-action to the
redirect after a form): used by the provider's views and, on every page, by
``oidc.middleware`` — which is why it lives apart from the views and their library."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from django.utils.csp import CSP

#: Session key: the origin of the service a sign-in under way will return to.
RETURN_ORIGIN = "csam_oidc_return_origin"


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def allow_form_action(response: HttpResponse, *origins: str) -> HttpResponse:
    """This response's CSP with ``origins`` added to form-action, so that the redirect after
    its form may reach the service (browsers apply form-action to redirects too)."""
    config = dict(getattr(response, "_csp_config", None) or settings.SECURE_CSP)
    allowed = list(config.get("form-action", [CSP.SELF]))
    allowed += [origin for origin in origins if origin and origin not in allowed]
    config["form-action"] = allowed
    response._csp_config = config
    return response
