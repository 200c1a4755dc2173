"""Which authenticator `IMAGEGEN_AUTH` selects (none / bearer / iam / google-oauth, or a list), and `serve`'s check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ErrorCode, ImageGenError
from .hosts import is_loopback_host

if TYPE_CHECKING:
    from ..config import Settings
    from ..secrets.base import SecretSource
    from .base import Authenticator


# Each mode's module is imported only when the mode is on: the token-verifying ones cost startup time for nothing
# on an endpoint that does not use them.
def _one(mode: str, settings: Settings, secrets: SecretSource) -> Authenticator:
    if mode == "bearer":
        from .bearer import BearerAuthenticator

        return BearerAuthenticator(secrets)
    if mode == "iam":
        from .iam import IamAuthenticator

        return IamAuthenticator(settings)
    if mode == "google-oauth":
        from .google_oauth import GoogleOAuthAuthenticator

        return GoogleOAuthAuthenticator(settings)
    from .anonymous import NoAuthenticator

    return NoAuthenticator(settings)


def build_authenticator(settings: Settings, secrets: SecretSource) -> Authenticator:
    """The authenticator `settings.auth` asks for; raises `misconfigured` when its settings cannot work."""
    members = [_one(mode, settings, secrets) for mode in settings.auth]
    if len(members) == 1:
        return members[0]
    from .combined import AnyOfAuthenticator

    return AnyOfAuthenticator(members)


def check_startup(settings: Settings, bind_host: str) -> None:
    """Refuse to serve with settings that would expose the endpoint (called by `imagegen-mcp serve`)."""
    if settings.auth == ["none"] and not settings.allow_unauthenticated and not is_loopback_host(bind_host):
        raise ImageGenError(
            ErrorCode.MISCONFIGURED,
            f"refusing to listen on {bind_host} without authentication: IMAGEGEN_AUTH=none is for loopback "
            "(127.0.0.1 / ::1 / localhost). Set IMAGEGEN_AUTH=bearer, iam or google-oauth (or a list of them), or "
            "IMAGEGEN_ALLOW_UNAUTHENTICATED=true if something in front of this server already authenticates callers.",
        )
    if "iam" in settings.auth:
        from .iam import check_iam_settings

        check_iam_settings(settings)
    if "google-oauth" in settings.auth:
        from .google_oauth import check_oauth_settings

        check_oauth_settings(settings)
