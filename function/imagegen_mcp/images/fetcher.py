"""The guarded (SSRF-safe) URL fetcher: image downloads hop by hop under the URL policy, capped in size and time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import httpcore2
import httpx2

from ..errors import ErrorCode, ImageGenError
from ..errors import invalid as _invalid
from .imaging import FORMAT_MIME, sniff_format
from .url_policy import HostList, Target, validate_url
from .vetted_network import Connector, Resolver, TcpConnector, VettedBackend, VettedTransport, system_resolver

if TYPE_CHECKING:
    from ..config import Settings

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SNIFF_BYTES = 12  # enough for every magic number sniff_format knows


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str | None  # as the server said; never trusted
    url: str  # final URL after redirects


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type of an allowed image format judged by its magic bytes (PNG, JPEG, WEBP, GIF), else None."""
    fmt = sniff_format(data)
    return FORMAT_MIME[fmt] if fmt is not None else None


def request_url(target: Target) -> httpx2.URL:
    """The validated hop as httpx2's URL, built from its parts so nothing is parsed a second time."""
    return httpx2.URL(
        scheme=target.scheme, host=target.host, port=target.port, raw_path=target.request_target.encode("ascii")
    )


def _upstream(message: str) -> ImageGenError:
    return ImageGenError(ErrorCode.UPSTREAM_ERROR, message)


class GuardedFetcher:
    """Downloads image URLs under the SSRF policy; the only way the service fetches a URL."""

    def __init__(
        self,
        *,
        allow_http_hosts: Iterable[str] = (),
        max_redirects: int = 3,
        timeout_seconds: float = 20.0,
        resolver: Resolver | None = None,
        connector: Connector | None = None,
        user_agent: str = "imagegen-mcp",
        total_timeout_seconds: float | None = None,
        allow_private_hosts: Iterable[str] = (),
    ) -> None:
        if max_redirects < 0:
            raise ValueError("max_redirects must be >= 0")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        self._allow_http = HostList(allow_http_hosts)
        self._trusted = HostList(allow_private_hosts)
        self.max_redirects = max_redirects
        self.timeout_seconds = timeout_seconds
        self.total_timeout_seconds = total_timeout_seconds or 2 * timeout_seconds
        self._resolver: Resolver = resolver or system_resolver
        self._connector: Connector = connector or TcpConnector()
        self._user_agent = user_agent

    @classmethod
    def from_settings(
        cls, settings: Settings, *, resolver: Resolver | None = None, connector: Connector | None = None
    ) -> GuardedFetcher:
        """The fetcher the settings describe; `resolver` and `connector` replace the system DNS and TCP/TLS."""
        return cls(
            allow_http_hosts=settings.fetch_allow_http_hosts,
            max_redirects=settings.fetch_max_redirects,
            timeout_seconds=settings.fetch_timeout_seconds,
            allow_private_hosts=settings.fetch_allow_private_hosts,
            resolver=resolver,
            connector=connector,
        )

    def validate(self, url: str) -> Target:
        """Policy check of one URL without any network access (raises ImageGenError)."""
        return validate_url(url, allow_http=self._allow_http, trusted=self._trusted)

    async def fetch(
        self, url: str, *, max_bytes: int, require_image: bool = True, within_seconds: float | None = None
    ) -> Fetched:
        """GET `url` (redirects re-checked per hop); `within_seconds` further caps the whole fetch (a deadline)."""
        if max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        total = (
            self.total_timeout_seconds if within_seconds is None else min(within_seconds, self.total_timeout_seconds)
        )
        target = self.validate(url)
        redirects = 0
        try:
            async with asyncio.timeout(total):
                while True:
                    result = await self._hop(target, max_bytes=max_bytes, require_image=require_image)
                    if isinstance(result, Fetched):
                        return result
                    redirects += 1
                    if redirects > self.max_redirects:
                        raise _invalid(f"too many redirects (more than {self.max_redirects})")
                    target = self.validate(urljoin(target.url, result))
        except TimeoutError:
            raise ImageGenError(
                ErrorCode.UPSTREAM_TIMEOUT, "timed out fetching the image URL", details={"host": target.host}
            ) from None

    async def _hop(self, target: Target, *, max_bytes: int, require_image: bool) -> Fetched | str:
        """One request: the Fetched result, or the Location of a redirect."""
        # A pool per hop, bound to this hop's target: nothing is reused across hops or fetches, so every
        # request resolves and vets afresh and connects to the address it vetted (no DNS rebinding).
        backend = VettedBackend(target, resolver=self._resolver, connector=self._connector, trusted=self._trusted)
        headers = {
            "Host": target.host_header,
            "User-Agent": self._user_agent,
            "Accept": "image/png,image/jpeg,image/webp,image/gif;q=0.9,*/*;q=0.1",
            "Accept-Encoding": "identity",
            "Connection": "close",
        }
        try:
            async with (
                httpx2.AsyncClient(
                    transport=VettedTransport(backend), timeout=self.timeout_seconds, trust_env=False
                ) as client,
                client.stream("GET", request_url(target), headers=headers) as response,
            ):
                return await self._answer(target, response, max_bytes=max_bytes, require_image=require_image)
        except (httpcore2.TimeoutException, httpx2.TimeoutException):
            raise TimeoutError from None
        except (httpcore2.ProtocolError, httpcore2.NetworkError, httpx2.TransportError) as exc:
            raise _upstream(f"the URL host broke the HTTP exchange ({type(exc).__name__})") from None

    async def _answer(
        self, target: Target, response: httpx2.Response, *, max_bytes: int, require_image: bool
    ) -> Fetched | str:
        status = response.status_code
        if status in REDIRECT_STATUSES:
            location = response.headers.get("location")
            if not location:
                raise _upstream("redirect without a Location header")
            return location
        if status != 200:
            code = ErrorCode.UPSTREAM_ERROR if status >= 500 else ErrorCode.INVALID_ARGUMENT
            raise ImageGenError(code, f"the URL answered HTTP {status}", details={"status": status})
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            raise _invalid("the URL answered with a compressed body we did not ask for")
        declared = response.headers.get("content-length")
        if declared is not None:
            # str.isdigit() alone admits non-ASCII digits ("²") that int() refuses.
            if not (declared.isascii() and declared.isdigit()):
                raise _upstream("invalid Content-Length from the URL host")
            if int(declared) > max_bytes:
                raise _invalid(f"the image is larger than {max_bytes} bytes", max_bytes=max_bytes)
        body = bytearray()
        async for chunk in response.aiter_raw():
            body.extend(chunk)
            if len(body) > max_bytes:
                raise _invalid(f"the image is larger than {max_bytes} bytes", max_bytes=max_bytes)
            # Abort a non-image as soon as enough bytes are in, instead of downloading all of it.
            if (
                require_image
                and len(body) - len(chunk) < _SNIFF_BYTES <= len(body)
                and sniff_image_type(bytes(body[:_SNIFF_BYTES])) is None
            ):
                raise _invalid("the URL did not return an image (PNG, JPEG, WEBP or GIF)")
        data = bytes(body)
        if require_image and sniff_image_type(data) is None:
            raise _invalid("the URL did not return an image (PNG, JPEG, WEBP or GIF)")
        return Fetched(data=data, content_type=response.headers.get("content-type"), url=target.url)

    async def aclose(self) -> None:
        """Nothing is kept between fetches: each hop's pool is closed when the hop ends."""
        return None

    def __repr__(self) -> str:
        return f"GuardedFetcher(max_redirects={self.max_redirects}, timeout={self.timeout_seconds}s)"
