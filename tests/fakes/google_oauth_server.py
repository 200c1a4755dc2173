"""A loopback stand-in for Google's OAuth 2.0 / OpenID Connect endpoints, in their documented wire formats.

Discovery (`/.well-known/openid-configuration`), authorization (`/o/oauth2/v2/auth`: auto-approves the configured
test user, redirects with `code`, `state`, `scope`, requires PKCE S256), token (`/token`: code exchange checked
against the code verifier, client secret and redirect URI; access token plus an RS256 ID token), token-info
(`/tokeninfo`, the token as `access_token=` or in `Authorization: Bearer` of a POST: string-valued claims,
400 `invalid_token` otherwise) and the signing
certificates (`/oauth2/v1/certs` as PEM by kid, `/oauth2/v3/certs` as a JWK set).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes.google_certs_server import SigningKey, _b64url

EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"  # what Google reports for the `email` scope


@dataclass
class OAuthClient:
    """An OAuth client as registered in the Google Cloud console."""

    client_id: str
    client_secret: str | None
    redirect_uris: list[str]


@dataclass
class AccessToken:
    client_id: str
    email: str
    expires_at: int
    scope: str
    email_verified: bool = True


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    email: str


@dataclass
class FakeGoogleOAuth:
    """Google's OAuth endpoints for registered `clients`; `user` is who signs in when a browser would ask."""

    user: str = "ana@corp.example"
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    key: SigningKey = field(default_factory=lambda: SigningKey("fake-google-oauth"))
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    tokeninfo_calls: int = 0
    tokeninfo_status: int | None = None  # answer token-info with this status instead (an outage, Google pacing us)
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (method, path, parameters)
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # --- what tests use directly ---------------------------------------------------------------------------------
    def register(self, client_id: str, redirect_uris: list[str], client_secret: str | None = None) -> OAuthClient:
        client = OAuthClient(client_id, client_secret, redirect_uris)
        self.clients[client_id] = client
        return client

    @property
    def issuer(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def endpoint_env(self, client_id: str) -> dict[str, str]:
        """The settings of an endpoint in `google-oauth` mode for `client_id` that trusts this fake as Google."""
        return {
            "IMAGEGEN_OAUTH_CLIENT_ID": client_id,
            "IMAGEGEN_OAUTH_AUTHORIZATION_SERVER": self.issuer,
            "IMAGEGEN_OAUTH_TOKENINFO_URL": f"{self.issuer}/tokeninfo",
            "IMAGEGEN_IAM_CERTS_URL": f"{self.issuer}/oauth2/v1/certs",
            "IMAGEGEN_IAM_ISSUERS": self.issuer,
        }

    def mint_access_token(
        self, client_id: str, email: str, *, expires_in: int = 3599, email_verified: bool = True
    ) -> str:
        """An access token as if `email` had signed in to `client_id` (for tokens no test flow produced)."""
        token = "ya29.fake-" + secrets.token_urlsafe(48)
        scope = f"openid {EMAIL_SCOPE}"
        with self._lock:
            self.access_tokens[token] = AccessToken(
                client_id, email, int(time.time()) + expires_in, scope, email_verified
            )
        return token

    def id_token(self, client_id: str, email: str, *, lifetime: int = 3600, **extra: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "azp": client_id,
            "aud": client_id,
            "sub": str(int(hashlib.sha256(email.encode()).hexdigest()[:15], 16)),
            "email": email,
            "email_verified": True,
            "at_hash": _b64url(secrets.token_bytes(16)),
            "iat": now,
            "exp": now + lifetime,
        }
        hosted = _hosted_domain(email)
        if hosted:
            claims["hd"] = hosted
        claims.update(extra)
        return self.key.sign(claims)

    def expire(self, token: str) -> None:
        """Google's view of `token` after it expired or was revoked: token-info refuses it."""
        with self._lock:
            self.access_tokens.pop(token, None)

    # --- the endpoints --------------------------------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
            "device_authorization_endpoint": f"{base}/device/code",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/v1/userinfo",
            "revocation_endpoint": f"{base}/revoke",
            "jwks_uri": f"{base}/oauth2/v3/certs",
            "response_types_supported": [
                "code",
                "token",
                "id_token",
                "code token",
                "code id_token",
                "token id_token",
                "code token id_token",
                "none",
            ],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": [
                "aud",
                "email",
                "email_verified",
                "exp",
                "family_name",
                "given_name",
                "iat",
                "iss",
                "name",
                "picture",
                "sub",
            ],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
            ],
        }

    def authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """(status, headers, body) of the consent screen, which approves at once for `user`."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return 401, {}, {"error": "invalid_client", "error_description": "The OAuth client was not found."}
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            # Google shows "Error 400: redirect_uri_mismatch" to the user; it never redirects to an unknown URI.
            return 400, {}, {"error": "redirect_uri_mismatch"}
        problem = None
        if params.get("response_type") != "code":
            problem = "unsupported_response_type"
        elif params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            problem = "invalid_request"  # this fake insists on S256 (Google also takes plain)
        elif "openid" not in params.get("scope", "").split() or "email" not in params.get("scope", "").split():
            problem = "invalid_scope"
        query: dict[str, str] = {}
        if problem is not None:
            query = {"error": problem}
        else:
            code = "4/0Afake" + secrets.token_urlsafe(32)
            with self._lock:
                self._grants[code] = _Grant(
                    client.client_id, redirect_uri, params["code_challenge"], f"openid {EMAIL_SCOPE}", self.user
                )
            query = {"code": code, "scope": f"email openid {EMAIL_SCOPE}", "authuser": "0", "prompt": "consent"}
        if "state" in params:
            query["state"] = params["state"]
        return 302, {"Location": f"{redirect_uri}?{urlencode(query)}"}, None

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, Any]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            from urllib.parse import unquote

            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = (unquote(part) for part in decoded.partition(":"))
        client = self.clients.get(client_id or "")
        if client is None or (client.client_secret is not None and secret != client.client_secret):
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # a code works once
        verifier = form.get("code_verifier", "")
        expected = _b64url(hashlib.sha256(verifier.encode("ascii")).digest()) if verifier else None
        if (
            grant is None
            or grant.client_id != client.client_id
            or grant.redirect_uri != form.get("redirect_uri")
            or expected != grant.challenge
        ):
            return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
        access = "ya29.fake-" + secrets.token_urlsafe(48)
        with self._lock:
            self.access_tokens[access] = AccessToken(
                client.client_id, grant.email, int(time.time()) + 3599, grant.scope
            )
        return 200, {
            "access_token": access,
            "expires_in": 3599,
            "scope": grant.scope,
            "token_type": "Bearer",
            "id_token": self.id_token(client.client_id, grant.email),
        }

    def tokeninfo(self, params: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            self.tokeninfo_calls += 1
            record = self.access_tokens.get(params.get("access_token", ""))
        now = int(time.time())
        if self.tokeninfo_status is not None:
            return self.tokeninfo_status, {
                "error": "rate_limit_exceeded" if self.tokeninfo_status == 429 else "backend"
            }
        if record is None or record.expires_at <= now:
            return 400, {"error": "invalid_token", "error_description": "Invalid Value"}
        info = {
            "azp": record.client_id,
            "aud": record.client_id,
            "sub": str(int(hashlib.sha256(record.email.encode()).hexdigest()[:15], 16)),
            "scope": record.scope,
            "exp": str(record.expires_at),
            "expires_in": str(record.expires_at - now),
            "email": record.email,
            "email_verified": "true" if record.email_verified else "false",
            "access_type": "online",
        }
        return 200, info

    def certs_v1(self) -> dict[str, str]:
        return {self.key.kid: self.key.pem}

    def certs_v3(self) -> dict[str, Any]:
        numbers = self.key.private_key.public_key().public_numbers()

        def b64int(value: int) -> str:
            return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.key.kid, "n": b64int(numbers.n)}
        jwk["e"] = b64int(numbers.e)
        return {"keys": [jwk]}

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeGoogleOAuth]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if body is not None:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                fake.log.append(("GET", parts.path, params))
                if parts.path == "/.well-known/openid-configuration":
                    self._send(200, fake.discovery())
                elif parts.path == "/o/oauth2/v2/auth":
                    status, headers, body = fake.authorize(params)
                    self._send(status, body, headers)
                elif parts.path == "/tokeninfo":
                    self._send(*fake.tokeninfo(params))
                elif parts.path == "/oauth2/v1/certs":
                    self._send(200, fake.certs_v1(), {"Cache-Control": "public, max-age=3600"})
                elif parts.path == "/oauth2/v3/certs":
                    self._send(200, fake.certs_v3(), {"Cache-Control": "public, max-age=3600"})
                else:  # Google serves no /.well-known/oauth-authorization-server and no registration endpoint
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                fake.log.append(("POST", parts.path, {k: v for k, v in form.items() if k != "client_secret"}))
                if parts.path == "/token":
                    self._send(*fake.token(form, self.headers.get("Authorization")))
                elif parts.path == "/tokeninfo":
                    # Google's client libraries POST with the token in the Authorization header.
                    scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
                    if scheme.lower() == "bearer" and token:
                        form.setdefault("access_token", token)
                    self._send(*fake.tokeninfo(form))
                else:
                    self._send(404, {"error": "not_found"})

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)


def _hosted_domain(email: str) -> str | None:
    """Workspace accounts carry `hd`; consumer (gmail.com) accounts do not."""
    domain = email.rpartition("@")[2]
    return None if domain == "gmail.com" else domain
