"""Process-wide HTTP clients for upstream APIs: one pooled client, created lazily, closed at shutdown."""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

    import httpx2

    from ..config import Settings

log = logging.getLogger(__name__)

# How long the first upstream call waits for the background build before building the context itself.
TLS_WAIT_SECONDS = 5.0


def tls_context() -> ssl.SSLContext:
    """The TLS context `httpx2.AsyncClient(trust_env=False)` would build for itself (system CA bundle)."""
    import httpx2

    return httpx2.create_ssl_context(trust_env=False)


class TlsContextPrep:
    """Builds the upstream TLS context on a thread, started at wiring time.

    Loading the CA bundle (~30 ms) releases the GIL, so on a second core it overlaps the rest of startup instead
    of delaying the first call. If the thread fails or is late, the context is built inline, as before.
    """

    def __init__(self) -> None:
        self._context: ssl.SSLContext | None = None
        self._thread = threading.Thread(target=self._build, name="upstream-tls-context", daemon=True)
        self._thread.start()

    def _build(self) -> None:
        try:
            self._context = tls_context()
        except Exception:
            log.debug("building the TLS context in the background failed; it will be built inline", exc_info=True)

    def context(self) -> ssl.SSLContext:
        self._thread.join(TLS_WAIT_SECONDS)
        return self._context or tls_context()

    def join(self) -> None:
        self._thread.join(TLS_WAIT_SECONDS)


_prep_lock = threading.Lock()
_prep: TlsContextPrep | None = None


def shared_tls_prep() -> TlsContextPrep:
    """One background build per process: every upstream client uses the same settings, so the same context."""
    global _prep
    with _prep_lock:
        if _prep is None:
            _prep = TlsContextPrep()
            # A fork (functions-framework's gunicorn worker) waits for the build: a thread cut off inside OpenSSL
            # could leave a lock held in the child; finished, the child inherits the context ready to use.
            os.register_at_fork(before=_prep.join)
        return _prep


class HttpClients:
    """Hands out the shared upstream client (connection limits, timeouts, no redirects, no env proxies)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: httpx2.AsyncClient | None = None
        self._tls = shared_tls_prep()

    def upstream(self) -> httpx2.AsyncClient:
        if self._client is None:
            import httpcore2
            import httpx2

            from ..http_pool import PoolTransport
            from .upstream_network import UpstreamBackend

            pool = httpcore2.AsyncConnectionPool(
                ssl_context=self._tls.context(),
                max_connections=200,
                max_keepalive_connections=200,
                keepalive_expiry=30.0,
                network_backend=UpstreamBackend(),
            )
            self._client = httpx2.AsyncClient(
                transport=PoolTransport(pool),
                timeout=httpx2.Timeout(self._settings.upstream_timeout_seconds, connect=10.0),
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        self._tls.join()  # never leave the build running past shutdown
        if client is not None:
            await client.aclose()
