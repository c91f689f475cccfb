"""While a citizen signs in for a service, the sign-in pages may send their last form on to
that service: browsers apply CSP form-action to the redirects after a form, so the service's
origin (checked against its registered redirect URI, ``oidc.csp.RETURN_ORIGIN``) is added
to form-action on this session's pages until the sign-in is over."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from oidc.csp import RETURN_ORIGIN, allow_form_action


class ServiceReturnFormAction:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        # Only a session the view already loaded: no page pays a query for this.
        loaded = session is not None and hasattr(session, "_session_cache")
        origin = session.get(RETURN_ORIGIN) if loaded else None
        if origin and response.get("Content-Type", "").startswith("text/html"):
            allow_form_action(response, origin)
        return response
