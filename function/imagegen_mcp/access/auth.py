"""Which authenticator `IMAGEGEN_AUTH` selects (none / bearer / iam / google-oauth, or a list), and `serve`'s check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ErrorCode, ImageGenError
from .anonymous import NoAuthenticator
from .base import Authenticator
from .bearer import BearerAuthenticator
from .combined import AnyOfAuthenticator
from .google_oauth import GoogleOAuthAuthenticator, check_oauth_settings
from .hosts import is_loopback_host
from .iam import IamAuthenticator, check_iam_settings

if TYPE_CHECKING:
    from ..config import Settings
    from ..secrets.base import SecretSource


def _one(mode: str, settings: Settings, secrets: SecretSource) -> Authenticator:
    if mode == "bearer":
        return BearerAuthenticator(secrets)
    if mode == "iam":
        return IamAuthenticator(settings)
    if mode == "google-oauth":
        return GoogleOAuthAuthenticator(settings)
    return NoAuthenticator(settings)


def build_authenticator(settings: Settings, secrets: SecretSource) -> Authenticator:
    """The authenticator `settings.auth` asks for; raises `misconfigured` when its settings cannot work."""
    members = [_one(mode, settings, secrets) for mode in settings.auth]
    return members[0] if len(members) == 1 else AnyOfAuthenticator(members)


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
        check_iam_settings(settings)
    if "google-oauth" in settings.auth:
        check_oauth_settings(settings)
