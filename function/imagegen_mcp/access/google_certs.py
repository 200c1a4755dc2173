"""GoogleCerts: Google's ID-token signing certificates ({kid: PEM}), fetched asynchronously and cached."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..errors import ErrorCode, ImageGenError

if TYPE_CHECKING:
    import httpx2

log = logging.getLogger(__name__)

CERTS_MIN_REFRESH_SECONDS = 30.0
CERTS_DEFAULT_MAX_AGE = 300.0
STALE_SET_LIMIT_SECONDS = 24 * 3600.0


def _max_age(cache_control: str | None) -> float | None:
    match = re.search(r"max-age=(\d+)", cache_control or "")
    return float(match.group(1)) if match else None


def _rsa_certificates(document: object) -> dict[str, str]:
    """The RSA certificates of a certs document, as PEM by kid; raises ValueError when it is not one."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    if not isinstance(document, dict):
        raise ValueError("certs document is not an object")
    pems: dict[str, str] = {}
    for kid, pem in document.items():
        if not isinstance(pem, str):
            raise ValueError("certificate is not a string")
        # Parsed here so that a broken document fails the refresh (and keeps the cached set) instead of every token.
        if isinstance(x509.load_pem_x509_certificate(pem.encode("ascii")).public_key(), RSAPublicKey):
            pems[str(kid)] = pem
    return pems


class GoogleCerts:
    """{kid: PEM} as google-auth takes them, cached per Cache-Control and refreshed (paced) on unknown kids."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_refresh_seconds: float = CERTS_MIN_REFRESH_SECONDS,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._url = url
        self._clock = clock
        self._min_refresh = min_refresh_seconds
        self._timeout = timeout_seconds
        self._pems: Mapping[str, str] = {}
        self._expires = float("-inf")
        self._fetched = float("-inf")  # last attempt, successful or not (paces unknown-kid refreshes)
        self._succeeded = float("-inf")
        self._generation = 0
        self._lock: asyncio.Lock | None = None
        self._client: httpx2.AsyncClient | None = None

    async def for_kid(self, kid: str) -> Mapping[str, str]:
        """The current certificates, refreshed first when they expired or (at most every 30 s) `kid` is unknown."""
        now = self._clock()
        if now >= self._expires or (kid not in self._pems and now - self._fetched >= self._min_refresh):
            await self._refresh()
        return self._pems

    async def _refresh(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        generation = self._generation
        async with self._lock:
            if self._generation != generation:  # another request refreshed while this one waited
                return
            self._generation += 1
            self._fetched = self._clock()
            try:
                pems, max_age = await self._fetch()
            except Exception as exc:
                if self._pems and self._fetched - self._succeeded < STALE_SET_LIMIT_SECONDS:
                    # Google rotates keys over days: a stale set beats refusing everyone during a blip.
                    log.warning("could not refresh Google certs; keeping the cached set", exc_info=exc)
                    self._expires = self._fetched + self._min_refresh
                    return
                raise ImageGenError(
                    ErrorCode.UPSTREAM_ERROR, "could not fetch Google's ID-token signing certificates"
                ) from exc
            self._pems = pems
            self._succeeded = self._fetched
            self._expires = self._fetched + (max_age if max_age is not None else CERTS_DEFAULT_MAX_AGE)

    async def _fetch(self) -> tuple[dict[str, str], float | None]:
        if self._client is None:
            import httpx2

            self._client = httpx2.AsyncClient(timeout=self._timeout, follow_redirects=False, trust_env=False)
        response = await self._client.get(self._url)
        response.raise_for_status()
        return _rsa_certificates(response.json()), _max_age(response.headers.get("cache-control"))

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
