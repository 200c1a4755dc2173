"""iam mode: Google ID tokens (Cloud Run IAM), verified by google-auth against cached certs, then our claim policy."""

from __future__ import annotations

import binascii
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ImageGenError
from .base import AuthenticationFailed, BaseAuthenticator, bearer_token
from .caller import Caller
from .google_certs import GoogleCerts

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

GOOGLE_ISSUER = "https://accounts.google.com"
# Cloud Run IAM replaces the signature of the ID token it verified with this marker before forwarding.
SIGNATURE_REMOVED = "SIGNATURE_REMOVED_BY_GOOGLE"
CLOCK_SKEW_SECONDS = 60
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


# google-auth raises these (MalformedError/InvalidValue are ValueErrors) for a token it cannot read or accept;
# TypeError comes from its lifetime arithmetic on a signed token whose iat/exp are not numbers, RecursionError
# from json on a deeply nested segment (8 KB of "[" fits in a token).
_DECODE_ERRORS = (ValueError, TypeError, RecursionError, binascii.Error)


def _decode(token: str, **options: Any) -> Mapping[str, Any]:
    from google.auth import jwt

    claims: Mapping[str, Any] = jwt.decode(token, **options)  # type: ignore[no-untyped-call]
    return claims


def _header(token: str) -> Mapping[str, Any]:
    from google.auth import jwt

    header: Mapping[str, Any] = jwt.decode_header(token)  # type: ignore[no-untyped-call]
    return header


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class IamAuthenticator(BaseAuthenticator):
    """Google-signed ID tokens (Cloud Run IAM): signature, issuer, audience, lifetime, verified email, allowlists."""

    mode = "iam"
    authorization_servers = (GOOGLE_ISSUER,)
    scopes = ("openid", "email")

    def __init__(self, settings: Settings, *, certs: GoogleCerts | None = None) -> None:
        check_iam_settings(settings)
        self._verify = settings.iam_verify_token
        self._trust_stripped = settings.iam_cloud_run_enforced
        self._audiences = frozenset(iam_audiences(settings))
        self._issuers = frozenset(settings.iam_issuers)
        self._principals = {p.lower() for p in settings.iam_allowed_principals}
        self._domains = {d.lower().lstrip("@") for d in settings.iam_allowed_domains}
        self._certs = certs or GoogleCerts(settings.iam_certs_url)
        if self._verify and self._trust_stripped:
            log.info(
                "iam: trusting Cloud Run IAM for ID tokens whose signature it removed (claims still checked)",
                extra={"fields": {"cloud_run_service": settings.cloud_run_service}},
            )

    def _reject(self, reason: str) -> AuthenticationFailed:
        # Only our reason: google-auth's messages quote the token.
        log.info("ID token rejected", extra={"fields": {"reason": reason}})
        return AuthenticationFailed(token_presented=True)

    async def authenticate(
        self, headers: Mapping[str, str], *, client_host: str | None, server_host: str | None
    ) -> Caller:
        # Cloud Run IAM reads X-Serverless-Authorization first, leaving Authorization to the app; so do we.
        source = "x-serverless-authorization" if "x-serverless-authorization" in headers else "authorization"
        token = bearer_token(headers.get(source))
        if token is None:
            raise AuthenticationFailed(token_presented=source in headers)
        try:
            header = _header(token)
        except _DECODE_ERRORS:
            raise self._reject("malformed") from None
        if header.get("alg") != "RS256":
            raise self._reject("algorithm")
        if token.rpartition(".")[2] == SIGNATURE_REMOVED:
            if self._verify and not self._trust_stripped:
                raise ImageGenError(
                    ErrorCode.MISCONFIGURED,
                    "Cloud Run IAM verified this ID token and removed its signature, so the app cannot verify it "
                    "again: set IMAGEGEN_IAM_CLOUD_RUN_ENFORCED=true (service deployed with "
                    "--no-allow-unauthenticated), or IMAGEGEN_IAM_VERIFY_TOKEN=false",
                )
            claims = _decode(token, verify=False)
            return Caller(self._check_claims(claims, self._audiences | {GCLOUD_CLIENT_ID}), "iam")
        if self._verify:
            claims = await self._verified_claims(token, header.get("kid"))
        else:
            claims = _decode(token, verify=False)
        return Caller(self._check_claims(claims, self._audiences), "iam")

    async def _verified_claims(self, token: str, kid: object) -> Mapping[str, Any]:
        pems = await self._certs.for_kid(kid) if isinstance(kid, str) else {}
        if not isinstance(kid, str) or kid not in pems:
            raise self._reject("unknown key id")
        try:
            return _decode(
                token,
                certs={kid: pems[kid]},
                audience=sorted(self._audiences),
                clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
            )
        except _DECODE_ERRORS:
            raise self._reject("signature, lifetime or audience") from None

    def _check_claims(self, claims: Mapping[str, Any], audiences: frozenset[str]) -> str:
        """Our policy, for verified tokens and for those Cloud Run verified: every claim is type-checked first."""
        now = time.time()
        issuer, audience = claims.get("iss"), claims.get("aud")
        if not isinstance(issuer, str) or issuer not in self._issuers:
            raise self._reject("issuer")
        if self._audiences and (not isinstance(audience, str) or audience not in audiences):
            raise self._reject("audience")
        exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
        if exp is None or now > exp + CLOCK_SKEW_SECONDS:
            raise self._reject("expired")
        if iat is None or iat > now + CLOCK_SKEW_SECONDS:
            raise self._reject("issued in the future")
        email, verified = claims.get("email"), claims.get("email_verified")
        # JSON true; Google has also sent the string "true" (never 1, which `in (True, "true")` would let through).
        if not isinstance(email, str) or not email or not (verified is True or verified == "true"):
            raise self._reject("no verified email")
        if self._principals or self._domains:
            domain = email.rpartition("@")[2].lower()
            hosted = claims.get("hd")
            allowed = (
                email.lower() in self._principals
                or domain in self._domains
                or (isinstance(hosted, str) and hosted.lower() in self._domains)
            )
            if not allowed:
                log.info("ID token principal not allowed", extra={"fields": {"caller": email}})
                raise AuthenticationFailed(token_presented=True)
        return email

    async def aclose(self) -> None:
        await self._certs.aclose()
