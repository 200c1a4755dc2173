"""A per-request time budget that every upstream call and retry must fit inside."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .errors import ErrorCode, ImageGenError


@dataclass
class Deadline:
    """Monotonic deadline; `remaining()` never goes below zero."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def at(self) -> float:
        return self.started + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def timeout(self, cap: float | None = None) -> float:
        """Seconds the next attempt may take: what is left, capped; raises when nothing is left."""
        left = self.remaining()
        if left <= 0.0:
            raise ImageGenError(ErrorCode.UPSTREAM_TIMEOUT, f"request deadline of {self.seconds:.0f}s exceeded")
        return min(left, cap) if cap is not None else left
