"""The OpenID Connect endpoints: discovery, authorization (sign-in, level, consent), and
django-oauth-toolkit's token, userinfo, JWKS, revocation and logout endpoints around it."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.models import get_application_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import RPInitiatedLogoutView, TokenView
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.common import add_params_to_uri

from keys import audit
from keys.account_views import LAST_SEEN
from keys.conf import limits
from keys.digital_keys import KINDS, LEVELS
from keys.models import AuditEvent, DigitalKey
from keys.ratelimit import hit
from keys.services.signin import authentication
from oidc import levels
from oidc.csp import RETURN_ORIGIN, allow_form_action, origin_of
from oidc.models import LEVEL_CHOICES, Consent, Service
from oidc.validators import AUTH_CLAIM, service_of

log = logging.getLogger(__name__)
LEVEL_LABELS = dict(LEVEL_CHOICES)

Action = AuditEvent.Action
#: The origin of the service a sign-in in progress will return to (the form-action of the
#: sign-in pages must let the redirect after their last form go there, oidc/middleware.py).
AUTH_PARAMS_FOR_FRESH_SIGNIN = ("prompt", "max_age")


def _language(request: HttpRequest) -> str:
    """The citizen's language: the one they chose on this site (cookie), else the service's
    ``ui_locales``, else the browser's."""
    supported = [code for code, _name in settings.LANGUAGES]
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    if chosen in supported:
        return chosen
    for tag in request.GET.get("ui_locales", "").split():
        code = tag.split("-")[0].lower()
        if code in supported:
            return code
    return translation.get_language() or settings.LANGUAGE_CODE


def issuer(request: HttpRequest) -> str:
    return oauth2_settings.oidc_issuer(request)


@method_decorator(never_cache, name="dispatch")
class AuthorizeView(OAuthLibMixin, View):
    """The authorization endpoint (authorization code flow, PKCE S256, no other)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        language = _language(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.authorize(request, answer=None)

    def post(self, request: HttpRequest) -> HttpResponse:
        return self.authorize(request, answer=request.POST.get("answer", ""))

    # -- answers ---------------------------------------------------------------------------

    def error_page(self, request: HttpRequest, error: Any, status: int = 400) -> HttpResponse:
        request.session.pop(RETURN_ORIGIN, None)
        return render(
            request, "oidc/error.html", {"error": getattr(error, "error", "")}, status=status
        )

    def to_service(
        self, request: HttpRequest, application: Any, uri: str, **params: str
    ) -> HttpResponse:
        """Back to the service (``uri`` is its redirect URI, already checked), with ``params``
        (an error) added."""
        request.session.pop(RETURN_ORIGIN, None)
        if params:
            params = {key: value for key, value in params.items() if value}
            uri = add_params_to_uri(uri, list(params.items()))
        return OAuth2ResponseRedirect(uri, application.get_allowed_schemes())

    def error_to_service(
        self,
        request: HttpRequest,
        application: Any,
        credentials: dict,
        error: str,
        description: str,
    ) -> HttpResponse:
        return self.to_service(
            request,
            application,
            credentials["redirect_uri"],
            error=error,
            error_description=description,
            state=credentials.get("state") or "",
            iss=issuer(request),
        )

    def signin_redirect(self, request: HttpRequest, *, drop: tuple[str, ...] = ()) -> HttpResponse:
        query = request.GET.copy()
        for name in drop:
            query.pop(name, None)
        target = f"{request.path}?{query.urlencode()}"
        signin = reverse("keys:signin")
        response = HttpResponse(status=302)
        response["Location"] = f"{signin}?{urlencode({'next': target})}"
        return response

    # -- the flow --------------------------------------------------------------------------

    def authorize(self, request: HttpRequest, answer: str | None) -> HttpResponse:
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            redirect, response = super().error_response(error)
            if not redirect:  # unknown client, wrong redirect URI: never sent anywhere
                return self.error_page(request, error.oauthlib_error)
            application = (
                get_application_model()
                .objects.filter(client_id=request.GET.get("client_id", ""))
                .first()
            )
            if application is None:
                return self.error_page(request, error.oauthlib_error)
            return self.to_service(
                request,
                application,
                add_params_to_uri(response["url"], [("iss", issuer(request))]),
            )
        application = (
            get_application_model()
            .objects.select_related("service")
            .get(client_id=credentials["client_id"])
        )
        service: Service | None = service_of(application)
        if service is None:  # a client made outside register_service: not a service here
            return self.error_page(request, None)
        if credentials.get("code_challenge_method") != "S256":
            return self.error_to_service(
                request, application, credentials, "invalid_request", "PKCE with S256 is required."
            )
        required = levels.required_level(request.GET.get("acr_values", ""), service.min_level)
        if required is None or levels.rank(required) > levels.rank(levels.best_possible_level()):
            return self.level_refused(request, application, credentials, required, None)

        prompt = set(request.GET.get("prompt", "").split())
        auth = self.signed_in(request)
        fresh = "login" in prompt or self.too_old(request, auth)
        if auth is None or fresh:
            if "none" in prompt:
                return self.error_to_service(
                    request, application, credentials, "login_required", "Sign-in needed."
                )
            if auth is not None:
                logout(request)
            request.session[RETURN_ORIGIN] = origin_of(credentials["redirect_uri"])
            return self.signin_redirect(request, drop=AUTH_PARAMS_FOR_FRESH_SIGNIN)

        if levels.rank(auth["acr"]) < levels.rank(required):
            return self.level_refused(request, application, credentials, required, auth)

        consent = Consent.objects.filter(user=request.user, service=service).first()
        if consent is None or not consent.covers(scopes) or "consent" in prompt:
            if "none" in prompt:
                return self.error_to_service(
                    request, application, credentials, "consent_required", "Consent needed."
                )
            if answer is None:
                return self.consent_page(request, application, scopes, credentials, auth)
            if answer != "allow":
                audit.record(
                    Action.OIDC_REFUSED,
                    request=request,
                    citizen=getattr(request.user, "citizen", None),
                    service=application.name,
                    client_id=application.client_id,
                    reason="consent_denied",
                )
                return self.error_to_service(
                    request, application, credentials, "access_denied", "The citizen said no."
                )
            Consent.objects.update_or_create(
                user=request.user,
                service=service,
                defaults={"scopes": " ".join(sorted(scopes)), "last_used_at": timezone.now()},
            )
        else:
            Consent.objects.filter(pk=consent.pk).update(last_used_at=timezone.now())
        return self.issue_code(request, application, scopes, credentials, auth)

    def signed_in(self, request: HttpRequest) -> dict | None:
        """How the citizen signed in here, when they did, fully, and not too long ago."""
        user = request.user
        if not user.is_authenticated or user.is_staff or not hasattr(user, "citizen"):
            return None
        auth = authentication(request)
        if auth is None or auth.get("acr") not in LEVELS:
            return None
        idle = timezone.now().timestamp() - request.session.get(LAST_SEEN, 0)
        if idle > limits.SIGNIN_IDLE_TIMEOUT.total_seconds():
            return None
        return auth

    def too_old(self, request: HttpRequest, auth: dict | None) -> bool:
        raw = request.GET.get("max_age", "")
        if auth is None or not raw:
            return False
        try:
            max_age = int(raw)
        except ValueError:
            return False
        return timezone.now().timestamp() - auth["at"] > max(max_age, 0)

    def level_refused(
        self,
        request: HttpRequest,
        application: Any,
        credentials: dict,
        required: str | None,
        auth: dict | None,
    ) -> HttpResponse:
        """The page that tells the citizen why the service cannot be reached with their keys,
        with the way back to the service (an ``unmet_authentication_requirements`` error) and,
        when another key of theirs would do, a fresh sign-in."""
        other_key = False
        if auth is not None and required is not None:
            kinds = list(
                request.user.digital_keys.filter(state=DigitalKey.State.ACTIVE).values_list(
                    "kind", flat=True
                )
            )
            best = levels.best_level_of(kinds)
            other_key = best is not None and levels.rank(best) >= levels.rank(required)
        audit.record(
            Action.OIDC_REFUSED,
            request=request,
            citizen=getattr(request.user, "citizen", None) if auth else None,
            service=application.name,
            client_id=application.client_id,
            reason="level",
            required=required or request.GET.get("acr_values", "")[:100],
        )
        back = add_params_to_uri(
            credentials["redirect_uri"],
            [
                (key, value)
                for key, value in (
                    ("error", "unmet_authentication_requirements"),
                    ("error_description", "The level asked for was not reached."),
                    ("state", credentials.get("state") or ""),
                    ("iss", issuer(request)),
                )
                if value
            ],
        )
        query = request.GET.copy()
        query["prompt"] = "login"
        request.session.pop(RETURN_ORIGIN, None)
        return render(
            request,
            "oidc/level_refused.html",
            {
                "service": application.name,
                "required": LEVEL_LABELS.get(required or ""),
                "reached": LEVEL_LABELS.get(auth["acr"]) if auth else None,
                "kinds": [kind.label for kind in KINDS.values() if kind.amr in auth["amr"]]
                if auth
                else [],
                "back": back,
                "again": f"{request.path}?{query.urlencode()}" if other_key else "",
            },
            status=403,
        )

    def consent_page(
        self, request: HttpRequest, application: Any, scopes: list[str], credentials: dict, auth
    ) -> HttpResponse:
        citizen = request.user.citizen
        response = render(
            request,
            "oidc/consent.html",
            {
                "service": application.name,
                "scopes": scopes,
                "citizen": citizen,
                "level": auth["acr"],
                "action": request.get_full_path(),
            },
        )
        return allow_form_action(response, origin_of(credentials["redirect_uri"]))

    def issue_code(
        self, request: HttpRequest, application: Any, scopes: list[str], credentials: dict, auth
    ) -> HttpResponse:
        claims = credentials.get("claims")
        claims = dict(claims) if isinstance(claims, dict) else {}
        claims[AUTH_CLAIM] = {
            "acr": levels.acr_of(auth["acr"]),
            "amr": list(auth["amr"]),
            "at": int(auth["at"]),
        }
        credentials["claims"] = claims
        for name in ("request", "ui_locales", "acr_values", "max_age", "prompt", "login_hint"):
            credentials.pop(name, None)
        try:
            uri, _headers, _body, _status = self.create_authorization_response(
                request=request, scopes=" ".join(scopes), credentials=credentials, allow=True
            )
        except OAuthToolkitError as error:
            redirect, response = super().error_response(error)
            if not redirect:
                return self.error_page(request, error.oauthlib_error)
            return self.to_service(request, application, response["url"])
        audit.record(
            Action.OIDC_SIGNIN,
            request=request,
            citizen=request.user.citizen,
            service=application.name,
            client_id=application.client_id,
            level=auth["acr"],
            acr=levels.acr_of(auth["acr"]),
            amr=list(auth["amr"]),
            scopes=sorted(scopes),
        )
        return self.to_service(request, application, uri)


@method_decorator(never_cache, name="dispatch")
class DiscoveryView(View):
    """``/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 §3)."""

    def get(self, request: HttpRequest) -> JsonResponse:
        iss = issuer(request)

        def url(name: str) -> str:
            return request.build_absolute_uri(reverse(f"oauth2_provider:{name}"))

        data = {
            "issuer": iss,
            "authorization_endpoint": url("authorize"),
            "token_endpoint": url("token"),
            "userinfo_endpoint": url("user-info"),
            "jwks_uri": url("jwks-info"),
            "end_session_endpoint": url("rp-initiated-logout"),
            "revocation_endpoint": url("revoke-token"),
            "scopes_supported": list(oauth2_settings.SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256"],
            "acr_values_supported": [levels.acr_of(level) for level in LEVELS],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "amr",
                "name",
                "given_name",
                "family_name",
                "locale",
                "egovNRN",
            ],
            "ui_locales_supported": [code for code, _name in settings.LANGUAGES],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            "prompt_values_supported": ["none", "login", "consent"],
        }
        response = JsonResponse(data)
        response["Access-Control-Allow-Origin"] = "*"
        return response


@method_decorator(never_cache, name="dispatch")
class RateLimitedTokenView(TokenView):
    """The token endpoint, with limits per address and per client (``oidc-token:*``)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        checks = [("oidc-token:ip", audit.client_ip(request))]
        client_id = request.POST.get("client_id", "") or request.headers.get("Authorization", "")
        if client_id:
            checks.append(("oidc-token:client", client_id[:200]))
        for name, identity in checks:
            result = hit(name, identity)
            if not result.allowed:
                audit.record(Action.RATE_LIMITED, request=request, scope=name)
                response = JsonResponse(
                    {"error": "slow_down", "error_description": "Too many requests."}, status=429
                )
                response["Retry-After"] = str(result.retry_after_seconds)
                return response
        return super().post(request, *args, **kwargs)


class LogoutView(RPInitiatedLogoutView):
    """RP-initiated logout in this site's look; its confirmation form may go back to the
    service's registered post-logout URI."""

    template_name = "oidc/logout_confirm.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        translation.activate(_language(request))
        request.LANGUAGE_CODE = translation.get_language()
        return super().dispatch(request, *args, **kwargs)

    def render_to_response(self, context: dict, **kwargs: Any) -> HttpResponse:
        response = super().render_to_response(context, **kwargs)
        target = self.request.GET.get("post_logout_redirect_uri") or self.request.POST.get(
            "post_logout_redirect_uri", ""
        )
        application = context.get("application")
        if target and application and application.post_logout_redirect_uri_allowed(target):
            allow_form_action(response, origin_of(target))
        return response

    def do_logout(
        self, application=None, post_logout_redirect_uri=None, state=None, token_user=None
    ):
        if self.request.user.is_authenticated:
            audit.record(Action.SIGNED_OUT, request=self.request, actor=self.request.user)
        return super().do_logout(application, post_logout_redirect_uri, state, token_user)
