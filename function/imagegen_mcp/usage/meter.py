"""UsageMeter: the pipeline's one hook — reserve quota before the upstream call, settle and record after it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ImageGenError
from .prices import estimate_cost, to_micros
from .quotas import Budget, Quotas, Reservation, caller_scope
from .records import UsageLog, iso_micro

if TYPE_CHECKING:
    from ..catalog import GenerationOptions, ModelSpec
    from ..deps import Deps
    from ..tools import CallContext

log = logging.getLogger(__name__)


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, ImageGenError):
        return error.code.value
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return ErrorCode.INTERNAL.value


class Metered:
    """One call's metering: what it reserved, whether it reached the upstream, and what that produced."""

    def __init__(self, meter: UsageMeter, call: CallContext) -> None:
        self._meter = meter
        self._call = call
        self._reservation: Reservation | None = None
        self._budgets: list[Budget] = []
        self._fields: dict[str, Any] = {}
        self._spec: ModelSpec | None = None
        self._inputs = 0
        self._upstream = False
        self.images = 0
        self.cost_usd: float | None = None

    async def reserve(
        self, spec: ModelSpec, provider: str, options: GenerationOptions, *, operation: str, inputs: int
    ) -> None:
        """Hold the call's images and estimated cost on every budget; `quota_exceeded` before anything is sent."""
        self._spec, self._inputs = spec, inputs
        self.cost_usd = estimate_cost(spec, images=0, inputs=inputs)  # a failed call: 0.0, or None when unpriced
        self._fields = {
            "model": spec.id,
            "provider": provider,
            "operation": operation,
            "n": options.n,
            "image_size": options.image_size,
            "aspect_ratio": options.aspect_ratio,
            "quality": options.quality,
        }
        self._budgets = await self._meter.quotas.budgets(self._call.caller)
        estimate = estimate_cost(spec, images=options.n, inputs=inputs)
        self._reservation = await self._meter.quotas.reserve(
            self._budgets, images=options.n, cost_micros=to_micros(estimate), now=datetime.now(UTC)
        )

    def reached_upstream(self) -> None:
        self._upstream = True

    def produced(self, images: int) -> None:
        """The upstream returned `images` outputs: they are what the call costs, whatever happens next."""
        assert self._spec is not None
        self.images = images
        self.cost_usd = estimate_cost(self._spec, images=images, inputs=self._inputs)

    async def close(self, error: BaseException | None) -> None:
        if self._reservation is None:
            return  # refused before reserving (bad input, over quota): nothing held, nothing to record
        try:
            await self._meter.quotas.settle(self._reservation, images=self.images, cost_micros=to_micros(self.cost_usd))
            if self._upstream:
                await self._meter.usage_log.write(
                    caller_scope(self._call.caller), self._record(_outcome(error)), datetime.now(UTC)
                )
        except Exception:
            # The call's own outcome stands; an unsettled reservation stays counted (errs on the side of the budget).
            log.exception("could not settle or record usage of request %s", self._call.request_id)

    def _record(self, outcome: str) -> dict[str, Any]:
        caller = self._call.caller
        record: dict[str, Any] = {
            "time": iso_micro(datetime.now(UTC)),
            "caller": caller.id,
            "caller_kind": caller.kind,
            "key_id": caller.id if caller.kind == "bearer" else None,
            "key_label": caller.label if caller.kind == "bearer" else None,
            "principal": caller.id if caller.google_principal else None,
            **self._fields,
            "images": self.images,
            "outcome": outcome,
            "estimated_cost_usd": self.cost_usd,
            "request_id": self._call.request_id,
            "job_id": self._call.job_id,
        }
        return record


class UsageMeter:
    """Built once per ImageTools; every generate/edit runs inside `metered(call)`."""

    def __init__(self, deps: Deps) -> None:
        self.quotas = Quotas(deps.state, deps.settings, deps.auth)
        self.usage_log = UsageLog(deps.state, retention_days=deps.settings.usage_retention_days)

    @contextlib.asynccontextmanager
    async def metered(self, call: CallContext) -> AsyncIterator[Metered]:
        metered = Metered(self, call)
        try:
            yield metered
        except BaseException as exc:
            await asyncio.shield(metered.close(exc))
            raise
        await metered.close(None)
