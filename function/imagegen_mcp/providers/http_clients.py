"""Process-wide HTTP clients for upstream APIs: one pooled client, created lazily, closed at shutdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx2

    from ..config import Settings


class HttpClients:
    """Hands out the shared upstream client (connection limits, timeouts, no redirects, no env proxies)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: httpx2.AsyncClient | None = None

    def upstream(self) -> httpx2.AsyncClient:
        if self._client is None:
            import httpx2

            self._client = httpx2.AsyncClient(
                timeout=httpx2.Timeout(self._settings.upstream_timeout_seconds, connect=10.0),
                limits=httpx2.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=30.0),
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
