"""Which Host and Origin headers the endpoint answers to (DNS-rebinding protection that works on run.app)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from ..config import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def split_host(value: str) -> str:
    """The host part of a Host header or authority (`[::1]:8080` -> `::1`), lower-cased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def is_loopback_host(host: str | None) -> bool:
    """Whether a host, address or Host header (port allowed) is this machine: localhost, 127/8, ::1, mapped."""
    if not host:
        return False
    name = split_host(host)
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped is not None and mapped.is_loopback)


@dataclass(frozen=True)
class HostPolicy:
    """Allowed host patterns (`*` wildcards, no ports) and allowed origins (exact, or `*`)."""

    host_patterns: tuple[str, ...]
    origins: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> HostPolicy:
        patterns = list(LOOPBACK_NAMES)
        if settings.public_url:
            patterns.append(split_host(urlsplit(settings.public_url).netloc))
        if settings.cloud_run_service:
            # Cloud Run URLs are <service>-<project hash or number>.<region>.run.app (or legacy *.a.run.app).
            patterns.append(f"{settings.cloud_run_service.lower()}-*.run.app")
        patterns += [split_host(h) if "*" not in h else h.lower() for h in settings.allowed_hosts]
        origins = [o.rstrip("/").lower() for o in settings.allowed_origins]
        if settings.public_url:
            origins.append(settings.public_url.lower())
        return cls(tuple(dict.fromkeys(patterns)), tuple(dict.fromkeys(origins)))

    def host_allowed(self, host: str | None) -> bool:
        if not host:
            return False
        name = split_host(host)
        return any(fnmatchcase(name, pattern) for pattern in self.host_patterns)

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """No Origin (non-browser client) passes; a browser Origin must be same-origin, listed, or loopback↔loopback."""
        if not origin:
            return True
        origin = origin.rstrip("/").lower()
        if "*" in self.origins or origin in self.origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        if host and parts.netloc == host.lower():
            return True
        return is_loopback_host(parts.netloc) and is_loopback_host(host)
