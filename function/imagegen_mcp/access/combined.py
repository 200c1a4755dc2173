"""AnyOfAuthenticator: IMAGEGEN_AUTH=google-oauth,bearer (any listed mode may accept), one challenge, one document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from .base import AuthenticationFailed, Authenticator, BaseAuthenticator
from .caller import Caller

A = TypeVar("A")


def _union(groups: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for group in groups for item in group))


class AnyOfAuthenticator(BaseAuthenticator):
    """Asks, in the order listed, each mode that recognizes the credential; the first that accepts it wins.

    A mode only sees credentials of its kind (an API key never goes to Google's token-info endpoint), and a
    deployment problem of one mode (`misconfigured`, `upstream_error`) is reported, not hidden by another's 401.
    """

    def __init__(self, members: Sequence[Authenticator]) -> None:
        self.members = tuple(members)
        self.mode = ",".join(member.mode for member in self.members)
        self.authorization_servers = _union([member.authorization_servers for member in self.members])
        self.scopes = _union([member.scopes for member in self.members])

    def recognizes(self, headers: Mapping[str, str]) -> bool:
        return any(member.recognizes(headers) for member in self.members)

    async def authenticate(
        self, headers: Mapping[str, str], *, client_host: str | None, server_host: str | None
    ) -> Caller:
        presented = "authorization" in headers or "x-serverless-authorization" in headers
        for member in self.members:
            if not member.recognizes(headers):
                continue
            try:
                return await member.authenticate(headers, client_host=client_host, server_host=server_host)
            except AuthenticationFailed as failure:
                presented = presented or failure.token_presented
        raise AuthenticationFailed(token_presented=presented)

    async def aclose(self) -> None:
        for member in self.members:
            await member.aclose()


def member_of(auth: Authenticator, kind: type[A]) -> A | None:
    """`auth` itself, or the member of a combination, that is a `kind` (e.g. the bearer keys for their quotas)."""
    if isinstance(auth, kind):
        return auth
    if isinstance(auth, AnyOfAuthenticator):
        return next((member for member in auth.members if isinstance(member, kind)), None)
    return None
