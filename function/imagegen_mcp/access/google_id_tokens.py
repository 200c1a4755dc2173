"""Google-signed ID tokens and Google principals: signature (google-auth, cached certs), claims, allowlists."""

from __future__ import annotations

import binascii
import logging
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from .base import AuthenticationFailed
from .google_certs import GoogleCerts

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

CLOCK_SKEW_SECONDS = 60

# google-auth raises these (MalformedError/InvalidValue are ValueErrors) for a token it cannot read or accept;
# TypeError comes from its lifetime arithmetic on a signed token whose iat/exp are not numbers, RecursionError
# from json on a deeply nested segment (8 KB of "[" fits in a token).
DECODE_ERRORS = (ValueError, TypeError, RecursionError, binascii.Error)


def decode(token: str, **options: Any) -> Mapping[str, Any]:
    from google.auth import jwt

    claims: Mapping[str, Any] = jwt.decode(token, **options)  # type: ignore[no-untyped-call]
    return claims


def header_of(token: str) -> Mapping[str, Any]:
    from google.auth import jwt

    header: Mapping[str, Any] = jwt.decode_header(token)  # type: ignore[no-untyped-call]
    return header


def number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def is_true(value: object) -> bool:
    """JSON true; Google has also sent the string "true" (never 1, which `in (True, "true")` would let through)."""
    return value is True or value == "true"


def reject(reason: str, what: str = "ID token") -> AuthenticationFailed:
    # Only our reason: google-auth's messages quote the token.
    log.info("%s rejected", what, extra={"fields": {"reason": reason}})
    return AuthenticationFailed(token_presented=True)


class PrincipalPolicy:
    """IMAGEGEN_IAM_ALLOWED_PRINCIPALS / _DOMAINS: which verified Google emails may call (both empty = any)."""

    def __init__(self, principals: Collection[str], domains: Collection[str]) -> None:
        self._principals = {p.lower() for p in principals}
        self._domains = {d.lower().lstrip("@") for d in domains}

    @classmethod
    def from_settings(cls, settings: Settings) -> PrincipalPolicy:
        return cls(settings.iam_allowed_principals, settings.iam_allowed_domains)

    def check(self, email: str, hosted_domain: object) -> str:
        """`email` when the allowlists admit it (its domain, or the Workspace `hd`); else a logged refusal."""
        if self._principals or self._domains:
            domain = email.rpartition("@")[2].lower()
            allowed = (
                email.lower() in self._principals
                or domain in self._domains
                or (isinstance(hosted_domain, str) and hosted_domain.lower() in self._domains)
            )
            if not allowed:
                log.info("Google principal not allowed", extra={"fields": {"caller": email}})
                raise AuthenticationFailed(token_presented=True)
        return email


class GoogleIdTokens:
    """Verifies Google ID tokens for a set of audiences and applies the claim policy (issuer, lifetime, email)."""

    def __init__(self, *, issuers: Collection[str], policy: PrincipalPolicy, certs: GoogleCerts) -> None:
        self._issuers = frozenset(issuers)
        self._policy = policy
        self._certs = certs

    @staticmethod
    def header(token: str) -> Mapping[str, Any]:
        """The JOSE header of an RS256 token (what Google signs ID tokens with); else a refusal."""
        try:
            header = header_of(token)
        except DECODE_ERRORS:
            raise reject("malformed") from None
        if header.get("alg") != "RS256":
            raise reject("algorithm")
        return header

    async def verified_claims(self, token: str, audiences: Collection[str]) -> Mapping[str, Any]:
        """The claims of an RS256 token signed by a current Google key and naming one of `audiences`."""
        kid = self.header(token).get("kid")
        pems = await self._certs.for_kid(kid) if isinstance(kid, str) else {}
        if not isinstance(kid, str) or kid not in pems:
            raise reject("unknown key id")
        try:
            return decode(
                token,
                certs={kid: pems[kid]},
                audience=sorted(audiences),
                clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
            )
        except DECODE_ERRORS:
            raise reject("signature, lifetime or audience") from None

    def principal(self, claims: Mapping[str, Any], audiences: Collection[str] | None) -> str:
        """Our policy, for verified tokens and those Cloud Run verified; every claim is type-checked first.

        `audiences` None skips the audience (only `iam` without verification and without a configured one).
        """
        now = time.time()
        issuer, audience = claims.get("iss"), claims.get("aud")
        if not isinstance(issuer, str) or issuer not in self._issuers:
            raise reject("issuer")
        if audiences is not None and (not isinstance(audience, str) or audience not in audiences):
            raise reject("audience")
        exp, iat = number(claims.get("exp")), number(claims.get("iat"))
        if exp is None or now > exp + CLOCK_SKEW_SECONDS:
            raise reject("expired")
        if iat is None or iat > now + CLOCK_SKEW_SECONDS:
            raise reject("issued in the future")
        email = claims.get("email")
        if not isinstance(email, str) or not email or not is_true(claims.get("email_verified")):
            raise reject("no verified email")
        return self._policy.check(email, claims.get("hd"))

    async def aclose(self) -> None:
        await self._certs.aclose()
