"""What every authenticator shares: the Authenticator protocol, the 401 challenge, the RFC 9728 metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..errors import ErrorCode, ImageGenError
from .caller import Caller
from .keys import KEY_PREFIX

REALM = "imagegen-mcp"
MAX_TOKEN_CHARS = 8192


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


class Authenticator(Protocol):
    """Decides who a request to /mcp is; `client_host`/`server_host` are the socket's peer and local address."""

    @property
    def mode(self) -> str: ...

    @property
    def authorization_servers(self) -> tuple[str, ...]: ...

    @property
    def scopes(self) -> tuple[str, ...]: ...

    def recognizes(self, headers: Mapping[str, str]) -> bool:
        """Whether the request carries a credential of this mode's kind (a combination asks only those that do)."""
        ...

    async def authenticate(
        self, headers: Mapping[str, str], *, client_host: str | None, server_host: str | None
    ) -> Caller: ...

    def www_authenticate(self, resource_metadata_url: str, error: ImageGenError | None = None) -> str: ...

    def protected_resource_metadata(self, resource_url: str) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class BaseAuthenticator:
    """The challenge and metadata document every mode answers with; subclasses set the attributes."""

    mode: str
    authorization_servers: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()

    def recognizes(self, headers: Mapping[str, str]) -> bool:
        return True

    def www_authenticate(self, resource_metadata_url: str, error: ImageGenError | None = None) -> str:
        """RFC 6750 / RFC 9728 challenge; `error` is the failure being answered, when there is one."""
        value = f'Bearer realm="{REALM}", resource_metadata="{resource_metadata_url}"'
        if self.scopes:
            value += f', scope="{" ".join(self.scopes)}"'
        if isinstance(error, AuthenticationFailed) and error.token_presented:
            value += ', error="invalid_token", error_description="the credential is invalid, expired or not for '
            value += 'this server: obtain a new one"'
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


def is_api_key(token: str) -> bool:
    """Whether `token` has the shape of this server's own API keys (never sent to anyone else for checking)."""
    return token.startswith(KEY_PREFIX)


def is_jwt(token: str) -> bool:
    """Whether `token` has the three-segment shape of a compact JWS (an ID token), not an opaque access token."""
    return token.count(".") == 2 and all(token.split("."))


def bearer_token(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, None when absent or of another scheme."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS or " " in token:
        return None
    return token
