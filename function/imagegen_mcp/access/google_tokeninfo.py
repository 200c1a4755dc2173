"""GoogleTokenInfo: asks Google's token-info endpoint what an access token is (client, user, expiry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ImageGenError

if TYPE_CHECKING:
    import httpx2


class GoogleTokenInfo:
    """The token's claims, or None when Google says it is not a valid token.

    Asked as Google's own client library asks (`POST`, the token in `Authorization: Bearer`), so the token is in
    no URL: HTTP client logs and error messages name the URL.
    """

    def __init__(self, url: str, *, timeout_seconds: float = 10.0) -> None:
        self._url = url
        self._timeout = timeout_seconds
        self._client: httpx2.AsyncClient | None = None

    async def lookup(self, access_token: str) -> Mapping[str, Any] | None:
        if self._client is None:
            import httpx2

            self._client = httpx2.AsyncClient(timeout=self._timeout, follow_redirects=False, trust_env=False)
        try:
            response = await self._client.post(
                self._url,
                headers={
                    "Authorization": f"Bearer {access_token}",
                    "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
                },
            )
        except Exception as exc:
            # Not chained: the request (and its headers) hang off transport exceptions.
            raise ImageGenError(
                ErrorCode.UPSTREAM_ERROR, f"could not reach Google's token-info endpoint ({type(exc).__name__})"
            ) from None
        # Google answers 400 {"error": "invalid_token", ...} for a token it did not issue, or that expired/was revoked.
        # 429 is Google pacing us, which says nothing about the token.
        if 400 <= response.status_code < 500 and response.status_code != 429:
            return None
        if response.status_code != 200:
            raise ImageGenError(
                ErrorCode.UPSTREAM_ERROR, f"Google's token-info endpoint answered HTTP {response.status_code}"
            )
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "Google's token-info endpoint answered no JSON object")
        return document

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
