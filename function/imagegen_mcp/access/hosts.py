"""Which Host and Origin headers the endpoint answers to (DNS-rebinding protection that works on run.app)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from ..config import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
# RFC 3986 reg-name restricted to unreserved characters (what DNS names and IPv4 literals use): percent-encoding
# and sub-delims are refused, as no host this server answers to needs them.
_REG_NAME = re.compile(r"[a-z0-9._~-]+")
_PORT = re.compile(r"[0-9]{1,5}")


def parse_authority(value: str | None) -> tuple[str, int | None] | None:
    """(host, port) of a Host header or URL authority, strictly per RFC 3986; None for anything else.

    host is a reg-name/IPv4 (`[a-z0-9._~-]+`, lower-cased) or a bracketed IPv6 literal (returned without the
    brackets); the port is optional and all-digit. Userinfo (`a@b`), junk after `]` or after the port, and
    non-ASCII are refused: `localhost:@evil.com`, `localhost:1.evil.com` and `[::1].evil.com` are not hosts.
    """
    if not value or not value.isascii():
        return None
    value = value.lower()
    if value.startswith("["):
        end = value.find("]")
        host, rest = value[1:end], value[end + 1 :]
        if end < 0 or "%" in host:
            return None
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    else:
        host, colon, port_text = value.partition(":")
        rest = colon + port_text
        if not _REG_NAME.fullmatch(host):
            return None
    if not rest:
        return host, None
    if rest[0] != ":" or not _PORT.fullmatch(rest[1:]) or int(rest[1:]) > 65535:
        return None
    return host, int(rest[1:])


def format_authority(host: str, port: int | None) -> str:
    """The inverse of `parse_authority`: `host[:port]`, IPv6 literals in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def split_host(value: str) -> str:
    """The host part of an authority or bare address (`[::1]:8080` or `::1` -> `::1`), lower-cased; "" if invalid."""
    parsed = parse_authority(value.strip())
    if parsed is not None:
        return parsed[0]
    bare = value.strip().lower()
    try:
        ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        return ""
    return bare


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
        parsed = parse_authority(host)
        return parsed is not None and any(fnmatchcase(parsed[0], pattern) for pattern in self.host_patterns)

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
        origin_authority = parse_authority(parts.netloc)
        if origin_authority is not None and origin_authority == parse_authority(host):
            return True
        return is_loopback_host(parts.netloc) and is_loopback_host(host)
