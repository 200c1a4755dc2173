"""Retries with jittered exponential backoff that never outlive the request deadline."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .deadline import Deadline
from .errors import ErrorCode, ImageGenError

T = TypeVar("T")
log = logging.getLogger(__name__)

_RETRY_CODES = {ErrorCode.UPSTREAM_ERROR, ErrorCode.UPSTREAM_TIMEOUT, ErrorCode.RATE_LIMITED}


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 8.0) -> float:
    """Full-jitter exponential backoff for attempt 1, 2, ... (seconds)."""
    return random.uniform(0, min(cap, base * (2 ** (attempt - 1))))


async def call_with_retries(
    attempt_fn: Callable[[int], Awaitable[T]],
    *,
    deadline: Deadline,
    max_attempts: int,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `attempt_fn(attempt)` until it succeeds, a non-retryable error occurs, or time/attempts run out.

    `attempt_fn` raises `ImageGenError`; retryable codes are retried. A `rate_limited` error's
    `retry_after_seconds` is honoured when it fits in the deadline, else the error goes to the caller.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await attempt_fn(attempt)
        except ImageGenError as err:
            if err.code not in _RETRY_CODES or not err.retryable or attempt >= max_attempts:
                raise
            delay = err.retry_after_seconds if err.retry_after_seconds is not None else backoff_delay(attempt)
            # Leave the next attempt a little room; otherwise give the caller the real error now.
            if delay + 1.0 >= deadline.remaining():
                raise
            log.info(
                "retrying upstream call",
                extra={
                    "fields": {"what": what, "attempt": attempt, "code": err.code.value, "delay_s": round(delay, 3)}
                },
            )
            await sleep(delay)
