"""google-oauth mode: what MCP clients send after signing in with Google (access or ID token for our OAuth client)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ImageGenError
from .base import AuthenticationFailed, BaseAuthenticator, bearer_token, is_api_key, is_jwt
from .caller import Caller
from .google_certs import GoogleCerts
from .google_id_tokens import GoogleIdTokens, PrincipalPolicy, is_true, reject
from .google_tokeninfo import GoogleTokenInfo
from .token_verdicts import VerdictCache

if TYPE_CHECKING:
    from ..config import Settings

OAUTH_SCOPES = ("openid", "email")
# How long Google's "not a valid token" (or our refusal of one it vouched for) is remembered: stops a client that
# retries a dead token from costing a token-info call each time, short enough not to matter for anything else.
REFUSAL_SECONDS = 60.0


def _epoch(value: object) -> float | None:
    """A token-info time: Google sends numbers as decimal strings ("1700000000"); JSON numbers are taken too."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def check_oauth_settings(settings: Settings) -> str:
    if not settings.oauth_client_id:
        raise ImageGenError(
            ErrorCode.MISCONFIGURED,
            "IMAGEGEN_AUTH=google-oauth needs IMAGEGEN_OAUTH_CLIENT_ID, the OAuth client registered in Google Cloud",
        )
    return settings.oauth_client_id


class GoogleOAuthAuthenticator(BaseAuthenticator):
    """Google access tokens (token-info, cached by hash) and ID tokens (signature) issued to IMAGEGEN_OAUTH_CLIENT_ID.

    The server needs only the client id: Google vouches for the token, the client id says it was issued to the
    client the operator registered for this service (a token another application obtained is refused, never
    passed on). The client secret stays with the MCP clients that need one.
    """

    mode = "google-oauth"
    scopes = OAUTH_SCOPES

    def __init__(
        self, settings: Settings, *, certs: GoogleCerts | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._client_id = check_oauth_settings(settings)
        self.authorization_servers = (settings.oauth_authorization_server,)
        self._policy = PrincipalPolicy.from_settings(settings)
        self._id_tokens = GoogleIdTokens(
            issuers=settings.iam_issuers, policy=self._policy, certs=certs or GoogleCerts(settings.iam_certs_url)
        )
        self._tokeninfo = GoogleTokenInfo(settings.oauth_tokeninfo_url)
        self._verdicts: VerdictCache[str | None] = VerdictCache(settings.oauth_cache_size, clock=clock)
        self._clock = clock
        # Never past the token's own expiry; sooner (IMAGEGEN_OAUTH_VERDICT_SECONDS) so that a revocation at Google
        # takes effect here without waiting out the token's hour.
        self._verdict_seconds = settings.oauth_verdict_seconds

    def recognizes(self, headers: Mapping[str, str]) -> bool:
        token = bearer_token(headers.get("authorization"))
        return token is not None and not is_api_key(token)

    async def authenticate(
        self, headers: Mapping[str, str], *, client_host: str | None, server_host: str | None
    ) -> Caller:
        token = bearer_token(headers.get("authorization"))
        if token is None:
            raise AuthenticationFailed(token_presented="authorization" in headers)
        if is_api_key(token):  # one of our own keys: never shown to Google
            raise AuthenticationFailed(token_presented=True)
        audiences = {self._client_id}
        if is_jwt(token):
            claims = await self._id_tokens.verified_claims(token, audiences)
            return Caller(self._id_tokens.principal(claims, audiences), "google")
        email = await self._verdicts.get(token, lambda: self._decide(token))
        if email is None:
            raise AuthenticationFailed(token_presented=True)
        return Caller(email, "google")

    async def _decide(self, token: str) -> tuple[str | None, float]:
        """(email, until when) for an access token Google vouches for and we accept; (None, soon) otherwise."""
        info = await self._tokeninfo.lookup(token)
        now = self._clock()
        if info is None:
            reject("Google: not a valid token", "access token")
            return None, now + REFUSAL_SECONDS
        try:
            email, expires = self._principal(info, now)
        except AuthenticationFailed:
            return None, now + REFUSAL_SECONDS
        return email, expires

    def _principal(self, info: Mapping[str, Any], now: float) -> tuple[str, float]:
        if self._client_id not in (info.get("aud"), info.get("azp")):
            raise reject("issued to another client", "access token")
        expires = _epoch(info.get("exp"))
        if expires is None:
            remaining = _epoch(info.get("expires_in"))
            expires = None if remaining is None else now + remaining
        if expires is None or now >= expires:
            raise reject("expired", "access token")
        email = info.get("email")
        if not isinstance(email, str) or not email or not is_true(info.get("email_verified")):
            raise reject("no verified email (the `email` scope was not granted)", "access token")
        return self._policy.check(email, info.get("hd")), min(expires, now + self._verdict_seconds)

    async def aclose(self) -> None:
        await self._tokeninfo.aclose()
        await self._id_tokens.aclose()
