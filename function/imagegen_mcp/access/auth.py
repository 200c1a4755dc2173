"""Which authenticator `IMAGEGEN_AUTH` selects (none / bearer / iam), and the startup check of `serve`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ErrorCode, ImageGenError
from .anonymous import NoAuthenticator
from .base import Authenticator
from .bearer import BearerAuthenticator
from .hosts import is_loopback_host
from .iam import IamAuthenticator, check_iam_settings

if TYPE_CHECKING:
    from ..config import Settings
    from ..secrets.base import SecretSource


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
        check_iam_settings(settings)
