"""The OpenID Connect endpoints: discovery, authorization (sign-in, level, consent), and
django-oauth-toolkit's token, userinfo, JWKS, revocation and logout endpoints around it."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Any
from urllib.parse import unquote_plus, urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from oauth2_provider.exceptions import InvalidOIDCClientError, OAuthToolkitError
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.models import get_application_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import RPInitiatedLogoutView, TokenView, UserInfoView
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.common import add_params_to_uri

from keys import audit
from keys.account_views import LAST_SEEN
from keys.conf import limits
from keys.digital_keys import KINDS, SITE_LEVELS
from keys.models import AuditEvent, DigitalKey
from keys.ratelimit import RateResult, hit, peek
from keys.services.signin import authentication
from oidc import levels
from oidc.csp import RETURN_ORIGIN, allow_form_action, origin_of
from oidc.models import LEVEL_CHOICES, Consent, Service
from oidc.services.tokens import revoke_tokens
from oidc.validators import AUTH_CLAIM, AUTHENTICATED_CLIENTS, service_of

log = logging.getLogger(__name__)
LEVEL_LABELS = dict(LEVEL_CHOICES)

Action = AuditEvent.Action
#: The origin of the service a sign-in in progress will return to (the form-action of the
#: sign-in pages must let the redirect after their last form go there, oidc/middleware.py).
AUTH_PARAMS_FOR_FRESH_SIGNIN = ("prompt", "max_age")
#: Added to the request the sign-in page returns to when a service asked for a fresh sign-in
#: (``prompt=login``, an exceeded ``max_age``): the sign-in must be at least as recent as this
#: (a Unix time). The session already there stays until a new sign-in replaces it.
FRESH_AFTER = "csam_fresh_after"
#: RFC 7636 §4.2: 43 to 128 characters of the unreserved alphabet.
CODE_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{43,128}")
#: OpenID Connect Core §3.1.2.1: max_age is a number of seconds, a non-negative integer.
MAX_AGE = re.compile(r"[0-9]+")


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
        code = error if isinstance(error, str) else getattr(error, "error", "")
        return render(request, "oidc/error.html", {"error": code}, status=status)

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

    def signin_redirect(
        self, request: HttpRequest, *, drop: tuple[str, ...] = (), fresh_after: int | None = None
    ) -> HttpResponse:
        query = request.GET.copy()
        for name in (*drop, FRESH_AFTER):
            query.pop(name, None)
        if fresh_after is not None:
            query[FRESH_AFTER] = str(fresh_after)
        target = f"{request.path}?{query.urlencode()}"
        signin = reverse("keys:signin")
        response = HttpResponse(status=302)
        response["Location"] = f"{signin}?{urlencode({'next': target})}"
        return response

    # -- the flow --------------------------------------------------------------------------

    def authorize(self, request: HttpRequest, answer: str | None) -> HttpResponse:
        if not request.GET.get("redirect_uri"):
            # Required by OpenID Connect Core §3.1.2.1; without it there is no checked address
            # to send even an error to (RFC 6749 §4.1.2.1): the error page.
            return self.error_page(request, "invalid_request")
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
        if not CODE_CHALLENGE.fullmatch(request.GET.get("code_challenge", "")):
            return self.error_to_service(
                request,
                application,
                credentials,
                "invalid_request",
                "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636).",
            )
        max_age = request.GET.get("max_age")
        if max_age is not None and not MAX_AGE.fullmatch(max_age):
            return self.error_to_service(
                request,
                application,
                credentials,
                "invalid_request",
                "max_age must be a non-negative integer.",
            )
        try:
            required = levels.required_level(request.GET.get("acr_values", ""), service.min_level)
        except levels.UnknownAcr:
            return self.level_refused(request, application, credentials, None, None, unknown=True)
        if not levels.reachable(required):
            return self.level_refused(request, application, credentials, required, None)

        prompt = set(request.GET.get("prompt", "").split())
        auth = self.signed_in(request)
        fresh = "login" in prompt or self.too_old(request, auth)
        after = self.fresh_after(request)
        if auth is None or fresh or (after is not None and auth["at"] < after):
            if "none" in prompt:
                return self.error_to_service(
                    request, application, credentials, "login_required", "Sign-in needed."
                )
            # The sign-in page, which returns here once a new sign-in is made; the session
            # already there (a cross-site link may have sent the citizen here) stays as it is
            # until that new sign-in replaces it.
            request.session[RETURN_ORIGIN] = origin_of(credentials["redirect_uri"])
            if fresh:
                after = int(timezone.now().timestamp())
            return self.signin_redirect(
                request, drop=AUTH_PARAMS_FOR_FRESH_SIGNIN, fresh_after=after
            )

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
        # A level no key of this site gives (a session signed in with a passkey when it still
        # counted as "high"): not a sign-in a service may be told of.
        if auth is None or auth.get("acr") not in SITE_LEVELS:
            return None
        idle = timezone.now().timestamp() - request.session.get(LAST_SEEN, 0)
        if idle > limits.SIGNIN_IDLE_TIMEOUT.total_seconds():
            return None
        return auth

    def too_old(self, request: HttpRequest, auth: dict | None) -> bool:
        """Whether the sign-in is older than ``max_age`` (checked as digits before)."""
        raw = request.GET.get("max_age", "")
        if auth is None or not raw:
            return False
        # Past the number of seconds since 1970, any max_age is no limit.
        max_age = int(raw) if len(raw) <= 12 else 10**12
        return timezone.now().timestamp() - auth["at"] > max_age

    def fresh_after(self, request: HttpRequest) -> int | None:
        """The time a sign-in must be at least as recent as (``FRESH_AFTER``, set by
        :meth:`signin_redirect`); None without one. A value that is no time in the past is
        ignored: it can only come from someone other than this view, and asks nothing a request
        without it would not (a service's ``prompt=login`` sets it anew)."""
        raw = request.GET.get(FRESH_AFTER, "")
        if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
            return None
        value = int(raw)
        return value if value <= timezone.now().timestamp() else None

    def level_refused(
        self,
        request: HttpRequest,
        application: Any,
        credentials: dict,
        required: str | None,
        auth: dict | None,
        *,
        unknown: bool = False,
    ) -> HttpResponse:
        """The page that tells the citizen why the service cannot be reached with their keys,
        with the way back to the service (an ``unmet_authentication_requirements`` error) and,
        when another key of theirs would do, a fresh sign-in. With ``prompt=none`` no page: the
        error goes back to the service at once (OpenID Connect Core §3.1.2.6), ``login_required``
        when a new sign-in with another key could reach the level, else
        ``unmet_authentication_requirements``. ``unknown``: ``acr_values`` names no level."""
        other_key = False
        if auth is not None and required is not None:
            # A key on probation (added after a recovery, issue 25 §1) gives "low" until its
            # end: no sign-in with it can reach a higher level, so it is not offered for one.
            kinds = list(
                request.user.digital_keys.filter(state=DigitalKey.State.ACTIVE)
                .exclude(probation_until__gt=timezone.now())
                .values_list("kind", flat=True)
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
        beyond = unknown or not levels.reachable(required)
        if "none" in request.GET.get("prompt", "").split():
            if beyond:
                return self.error_to_service(
                    request,
                    application,
                    credentials,
                    "unmet_authentication_requirements",
                    "The level asked for is not given here.",
                )
            return self.error_to_service(
                request,
                application,
                credentials,
                "login_required",
                "A sign-in with a key of the level asked for is needed.",
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
                "unknown": unknown,
                "beyond": beyond and not unknown,
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
            # What this site's sign-ins can give: no "high" (FAS's eID card and itsme).
            "acr_values_supported": [levels.acr_of(level) for level in SITE_LEVELS],
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


def claimed_client(request: HttpRequest) -> str:
    """The client id a token request names, authenticated or not: HTTP Basic's user (RFC 6749
    §2.3.1, form-urlencoded), else the body's ``client_id``; ``""`` for none."""
    scheme, _space, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id = unquote_plus(decoded.partition(":")[0])
        if client_id:
            return client_id[:200]
    return request.POST.get("client_id", "")[:200]


@method_decorator(never_cache, name="dispatch")
class RateLimitedTokenView(TokenView):
    """The token endpoint, with three limits (``oidc-token:*`` in ``keys/conf.py``):

    - ``oidc-token:client``: a service's own budget, counted only on the requests it
      authenticated (its secret right, whatever the answer), so that no one who merely names
      it can spend it;
    - ``oidc-token:ip``: the unauthenticated failures (no, an unknown or a wrong client secret,
      a malformed request) of an address; over it the address is refused;
    - ``oidc-token:client-failures``: the unauthenticated failures naming a client (a wrong
      secret with HTTP Basic included); over it, the addresses that failed themselves are
      refused for that client, the service's own (which do not fail) are not.

    Refused: 429 with ``Retry-After`` and the token endpoint's own error format (RFC 6749
    §5.2): ``invalid_request``, the only one of its codes that fits ("too many requests" in
    ``error_description``); ``slow_down`` belongs to the device flow (RFC 8628), which a
    client of the code flow does not expect."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        address = audit.client_ip(request)
        claimed = claimed_client(request)
        failures, result = peek("oidc-token:ip", address)
        if not result.allowed:
            return self.too_many(request, "oidc-token:ip", result)
        if claimed:
            _count, result = peek("oidc-token:client", claimed)
            if not result.allowed:
                return self.too_many(request, "oidc-token:client", result)
            _count, result = peek("oidc-token:client-failures", claimed)
            if not result.allowed and failures:
                return self.too_many(request, "oidc-token:client-failures", result)
        authenticated: list[str] = []
        context = AUTHENTICATED_CLIENTS.set(authenticated)
        try:
            response = super().post(request, *args, **kwargs)
        finally:
            AUTHENTICATED_CLIENTS.reset(context)
        if authenticated:
            hit("oidc-token:client", authenticated[-1])
        elif response.status_code != 200:
            hit("oidc-token:ip", address)
            if claimed:
                hit("oidc-token:client-failures", claimed)
        return response

    def too_many(self, request: HttpRequest, scope: str, result: RateResult) -> HttpResponse:
        audit.record(Action.RATE_LIMITED, request=request, scope=scope)
        response = JsonResponse(
            {
                "error": "invalid_request",
                "error_description": "Too many requests: try again in "
                f"{result.retry_after_seconds} seconds.",
            },
            status=429,
        )
        response["Retry-After"] = str(result.retry_after_seconds)
        return response


class HeaderOnlyUserInfoView(UserInfoView):
    """The userinfo endpoint, the access token in the ``Authorization`` header only (RFC 9700
    §4.3.2 after RFC 6750 §2.3, and no form body either): a token in the query string or the
    form body is refused with ``invalid_request`` (RFC 6750 §3.1), never used."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.refused(request) or super().get(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.refused(request) or super().post(request, *args, **kwargs)

    def refused(self, request: HttpRequest) -> HttpResponse | None:
        if "access_token" not in request.GET and "access_token" not in request.POST:
            return None
        description = "The access token goes in the Authorization header only."
        response = JsonResponse(
            {"error": "invalid_request", "error_description": description}, status=400
        )
        response["WWW-Authenticate"] = (
            f'Bearer error="invalid_request", error_description="{description}"'
        )
        response["Cache-Control"] = "no-store"
        return response


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

    def get_request_application(self, id_token: Any, client_id: str | None) -> Any:
        """The service asking, named by ``client_id`` or by the ID token: an unknown
        ``client_id`` is a refused request (the translated error page), not a 500."""
        if client_id:
            application = get_application_model().objects.filter(client_id=client_id).first()
            if application is None:
                raise InvalidOIDCClientError()
            return application
        return id_token.application if id_token else None

    def do_logout(
        self, application=None, post_logout_redirect_uri=None, state=None, token_user=None
    ):
        """Signed out here, and the tokens of the citizen at the service asking revoked: that
        service's only (its sign-out says nothing of the citizen's other services), none when
        no service asks. Then back to the service's checked post-logout URI, or the home page."""
        if self.request.user.is_authenticated:
            audit.record(Action.SIGNED_OUT, request=self.request, actor=self.request.user)
        user = token_user or self.request.user
        if (
            oauth2_settings.OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS
            and application is not None
            and user.is_authenticated
        ):
            revoke_tokens(user.pk, application.pk)
        logout(self.request)
        if post_logout_redirect_uri:
            if state:
                post_logout_redirect_uri = add_params_to_uri(
                    post_logout_redirect_uri, [("state", state)]
                )
            return OAuth2ResponseRedirect(
                post_logout_redirect_uri, application.get_allowed_schemes()
            )
        return OAuth2ResponseRedirect(
            self.request.build_absolute_uri("/"), oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES
        )
