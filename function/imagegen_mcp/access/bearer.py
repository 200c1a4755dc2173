"""bearer mode: API keys from `Authorization: Bearer igm_...`, checked against the API-keys secret."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..errors import ErrorCode, ImageGenError
from ..secrets.base import API_KEYS
from .base import AuthenticationFailed, BaseAuthenticator, bearer_token, is_api_key
from .caller import Caller
from .keys import KeyRecord, KeyRing, key_id_of, parse_key_file

if TYPE_CHECKING:
    from ..secrets.base import SecretSource

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class BearerAuthenticator(BaseAuthenticator):
    """API keys from `Authorization: Bearer igm_...`, checked against SHA-256 records in the API-keys secret."""

    mode = "bearer"

    def __init__(self, secrets: SecretSource, *, now: Callable[[], datetime] = _utc_now) -> None:
        self._secrets = secrets
        self._now = now
        self._raw: str | None = None
        self._ring = KeyRing(())

    async def _keyring(self) -> KeyRing:
        # The SecretSource caches with a TTL, so a new secret version (rotation) arrives without a redeploy.
        raw = await self._secrets.get(API_KEYS)
        if raw is None:
            raise ImageGenError(
                ErrorCode.MISCONFIGURED,
                f"IMAGEGEN_AUTH=bearer needs the API-key records in {self._secrets.describe(API_KEYS)} "
                "(create keys with `imagegen-mcp keys create`)",
            )
        if raw != self._raw:
            self._ring = KeyRing(parse_key_file(raw))
            self._raw = raw
        return self._ring

    async def key_record(self, key_id: str) -> KeyRecord | None:
        """The current record of key `key_id` (its quotas), from the same cached secret the keys are checked with."""
        return next((r for r in (await self._keyring()).records if r.id == key_id), None)

    def recognizes(self, headers: Mapping[str, str]) -> bool:
        token = bearer_token(headers.get("authorization"))
        return token is not None and is_api_key(token)

    async def authenticate(
        self, headers: Mapping[str, str], *, client_host: str | None, server_host: str | None
    ) -> Caller:
        presented = "authorization" in headers
        token = bearer_token(headers.get("authorization"))
        if token is None:
            raise AuthenticationFailed(token_presented=presented)
        ring = await self._keyring()
        record = ring.match(token)
        if record is None or not record.active(self._now()):
            reason = "unknown" if record is None else ("disabled" if record.disabled else "expired")
            key_id = record.id if record is not None else key_id_of(token)
            log.info("bearer key rejected", extra={"fields": {"reason": reason, "key_id": key_id}})
            raise AuthenticationFailed(token_presented=True)
        return Caller(record.id, "bearer", record.label, record.models)
