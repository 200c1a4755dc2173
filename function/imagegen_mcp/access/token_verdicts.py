"""VerdictCache: what was decided about an opaque token, by the token's SHA-256, until it expires (bounded LRU)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def token_key(token: str) -> str:
    """The cache key of a token: its SHA-256, so a memory dump or a debugger never shows a usable token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class VerdictCache(Generic[T]):
    """At most `size` verdicts, each until the wall-clock time `decide` gave it; one `decide` per token at a time."""

    def __init__(self, size: int, *, clock: Callable[[], float] = time.time) -> None:
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[T, float]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[str]:
        return list(self._entries)

    async def get(self, token: str, decide: Callable[[], Awaitable[tuple[T, float]]]) -> T:
        """The cached verdict on `token`, else `decide()`'s (value, expires_at), shared by concurrent askers."""
        key = token_key(token)
        entry = self._entries.get(key)
        if entry is not None:
            value, expires = entry
            if self._clock() < expires:
                self._entries.move_to_end(key)
                return value
            del self._entries[key]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._decide(key, decide))
            self._pending[key] = pending
            pending.add_done_callback(self._settled(key))
        # Shielded: one asker giving up (a client hanging up) does not cancel the lookup the others wait on.
        return await asyncio.shield(pending)

    async def _decide(self, key: str, decide: Callable[[], Awaitable[tuple[T, float]]]) -> T:
        value, expires = await decide()
        if self._clock() < expires:
            self._entries[key] = (value, expires)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value

    def _settled(self, key: str) -> Callable[[asyncio.Future[T]], None]:
        def done(future: asyncio.Future[T]) -> None:
            if self._pending.get(key) is future:
                del self._pending[key]
            if not future.cancelled():
                future.exception()  # retrieved here, so an error nobody waited for is not reported as unhandled

        return done
