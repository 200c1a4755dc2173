"""What every authenticator shares: the Authenticator protocol, the 401 challenge, the RFC 9728 metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from ..errors import ErrorCode, ImageGenError
from .caller import Caller

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

    async def authenticate(
        self, headers: Mapping[str, str], *, client_host: str | None, server_host: str | None
    ) -> Caller: ...

    def www_authenticate(self, resource_metadata_url: str, error: ImageGenError | None = None) -> str: ...

    def protected_resource_metadata(self, resource_url: str) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class BaseAuthenticator:
    """The challenge and metadata document every mode answers with; subclasses set the class attributes."""

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


def bearer_token(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, None when absent or of another scheme."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS or " " in token:
        return None
    return token
