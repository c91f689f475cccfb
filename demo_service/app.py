"""A tiny demo government service that signs citizens in with "My digital keys".

It is a relying party as any service would be: it knows the provider only by its discovery
document, signs citizens in with the authorization code flow (PKCE S256, state, nonce) through
Authlib, an OpenID Connect client library this project did not write, checks the ID token's
signature against the provider's JWKS and its ``iss``, ``aud``, ``nonce``, ``acr`` and ``amr``,
and shows what it received. Plain WSGI from the standard library, sessions in memory.

    python demo_service/app.py            # http://127.0.0.1:8010/, configured by
                                          # var/demo-service.json (manage.py demo_setup)

Configuration (``DemoConfig``): the provider's URL, the client id and secret, the redirect URI
and the scopes; from ``DEMO_SERVICE_CONFIG`` (a JSON file) or the environment.
"""

from __future__ import annotations

import html
import json
import os
import secrets
import sys
import threading
import warnings
from dataclasses import dataclass, field
from http import cookies
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode
from wsgiref.simple_server import WSGIRequestHandler, make_server

import requests
from authlib.integrations.requests_client import OAuth2Session

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "var" / "demo-service.json"
COOKIE = "demo_service_session"
#: The levels "My digital keys" gives (FAS acr values); Level450 (itsme) and Level500 (the eID
#: card) are given elsewhere, never by it.
LEVELS = {
    "urn:be:fedict:iam:fas:citizen:Level200": "low",
    "urn:be:fedict:iam:fas:citizen:Level400": "substantial",
}
EID_LEVEL = "urn:be:fedict:iam:fas:citizen:Level500"


@dataclass
class DemoConfig:
    provider: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str = "openid profile egovnrn"
    acr_values: str = "urn:be:fedict:iam:fas:citizen:Level400"
    name: str = "Demo service"

    @classmethod
    def load(cls) -> DemoConfig:
        path = Path(os.environ.get("DEMO_SERVICE_CONFIG", DEFAULT_CONFIG))
        data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        for key in ("provider", "client_id", "client_secret", "redirect_uri", "scope"):
            value = os.environ.get(f"DEMO_{key.upper()}")
            if value:
                data[key] = value
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class Session:
    pending: dict[str, str] = field(default_factory=dict)
    claims: dict[str, Any] | None = None
    userinfo: dict[str, Any] | None = None
    id_token: str = ""
    error: str = ""


class DemoService:
    """The WSGI application."""

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.sessions: dict[str, Session] = {}
        self._metadata: dict[str, Any] | None = None
        self.lock = threading.Lock()

    # -- the provider ----------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self.config.provider.rstrip("/") + "/.well-known/openid-configuration"
            self._metadata = requests.get(url, timeout=10).json()
        return self._metadata

    def client(self) -> OAuth2Session:
        return OAuth2Session(
            self.config.client_id,
            self.config.client_secret,
            scope=self.config.scope,
            redirect_uri=self.config.redirect_uri,
            code_challenge_method="S256",
        )

    # -- pages -----------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "/")
        session_id, session = self.session(environ)
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            if path == "/login":
                status, headers, body = self.login(session, query)
            elif path == "/callback":
                status, headers, body = self.callback(session, query)
            elif path == "/logout":
                status, headers, body = self.logout(session)
            elif path == "/":
                status, headers, body = "200 OK", [], self.home(session)
            else:
                status, headers, body = "404 Not Found", [], self.page("Not found", "")
        except Exception as error:  # a demo: show what went wrong
            session.error = f"{type(error).__name__}: {error}"
            status, headers, body = "302 Found", [("Location", "/")], ""
        headers = [
            *headers,
            ("Set-Cookie", f"{COOKIE}={session_id}; HttpOnly; SameSite=Lax; Path=/"),
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
        ]
        start_response(status, headers)
        return [body.encode()]

    def session(self, environ: dict) -> tuple[str, Session]:
        jar = cookies.SimpleCookie(environ.get("HTTP_COOKIE", ""))
        session_id = jar[COOKIE].value if COOKIE in jar else ""
        with self.lock:
            if session_id not in self.sessions:
                session_id = secrets.token_urlsafe(24)
                self.sessions[session_id] = Session()
            return session_id, self.sessions[session_id]

    def login(self, session: Session, query: dict[str, str]) -> tuple[str, list, str]:
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(16)
        extra = {"nonce": nonce, "acr_values": query.get("acr", self.config.acr_values)}
        if query.get("lang"):
            extra["ui_locales"] = query["lang"]
        uri, state = self.client().create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=verifier, **extra
        )
        session.pending = {"state": state, "nonce": nonce, "verifier": verifier}
        session.error = ""
        return "302 Found", [("Location", uri)], ""

    def callback(self, session: Session, query: dict[str, str]) -> tuple[str, list, str]:
        pending, session.pending = session.pending, {}
        if not pending or query.get("state") != pending.get("state"):
            raise ValueError("the state does not match: not our sign-in")
        if "iss" in query and query["iss"] != self.metadata["issuer"]:
            raise ValueError("the response comes from another issuer (RFC 9207)")
        if "error" in query:
            session.error = f"{query['error']}: {query.get('error_description', '')}"
            return "302 Found", [("Location", "/")], ""
        token = self.client().fetch_token(
            self.metadata["token_endpoint"],
            code=query["code"],
            code_verifier=pending["verifier"],
            state=pending["state"],
        )
        session.claims = self.verify(token, pending["nonce"])
        session.id_token = token["id_token"]
        session.userinfo = requests.get(
            self.metadata["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=10,
        ).json()
        return "302 Found", [("Location", "/")], ""

    def verify(self, token: dict[str, Any], nonce: str) -> dict[str, Any]:
        """The ID token's signature (JWKS), iss, aud, exp, nonce, at_hash, acr, amr."""
        keys = JsonWebKey.import_key_set(requests.get(self.metadata["jwks_uri"], timeout=10).json())
        claims = jwt.decode(
            token["id_token"],
            keys,
            claims_cls=CodeIDToken,
            claims_options={
                "iss": {"essential": True, "value": self.metadata["issuer"]},
                "acr": {"essential": True, "values": list(LEVELS)},
                "auth_time": {"essential": True},
            },
            claims_params={
                "nonce": nonce,
                "client_id": self.config.client_id,
                "access_token": token["access_token"],
            },
        )
        claims.validate(leeway=30)
        amr = claims.get("amr")
        if not isinstance(amr, list) or "pwd" not in amr:
            raise ValueError(f"unexpected amr: {amr!r}")
        return dict(claims)

    def logout(self, session: Session) -> tuple[str, list, str]:
        id_token, session.id_token = session.id_token, ""
        session.claims = session.userinfo = None
        params = {
            "client_id": self.config.client_id,
            "post_logout_redirect_uri": self.config.redirect_uri.rsplit("/", 1)[0] + "/",
        }
        if id_token:
            params["id_token_hint"] = id_token
        endpoint = self.metadata.get("end_session_endpoint")
        if not endpoint:
            return "302 Found", [("Location", "/")], ""
        return "302 Found", [("Location", f"{endpoint}?{urlencode(params)}")], ""

    def home(self, session: Session) -> str:
        parts = []
        if session.error:
            parts.append(f'<p role="alert" id="error">{html.escape(session.error)}</p>')
        if session.claims:
            info = session.userinfo or {}
            acr = session.claims.get("acr", "")
            rows = [
                ("Name", info.get("name", "(not asked)")),
                ("Language", info.get("locale", "(not asked)")),
                ("National register number", info.get("egovNRN", "(not received)")),
                ("Level", f"{LEVELS.get(acr, '?')} ({acr})"),
                ("Keys used (amr)", " ".join(session.claims.get("amr", []))),
                ("Identifier at this service (sub)", session.claims.get("sub", "")),
                ("ID token signature", "verified against the provider's JWKS"),
            ]
            parts.append("<h2>You are signed in</h2><dl>")
            for label, value in rows:
                parts.append(f"<dt>{html.escape(label)}</dt><dd>{html.escape(str(value))}</dd>")
            parts.append('</dl><p><a href="/logout">Sign out</a></p>')
        else:
            parts.append(
                '<p><a href="/login">Sign in with “My digital keys”</a></p>'
                f'<p><a href="/login?acr={EID_LEVEL}">'
                "Sign in, asking for the eID card’s level (Level500)</a></p>"
            )
        return self.page(self.config.name, "".join(parts))

    def page(self, title: str, body: str) -> str:
        title = html.escape(title)
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"</head><body><main><h1>{title}</h1>{body}</main></body></html>"
        )


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the callback's code stays out
        sys.stderr.write(f"demo service: {self.command} {self.path.split('?')[0]}\n")


def serve(config: DemoConfig, host: str = "127.0.0.1", port: int = 8010):
    """A WSGI server for ``config`` (``serve_forever()`` it; tests run it in a thread)."""
    return make_server(host, port, DemoService(config), handler_class=QuietHandler)


if __name__ == "__main__":
    server = serve(DemoConfig.load(), port=int(os.environ.get("DEMO_SERVICE_PORT", "8010")))
    print(f"Demo service on http://127.0.0.1:{server.server_port}/")
    server.serve_forever()
