"""The process-wide budget of decoded-image memory and the per-call pixel cap that keep an instance inside its RAM."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ImageGenError, invalid

if TYPE_CHECKING:
    from ..config import Settings

MIB = 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
_MMAP_THRESHOLD_BYTES = 1024 * 1024


def return_large_frees_to_os() -> bool:
    """Serve every allocation of 1 MiB or more (decoded frames, image bytes) from mmap, so freeing returns it.

    glibc otherwise raises its mmap threshold after the first large free (up to 32 MiB), after which Pillow's
    16 MiB frame blocks come from per-thread heaps that keep freed memory: RSS then grows past what the budget
    holds. A fixed threshold keeps RSS close to what is really held. No-op (False) off glibc.
    """
    try:
        return bool(_libc().mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False


def _libc() -> Any:
    """glibc by its soname; `find_library` (it runs `ldconfig -p`: a subprocess at startup) only if that fails."""
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        import ctypes.util

        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def _mib(nbytes: int) -> str:
    return f"{nbytes / MIB:.0f} MiB"


class DecodeBudget:
    """Bytes of decoded pixels the process may hold at once; every decode takes its share and gives it back.

    A share that does not fit waits (first come, first served) up to `wait_seconds`, then is refused as
    `rate_limited` (retryable: the memory frees up when other calls finish). A share larger than the whole
    budget is refused at once as `invalid_argument`: no retry could ever fit it.
    """

    def __init__(self, capacity_bytes: int, *, wait_seconds: float) -> None:
        self.capacity = capacity_bytes
        self.wait_seconds = wait_seconds
        self._held = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @classmethod
    def from_settings(cls, settings: Settings) -> DecodeBudget:
        return cls(settings.decode_budget_bytes, wait_seconds=settings.decode_wait_seconds)

    @property
    def held(self) -> int:
        return self._held

    @contextlib.asynccontextmanager
    async def hold(self, nbytes: int, what: str) -> AsyncIterator[None]:
        """Hold `nbytes` of the budget for the block (nothing to hold: no wait)."""
        if nbytes <= 0:
            yield
            return
        await self._acquire(nbytes, what)
        try:
            yield
        finally:
            self._release(nbytes)

    async def _acquire(self, nbytes: int, what: str) -> None:
        if nbytes > self.capacity:
            raise invalid(
                f"{what} needs about {_mib(nbytes)} of memory to decode; this server decodes at most "
                f"{_mib(self.capacity)} at once (send a smaller image)"
            )
        if not self._waiters and self._held + nbytes <= self.capacity:
            self._held += nbytes
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (nbytes, future)
        self._waiters.append(entry)
        started = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(future), self.wait_seconds)
        except TimeoutError:
            if future.done():  # granted just as the wait ran out: keep it
                return
            self._waiters.remove(entry)
            self._grant()
            raise ImageGenError(
                ErrorCode.RATE_LIMITED,
                f"the server is busy decoding other images (waited {time.monotonic() - started:.0f}s for "
                f"{_mib(nbytes)} of its {_mib(self.capacity)} image memory); retry shortly",
                retryable=True,
            ) from None
        except BaseException:
            if future.done() and not future.cancelled():
                self._release(nbytes)
            else:
                self._waiters.remove(entry)
                future.cancel()
                self._grant()
            raise

    def _release(self, nbytes: int) -> None:
        self._held -= nbytes
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self._held + self._waiters[0][0] <= self.capacity:
            nbytes, future = self._waiters.popleft()
            self._held += nbytes
            future.set_result(None)


class PixelAllowance:
    """The pixels one tool call may decode in total (inputs and outputs); refuses the call beyond it."""

    def __init__(self, cap_pixels: int) -> None:
        self.cap = cap_pixels
        self.used = 0

    def take(self, pixels: int, what: str) -> None:
        if self.used + pixels > self.cap:
            raise invalid(
                f"{what} would bring this call to {self.used + pixels} decoded pixels; one call may decode at "
                f"most {self.cap} (inputs and outputs together): use fewer or smaller images"
            )
        self.used += pixels
