"""Secret Manager as the `SecretSource`: CRC32C-checked latest versions, TTL-cached, refreshed in the background."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ImageGenError
from . import base as secret_names
from .base import EnvSecretSource

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud.secretmanager import SecretManagerServiceClient

    from ..config import Settings

log = logging.getLogger(__name__)

# After a failed refresh the last good value is kept and the fetch is retried this much later.
_RETRY_AFTER_FAILURE_SECONDS = 30.0
_CALL_TIMEOUT_SECONDS = 10.0
_RETRY_BUDGET_SECONDS = 10.0  # transient errors (5xx, 429, connection) are retried this long


@dataclass
class _Entry:
    value: str | None
    error: ImageGenError | None
    expires_at: float


class SecretManagerSource:
    """Reads `projects/<secrets_project>/secrets/<id>/versions/latest` for each logical secret name.

    - An environment variable of the name (`secret_names.ENV_NAMES`, e.g. Cloud Run secret env vars) wins.
    - The first read of a name waits for Secret Manager (concurrent callers share one fetch); after that a
      caller never waits: an expired value is served while one background fetch replaces it.
    - NOT_FOUND → None (the secret is not configured); any other failure or a CRC32C mismatch →
      `misconfigured` naming the secret, never its value. A failed refresh keeps the last good value.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: SecretManagerServiceClient | None = None,
        credentials: Credentials | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._ids: dict[str, str] = {
            secret_names.OPENAI: settings.openai_key_secret,
            secret_names.OPENROUTER: settings.openrouter_key_secret,
            secret_names.REPLICATE: settings.replicate_key_secret,
            secret_names.GEMINI: settings.gemini_key_secret,
            secret_names.API_KEYS: settings.api_keys_secret,
        }
        self._env = EnvSecretSource.from_settings(settings, environ)
        self._client = client
        self._credentials = credentials
        self._client_lock = threading.Lock()
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[_Entry]] = {}

    # --- the SecretSource protocol ---------------------------------------------------------------------------------

    async def get(self, name: str) -> str | None:
        from_env = await self._env.get(name)
        if from_env is not None:
            return from_env
        if name not in self._ids:
            return None
        entry = self._entries.get(name)
        if entry is None:
            # Shielded: a caller that gives up must not cancel the fetch others are waiting for.
            entry = await asyncio.shield(self._refresh(name))
        elif entry.expires_at <= self._clock():
            self._refresh(name)
        if entry.error is not None:
            raise entry.error
        return entry.value

    def describe(self, name: str) -> str:
        env_names = " or ".join(secret_names.ENV_NAMES.get(name, ()))
        resource = self._resource(name) if name in self._ids else f"(no secret for {name!r})"
        return f"Secret Manager secret {resource}" + (f" (overridden by {env_names} when set)" if env_names else "")

    async def warm(self) -> None:
        """Fetch every configured secret once (startup), so no request waits; failures are logged, not raised."""
        names = [n for n in self._ids if await self._env.get(n) is None]
        entries = await asyncio.gather(*(self._refresh(n) for n in names), return_exceptions=True)
        for name, entry in zip(names, entries, strict=True):
            if isinstance(entry, BaseException):
                log.warning("secret %s could not be fetched: %s", self._resource(name), type(entry).__name__)
            elif entry.error is not None:
                log.warning("%s", entry.error.message)

    async def aclose(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.transport.close)

    # --- fetching --------------------------------------------------------------------------------------------------

    def _resource(self, name: str) -> str:
        return f"projects/{self._settings.secrets_project or '<GOOGLE_CLOUD_PROJECT unset>'}/secrets/{self._ids[name]}"

    def _refresh(self, name: str) -> asyncio.Task[_Entry]:
        """The one in-flight fetch of `name` (started if none is running); it stores its result when done."""
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch_entry(name), name=f"secret-refresh:{name}")
            self._inflight[name] = task
            task.add_done_callback(lambda _t: self._inflight.pop(name, None))
        return task

    async def _fetch_entry(self, name: str) -> _Entry:
        resource = self._resource(name)
        try:
            value = await asyncio.to_thread(self._access, name)
        except ImageGenError as e:
            return self._store_failure(name, e)
        except Exception:  # unexpected: the trace goes to the logs, the caller sees only the secret's name
            log.exception("reading %s failed", resource)
            return self._store_failure(name, ImageGenError(ErrorCode.MISCONFIGURED, f"cannot read {resource}"))
        entry = self._entries[name] = _Entry(value, None, self._clock() + self._settings.secret_ttl_seconds)
        return entry

    def _store_failure(self, name: str, error: ImageGenError) -> _Entry:
        retry_at = self._clock() + min(self._settings.secret_ttl_seconds, _RETRY_AFTER_FAILURE_SECONDS)
        previous = self._entries.get(name)
        if previous is not None and previous.error is None and previous.value is not None:
            log.warning("keeping the cached value of %s: refresh failed: %s", self._resource(name), error.message)
            entry = _Entry(previous.value, None, retry_at)
        else:
            entry = _Entry(None, error, retry_at)
        self._entries[name] = entry
        return entry

    def _get_client(self) -> SecretManagerServiceClient:
        with self._client_lock:
            if self._client is None:
                from google.cloud import secretmanager

                options: dict[str, Any] | None = None
                if self._settings.secret_manager_endpoint:
                    options = {"api_endpoint": self._settings.secret_manager_endpoint}
                self._client = secretmanager.SecretManagerServiceClient(
                    credentials=self._credentials, transport="rest", client_options=options
                )
            return self._client

    def _access(self, name: str) -> str | None:
        """Blocking: read the latest version of `name`'s secret and check its CRC32C."""
        import google_crc32c
        from google.api_core import exceptions as gexc
        from google.api_core import retry
        from google.auth import exceptions as auth_exc

        if not self._settings.secrets_project:
            raise ImageGenError(
                ErrorCode.MISCONFIGURED,
                "IMAGEGEN_SECRETS=secret-manager needs IMAGEGEN_SECRET_PROJECT or GOOGLE_CLOUD_PROJECT",
            )
        resource = self._resource(name)
        try:
            response = self._get_client().access_secret_version(
                name=f"{resource}/versions/latest",
                retry=retry.Retry(
                    predicate=retry.if_transient_error, initial=0.2, maximum=2.0, timeout=_RETRY_BUDGET_SECONDS
                ),
                timeout=_CALL_TIMEOUT_SECONDS,
            )
        except gexc.NotFound:
            log.info("secret %s does not exist (or has no enabled version): treated as not configured", resource)
            return None
        except (gexc.PermissionDenied, gexc.Forbidden) as e:  # gRPC and REST spellings of 403
            raise ImageGenError(
                ErrorCode.MISCONFIGURED,
                f"permission denied reading {resource}: grant the runtime service account "
                "roles/secretmanager.secretAccessor on it",
                details={"secret": resource},
            ) from e
        except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, OSError) as e:
            raise ImageGenError(
                ErrorCode.MISCONFIGURED,
                f"cannot read {resource}: {type(e).__name__}",
                details={"secret": resource},
            ) from e
        payload = response.payload
        data = bytes(payload.data)
        # The field is optional in the API; when Secret Manager sends it, it must match.
        if "data_crc32c" in payload and int(payload.data_crc32c) != google_crc32c.value(data):
            raise ImageGenError(
                ErrorCode.MISCONFIGURED,
                f"{resource}: payload failed its CRC32C check (corrupted in transit)",
                details={"secret": resource},
            )
        try:
            value = data.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise ImageGenError(
                ErrorCode.MISCONFIGURED, f"{resource}: payload is not UTF-8 text", details={"secret": resource}
            ) from e
        return value or None

    def __repr__(self) -> str:
        return f"SecretManagerSource(project={self._settings.secrets_project!r}, cached={sorted(self._entries)})"
