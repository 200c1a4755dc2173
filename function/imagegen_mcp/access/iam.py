"""iam mode: Google ID tokens (Cloud Run IAM), verified by google-auth against cached certs, then our claim policy."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import ErrorCode, ImageGenError
from .base import AuthenticationFailed, BaseAuthenticator, bearer_token, is_jwt
from .caller import Caller
from .google_certs import GoogleCerts
from .google_id_tokens import GoogleIdTokens, PrincipalPolicy, decode

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

GOOGLE_ISSUER = "https://accounts.google.com"
# Cloud Run IAM replaces the signature of the ID token it verified with this marker before forwarding.
SIGNATURE_REMOVED = "SIGNATURE_REMOVED_BY_GOOGLE"
# The audience of the ID token `gcloud auth print-identity-token` (and `gcloud run services proxy`) gives a user
# account: gcloud's own OAuth client. Cloud Run IAM accepts it for its invokers, so behind Cloud Run IAM the app
# does too; a token whose signature is intact (no Cloud Run in front) must name this service.
GCLOUD_CLIENT_ID = "32555940559.apps.googleusercontent.com"


def iam_audiences(settings: Settings) -> list[str]:
    if settings.iam_audience:
        return list(settings.iam_audience)
    if settings.public_url:
        return [settings.public_url, settings.public_url + "/"]
    return []


def check_iam_settings(settings: Settings) -> None:
    """Raise `misconfigured` for iam settings that cannot verify tokens or would trust unverified ones."""
    if settings.iam_verify_token and not iam_audiences(settings):
        raise ImageGenError(
            ErrorCode.MISCONFIGURED,
            "IMAGEGEN_AUTH=iam verifies the ID token's audience: set IMAGEGEN_PUBLIC_URL (the service URL) "
            "or IMAGEGEN_IAM_AUDIENCE",
        )
    if settings.iam_cloud_run_enforced and not settings.cloud_run_service:
        raise ImageGenError(
            ErrorCode.MISCONFIGURED,
            "IMAGEGEN_IAM_CLOUD_RUN_ENFORCED=true accepts ID tokens whose signature was removed, which only Cloud "
            "Run IAM may do, but K_SERVICE is not set, so this is not running on Cloud Run: unset it here "
            "(every token's signature is then verified)",
        )


class IamAuthenticator(BaseAuthenticator):
    """Google-signed ID tokens (Cloud Run IAM): signature, issuer, audience, lifetime, verified email, allowlists.

    Its metadata names no authorization server: the ID tokens it takes (gcloud, the metadata server, Cloud Run's
    proxy) come from no OAuth flow an MCP client could run, so naming Google would send OAuth-capable clients into
    a sign-in whose access token this mode then refuses. `google-oauth` is the mode for such clients.
    """

    mode = "iam"

    def __init__(self, settings: Settings, *, certs: GoogleCerts | None = None) -> None:
        check_iam_settings(settings)
        self._verify = settings.iam_verify_token
        self._trust_stripped = settings.iam_cloud_run_enforced
        self._audiences = frozenset(iam_audiences(settings))
        self._tokens = GoogleIdTokens(
            issuers=settings.iam_issuers,
            policy=PrincipalPolicy.from_settings(settings),
            certs=certs or GoogleCerts(settings.iam_certs_url),
        )
        if self._verify and self._trust_stripped:
            log.info(
                "iam: trusting Cloud Run IAM for ID tokens whose signature it removed (claims still checked)",
                extra={"fields": {"cloud_run_service": settings.cloud_run_service}},
            )

    def recognizes(self, headers: Mapping[str, str]) -> bool:
        token = bearer_token(headers.get("authorization"))
        return "x-serverless-authorization" in headers or (token is not None and is_jwt(token))

    async def authenticate(
        self, headers: Mapping[str, str], *, client_host: str | None, server_host: str | None
    ) -> Caller:
        # Cloud Run IAM reads X-Serverless-Authorization first, leaving Authorization to the app; so do we.
        source = "x-serverless-authorization" if "x-serverless-authorization" in headers else "authorization"
        token = bearer_token(headers.get(source))
        if token is None:
            raise AuthenticationFailed(token_presented=source in headers)
        self._tokens.header(token)
        audiences = self._audiences or None
        if token.rpartition(".")[2] == SIGNATURE_REMOVED:
            if self._verify and not self._trust_stripped:
                raise ImageGenError(
                    ErrorCode.MISCONFIGURED,
                    "Cloud Run IAM verified this ID token and removed its signature, so the app cannot verify it "
                    "again: set IMAGEGEN_IAM_CLOUD_RUN_ENFORCED=true (service deployed with "
                    "--no-allow-unauthenticated), or IMAGEGEN_IAM_VERIFY_TOKEN=false",
                )
            claims = decode(token, verify=False)
            stripped_audiences = None if audiences is None else audiences | {GCLOUD_CLIENT_ID}
            return Caller(self._tokens.principal(claims, stripped_audiences), "iam")
        if self._verify:
            claims = await self._tokens.verified_claims(token, self._audiences)
        else:
            claims = decode(token, verify=False)
        return Caller(self._tokens.principal(claims, audiences), "iam")

    async def aclose(self) -> None:
        await self._tokens.aclose()
