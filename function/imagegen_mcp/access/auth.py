"""Who may call /mcp: nobody-but-loopback (`none`), bearer API keys (`bearer`), Google ID tokens (`iam`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from ..errors import ErrorCode, ImageGenError
from ..secrets.base import API_KEYS
from .hosts import is_loopback_host
from .keys import KeyRecord, KeyRing, key_id_of, parse_key_file

if TYPE_CHECKING:
    import httpx2
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    from ..config import Settings
    from ..secrets.base import SecretSource

log = logging.getLogger(__name__)

REALM = "imagegen-mcp"
GOOGLE_ISSUER = "https://accounts.google.com"
# Cloud Run IAM replaces the signature of the ID token it verified with this marker before forwarding.
SIGNATURE_REMOVED = "SIGNATURE_REMOVED_BY_GOOGLE"
CLOCK_SKEW_SECONDS = 60
MAX_TOKEN_CHARS = 8192
CERTS_MIN_REFRESH_SECONDS = 30.0
CERTS_DEFAULT_MAX_AGE = 300.0


@dataclass(frozen=True)
class Caller:
    """An authenticated caller; `id` (key id, email or "anonymous") goes into logs and object metadata."""

    id: str
    kind: Literal["none", "bearer", "iam"]
    label: str | None = None
    allowed_models: frozenset[str] | None = None  # None = all

    def may_use(self, model_id: str) -> bool:
        if self.allowed_models is None:
            return True
        return any(
            model_id == allowed or (allowed.endswith("/*") and model_id.startswith(allowed[:-1]))
            for allowed in self.allowed_models
        )


ANONYMOUS = Caller("anonymous", "none")


class AuthenticationFailed(ImageGenError):
    """`unauthenticated` with a message that never says which part of a credential was wrong."""

    def __init__(self, *, token_presented: bool) -> None:
        message = (
            "invalid or expired credentials"
            if token_presented
            else "authentication required: send `Authorization: Bearer <token>`"
        )
        super().__init__(ErrorCode.UNAUTHENTICATED, message)
        self.token_presented = token_presented


@runtime_checkable
class Authenticator(Protocol):
    mode: str

    async def authenticate(
        self, headers: Mapping[str, str], *, client_host: str | None, server_host: str | None
    ) -> Caller: ...

    def www_authenticate(self, resource_metadata_url: str, error: ImageGenError | None = None) -> str: ...

    def protected_resource_metadata(self, resource_url: str) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class _BaseAuthenticator:
    mode: ClassVar[str]
    authorization_servers: ClassVar[tuple[str, ...]] = ()
    scopes: ClassVar[tuple[str, ...]] = ()

    def www_authenticate(self, resource_metadata_url: str, error: ImageGenError | None = None) -> str:
        """RFC 6750 / RFC 9728 challenge; `error` is the failure being answered, when there is one."""
        value = f'Bearer realm="{REALM}", resource_metadata="{resource_metadata_url}"'
        if isinstance(error, AuthenticationFailed) and error.token_presented:
            value += ', error="invalid_token"'
        return value

    def protected_resource_metadata(self, resource_url: str) -> dict[str, Any]:
        document: dict[str, Any] = {"resource": resource_url}
        if self.authorization_servers:
            document["authorization_servers"] = list(self.authorization_servers)
        document["bearer_methods_supported"] = ["header"]
        if self.scopes:
            document["scopes_supported"] = list(self.scopes)
        document["resource_name"] = REALM
        return document

    async def aclose(self) -> None:
        return None


def _bearer_token(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, None when absent or of another scheme."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS or " " in token:
        return None
    return token


# --- none ------------------------------------------------------------------------------------------------------------


_NONE_REFUSED = (
    "IMAGEGEN_AUTH=none serves loopback only (127.0.0.1/::1, from this machine), and this {what} is not. "
    "Use IMAGEGEN_AUTH=bearer or iam, or set IMAGEGEN_ALLOW_UNAUTHENTICATED=true to accept the risk "
    "(anyone who reaches the endpoint spends your model budget)."
)


class NoAuthenticator(_BaseAuthenticator):
    """Everyone is `anonymous`, but only over loopback unless the operator explicitly allows more."""

    mode = "none"

    def __init__(self, settings: Settings) -> None:
        self._allow_remote = settings.allow_unauthenticated

    async def authenticate(
        self, headers: Mapping[str, str], *, client_host: str | None, server_host: str | None
    ) -> Caller:
        if not self._allow_remote:
            if not is_loopback_host(server_host):
                raise ImageGenError(ErrorCode.MISCONFIGURED, _NONE_REFUSED.format(what="listening address"))
            if not is_loopback_host(client_host):
                raise ImageGenError(ErrorCode.MISCONFIGURED, _NONE_REFUSED.format(what="client"))
        return ANONYMOUS


# --- bearer ----------------------------------------------------------------------------------------------------------


class BearerAuthenticator(_BaseAuthenticator):
    """API keys from `Authorization: Bearer igm_...`, checked against SHA-256 records in the API-keys secret."""

    mode = "bearer"

    def __init__(self, secrets: SecretSource, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._secrets = secrets
        self._now = now
        self._raw: str | None = None
        self._ring = KeyRing(())

    async def _keyring(self) -> KeyRing:
        # The SecretSource caches with a TTL, so a new secret version (rotation) arrives without a redeploy.
        raw = await self._secrets.get(API_KEYS)
        if raw is None:
            raise ImageGenError(
                ErrorCode.MISCONFIGURED,
                f"IMAGEGEN_AUTH=bearer needs the API-key records in {self._secrets.describe(API_KEYS)} "
                "(create keys with `imagegen-mcp keys create`)",
            )
        if raw != self._raw:
            self._ring = KeyRing(parse_key_file(raw))
            self._raw = raw
        return self._ring

    async def key_record(self, key_id: str) -> KeyRecord | None:
        """The current record of key `key_id` (its quotas), from the same cached secret the keys are checked with."""
        return next((r for r in (await self._keyring()).records if r.id == key_id), None)

    async def authenticate(
        self, headers: Mapping[str, str], *, client_host: str | None, server_host: str | None
    ) -> Caller:
        presented = "authorization" in headers
        token = _bearer_token(headers.get("authorization"))
        if token is None:
            raise AuthenticationFailed(token_presented=presented)
        ring = await self._keyring()
        record = ring.match(token)
        if record is None or not record.active(self._now()):
            reason = "unknown" if record is None else ("disabled" if record.disabled else "expired")
            key_id = record.id if record is not None else key_id_of(token)
            log.info("bearer key rejected", extra={"fields": {"reason": reason, "key_id": key_id}})
            raise AuthenticationFailed(token_presented=True)
        return Caller(record.id, "bearer", record.label, record.models)


# --- iam -------------------------------------------------------------------------------------------------------------


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class _Jwt:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes | None  # None: removed by Cloud Run after it verified the token


def _parse_jwt(token: str) -> _Jwt:
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT_RE.match(p) for p in parts[:2]):
        raise ValueError("not a JWS compact serialization")
    header = json.loads(_b64url(parts[0]))
    claims = json.loads(_b64url(parts[1]))
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("header or claims are not objects")
    signature = None if parts[2] == SIGNATURE_REMOVED else _b64url(parts[2])
    return _Jwt(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def _max_age(cache_control: str | None) -> float | None:
    match = re.search(r"max-age=(\d+)", cache_control or "")
    return float(match.group(1)) if match else None


class GoogleCerts:
    """Google's ID-token signing certificates ({kid: PEM}), cached per Cache-Control and refreshed on unknown kids."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_refresh_seconds: float = CERTS_MIN_REFRESH_SECONDS,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._url = url
        self._clock = clock
        self._min_refresh = min_refresh_seconds
        self._timeout = timeout_seconds
        self._keys: dict[str, RSAPublicKey] = {}
        self._expires = float("-inf")
        self._fetched = float("-inf")  # last attempt, successful or not (paces unknown-kid refreshes)
        self._succeeded = float("-inf")
        self._generation = 0
        self._lock: asyncio.Lock | None = None
        self._client: httpx2.AsyncClient | None = None
        self.fetches = 0

    async def key(self, kid: str) -> RSAPublicKey | None:
        now = self._clock()
        if now >= self._expires or (kid not in self._keys and now - self._fetched >= self._min_refresh):
            await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        generation = self._generation
        async with self._lock:
            if self._generation != generation:  # another request refreshed while this one waited
                return
            self._generation += 1
            self._fetched = self._clock()
            try:
                keys, max_age = await self._fetch()
            except Exception as exc:
                if self._keys and self._fetched - self._succeeded < 24 * 3600:
                    # Google rotates keys over days: a stale set beats refusing everyone during a blip.
                    log.warning("could not refresh Google certs; keeping the cached set", exc_info=exc)
                    self._expires = self._fetched + self._min_refresh
                    return
                raise ImageGenError(
                    ErrorCode.UPSTREAM_ERROR, "could not fetch Google's ID-token signing certificates"
                ) from exc
            self._keys = keys
            self._succeeded = self._fetched
            self._expires = self._fetched + (max_age if max_age is not None else CERTS_DEFAULT_MAX_AGE)
            self.fetches += 1

    async def _fetch(self) -> tuple[dict[str, RSAPublicKey], float | None]:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

        if self._client is None:
            import httpx2

            self._client = httpx2.AsyncClient(timeout=self._timeout, follow_redirects=False, trust_env=False)
        response = await self._client.get(self._url)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("certs document is not an object")
        keys: dict[str, RSAPublicKey] = {}
        for kid, pem in document.items():
            public_key = x509.load_pem_x509_certificate(str(pem).encode("ascii")).public_key()
            if isinstance(public_key, RSAPublicKey):
                keys[str(kid)] = public_key
        return keys, _max_age(response.headers.get("cache-control"))

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _iam_audiences(settings: Settings) -> list[str]:
    if settings.iam_audience:
        return list(settings.iam_audience)
    if settings.public_url:
        return [settings.public_url, settings.public_url + "/"]
    return []


def _check_iam_settings(settings: Settings) -> None:
    if settings.iam_verify_token and not _iam_audiences(settings):
        raise ImageGenError(
            ErrorCode.MISCONFIGURED,
            "IMAGEGEN_AUTH=iam verifies the ID token's audience: set IMAGEGEN_PUBLIC_URL (the service URL) "
            "or IMAGEGEN_IAM_AUDIENCE",
        )


class IamAuthenticator(_BaseAuthenticator):
    """Google-signed ID tokens (Cloud Run IAM): signature, issuer, audience, lifetime, verified email, allowlists."""

    mode = "iam"
    authorization_servers = (GOOGLE_ISSUER,)
    scopes = ("openid", "email")

    def __init__(
        self,
        settings: Settings,
        *,
        certs: GoogleCerts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_iam_settings(settings)
        self._verify = settings.iam_verify_token
        self._trust_stripped = settings.iam_cloud_run_enforced
        self._audiences = set(_iam_audiences(settings))
        self._issuers = set(settings.iam_issuers)
        self._principals = {p.lower() for p in settings.iam_allowed_principals}
        self._domains = {d.lower().lstrip("@") for d in settings.iam_allowed_domains}
        self._certs = certs or GoogleCerts(settings.iam_certs_url)
        self._clock = clock

    def _reject(self, reason: str) -> AuthenticationFailed:
        log.info("ID token rejected", extra={"fields": {"reason": reason}})
        return AuthenticationFailed(token_presented=True)

    async def authenticate(
        self, headers: Mapping[str, str], *, client_host: str | None, server_host: str | None
    ) -> Caller:
        # Cloud Run IAM reads X-Serverless-Authorization first, leaving Authorization to the app; so do we.
        source = "x-serverless-authorization" if "x-serverless-authorization" in headers else "authorization"
        token = _bearer_token(headers.get(source))
        if token is None:
            raise AuthenticationFailed(token_presented=source in headers)
        try:
            jwt = _parse_jwt(token)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise self._reject("malformed") from None
        if jwt.header.get("alg") != "RS256":
            raise self._reject("algorithm")
        if jwt.signature is None:
            if self._verify and not self._trust_stripped:
                raise ImageGenError(
                    ErrorCode.MISCONFIGURED,
                    "Cloud Run IAM verified this ID token and removed its signature, so the app cannot verify it "
                    "again: set IMAGEGEN_IAM_CLOUD_RUN_ENFORCED=true (service deployed with "
                    "--no-allow-unauthenticated), or IMAGEGEN_IAM_VERIFY_TOKEN=false",
                )
        elif self._verify:
            await self._check_signature(jwt)
        email = self._check_claims(jwt.claims)
        return Caller(email, "iam")

    async def _check_signature(self, jwt: _Jwt) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        kid = jwt.header.get("kid")
        public_key = await self._certs.key(kid) if isinstance(kid, str) else None
        if public_key is None:
            raise self._reject("unknown key id")
        assert jwt.signature is not None
        try:
            public_key.verify(jwt.signature, jwt.signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise self._reject("signature") from None

    def _check_claims(self, claims: dict[str, Any]) -> str:
        now = self._clock()
        if claims.get("iss") not in self._issuers:
            raise self._reject("issuer")
        if self._audiences and claims.get("aud") not in self._audiences:
            raise self._reject("audience")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or isinstance(exp, bool) or now > exp + CLOCK_SKEW_SECONDS:
            raise self._reject("expired")
        if isinstance(iat, int | float) and not isinstance(iat, bool) and iat > now + CLOCK_SKEW_SECONDS:
            raise self._reject("issued in the future")
        email = claims.get("email")
        if not isinstance(email, str) or not email or claims.get("email_verified") not in (True, "true"):
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


# --- wiring ----------------------------------------------------------------------------------------------------------


def build_authenticator(settings: Settings, secrets: SecretSource) -> Authenticator:
    """The authenticator `settings.auth` asks for; raises `misconfigured` when its settings cannot work."""
    if settings.auth == "bearer":
        return BearerAuthenticator(secrets)
    if settings.auth == "iam":
        return IamAuthenticator(settings)
    return NoAuthenticator(settings)


def check_startup(settings: Settings, bind_host: str) -> None:
    """Refuse to serve with settings that would expose the endpoint (called by `imagegen-mcp serve`)."""
    if settings.auth == "none" and not settings.allow_unauthenticated and not is_loopback_host(bind_host):
        raise ImageGenError(
            ErrorCode.MISCONFIGURED,
            f"refusing to listen on {bind_host} without authentication: IMAGEGEN_AUTH=none is for loopback "
            "(127.0.0.1 / ::1 / localhost). Set IMAGEGEN_AUTH=bearer or iam, or IMAGEGEN_ALLOW_UNAUTHENTICATED=true "
            "if something in front of this server already authenticates callers.",
        )
    if settings.auth == "iam":
        _check_iam_settings(settings)
