"""none mode: everyone is `anonymous`, served only to this machine unless the operator accepts the risk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import ErrorCode, ImageGenError
from .base import BaseAuthenticator
from .caller import ANONYMOUS, Caller
from .hosts import is_loopback_host

if TYPE_CHECKING:
    from ..config import Settings

_NONE_REFUSED = (
    "IMAGEGEN_AUTH=none serves loopback only (127.0.0.1/::1, from this machine), and this {what} is not. "
    "Use IMAGEGEN_AUTH=bearer, iam or google-oauth, or set IMAGEGEN_ALLOW_UNAUTHENTICATED=true to accept the risk "
    "(anyone who reaches the endpoint spends your model budget)."
)


def relayed(headers: Mapping[str, str]) -> bool:
    """Whether a proxy says it relayed this request for someone else (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`)."""
    return any(name in ("forwarded", "x-real-ip") or name.startswith("x-forwarded-") for name in headers)


class NoAuthenticator(BaseAuthenticator):
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
            # A proxy on this machine relays remote clients over loopback, and a server that trusts proxy headers
            # has already replaced the peer address with what they claim: either way the origin is unknown.
            if relayed(headers):
                what = "request (a proxy relayed it: Forwarded / X-Forwarded-* / X-Real-IP)"
                raise ImageGenError(ErrorCode.MISCONFIGURED, _NONE_REFUSED.format(what=what))
        return ANONYMOUS
