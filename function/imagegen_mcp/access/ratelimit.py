"""Per-caller token-bucket rate limiting, per process: each Cloud Run instance keeps its own buckets."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ErrorCode, ImageGenError

DEFAULT_MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`per_minute` calls per caller with bursts up to `burst`; `per_minute=0` turns it off.

    The limit holds per instance: N instances allow up to N times as much. Memory is bounded: a bucket
    idle long enough to be full again is dropped (it is equivalent to a fresh one), and beyond `max_buckets`
    the least recently used bucket is dropped early (that caller gets a fresh burst).
    """

    def __init__(
        self,
        per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        if per_minute < 0 or burst < 1 or max_buckets < 1:
            raise ValueError("per_minute must be >= 0, burst and max_buckets >= 1")
        self._rate = per_minute / 60.0  # tokens per second
        self._burst = float(burst)
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()  # cheap; keeps the limiter correct if called from worker threads

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, caller_id: str) -> None:
        """Take one token for `caller_id` or raise `rate_limited` with the seconds until one is available."""
        if not self.enabled:
            return
        with self._lock:
            now = self._clock()
            self._evict(now)
            bucket = self._buckets.pop(caller_id, None)
            if bucket is None:
                if len(self._buckets) >= self._max_buckets:
                    self._buckets.popitem(last=False)
                bucket = _Bucket(self._burst, now)
            else:
                bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
                bucket.updated = now
            self._buckets[caller_id] = bucket
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / self._rate
        raise ImageGenError(
            ErrorCode.RATE_LIMITED,
            f"rate limit of {self._rate * 60:g} calls/minute (burst {self._burst:g}) per caller reached on this "
            f"instance; retry in {wait:.1f} s",
            retry_after_seconds=wait,
        )

    def _evict(self, now: float) -> None:
        refill_seconds = self._burst / self._rate
        while self._buckets:
            caller_id, oldest = next(iter(self._buckets.items()))
            if now - oldest.updated >= refill_seconds:
                del self._buckets[caller_id]
            else:
                break
