"""Quotas: which budgets a caller draws on, and reserve / settle / release on shared counters in the StateStore."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import ErrorCode, ImageGenError
from ..state.base import Increment
from .prices import from_micros, to_micros

if TYPE_CHECKING:
    from ..access.base import Authenticator
    from ..access.caller import Caller
    from ..config import Settings
    from ..state.base import StateStore

COUNTERS = "usage_counters"
IMAGES = "images"  # field of a scope's day counter
COST_MICROS = "cost_micros"  # field of a scope's month counter (estimated micro-USD: integers add exactly)
DAY_COUNTER_DAYS = 40  # counters outlive their period a while, so an operator can still read last period's
MONTH_COUNTER_DAYS = 400
_SCOPE_KINDS = {"bearer": "key", "iam": "principal", "google": "principal", "none": "caller"}


def caller_scope(caller: Caller) -> str:
    """The caller's own budget: `key:<key id>`, `principal:<email>` or `caller:<id>`."""
    return f"{_SCOPE_KINDS.get(caller.kind, caller.kind)}:{caller.id}"


def safe_id(text: str) -> str:
    """`text` as a document id (Firestore ids may not contain `/`); readable for the usual ids and emails."""
    return quote(text, safe="@.:_+-")


def day_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def month_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m")


def day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def next_day(now: datetime) -> datetime:
    return day_start(now) + timedelta(days=1)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Budget:
    """One scope a call draws on and its limits (None: unlimited, still counted)."""

    scope: str
    daily_images: int | None
    monthly_usd: float | None


@dataclass(frozen=True)
class _Counter:
    key: str
    field: str
    expires_at: datetime


def _day_counter(scope: str, now: datetime) -> _Counter:
    return _Counter(f"{safe_id(scope)}~day~{day_of(now)}", IMAGES, next_day(now) + timedelta(days=DAY_COUNTER_DAYS))


def _month_counter(scope: str, now: datetime) -> _Counter:
    key = f"{safe_id(scope)}~month~{month_of(now)}"
    return _Counter(key, COST_MICROS, next_month(now) + timedelta(days=MONTH_COUNTER_DAYS))


@dataclass
class Reservation:
    """What one call holds on each counter until it settles (amounts already added to the counters)."""

    held: list[tuple[_Counter, int]]


def quota_exceeded(budget: Budget, quota: str, *, limit: float, used: float, now: datetime) -> ImageGenError:
    resets = next_day(now) if quota == "daily_images" else next_month(now)
    if quota == "daily_images":
        what = f"daily image quota of {budget.scope} is used up: {used:g} of {limit:g} images today (UTC)"
    else:
        what = f"monthly budget of {budget.scope} is used up: ${used:.4f} of ${limit:.2f} estimated this month (UTC)"
    return ImageGenError(
        ErrorCode.QUOTA_EXCEEDED,
        f"{what}; it resets at {iso(resets)}",
        retryable=False,
        retry_after_seconds=(resets - now).total_seconds(),
        details={"scope": budget.scope, "quota": quota, "limit": limit, "used": used, "resets_at": iso(resets)},
    )


def _limit_micros(usd: float | None) -> int | None:
    return None if usd is None else to_micros(usd)


class Quotas:
    """Counters are shared by every instance: a call adds its amount first and takes it back if that overshot."""

    def __init__(self, state: StateStore, settings: Settings, auth: Authenticator) -> None:
        self.state = state
        self.settings = settings
        self.auth = auth

    async def budgets(self, caller: Caller) -> list[Budget]:
        """The caller's own budget first (its limits, else the deployment default), then a shared domain budget."""
        s = self.settings
        daily, monthly = s.quota_daily_images, s.quota_monthly_usd
        budgets: list[Budget] = []
        if caller.kind == "bearer":
            from ..access.bearer import BearerAuthenticator
            from ..access.combined import member_of

            keys = member_of(self.auth, BearerAuthenticator)
            record = await keys.key_record(caller.id) if keys is not None else None
            if record is not None:
                daily = record.daily_images if record.daily_images is not None else daily
                monthly = record.monthly_usd if record.monthly_usd is not None else monthly
        elif caller.google_principal:
            own = s.quotas.get(caller.id.lower())
            if own is not None:
                daily = own.daily_images if own.daily_images is not None else daily
                monthly = own.monthly_usd if own.monthly_usd is not None else monthly
        budgets.append(Budget(caller_scope(caller), daily, monthly))
        if caller.google_principal and "@" in caller.id:
            domain = caller.id.rsplit("@", 1)[1].lower()
            team = s.quotas.get(domain)
            if team is not None:
                budgets.append(Budget(f"domain:{domain}", team.daily_images, team.monthly_usd))
        return budgets

    async def reserve(self, budgets: list[Budget], *, images: int, cost_micros: int, now: datetime) -> Reservation:
        """Hold `images` and `cost_micros` on every budget, or raise `quota_exceeded` holding nothing."""
        planned = []
        for budget in budgets:
            monthly = _limit_micros(budget.monthly_usd)
            planned.append((budget, _day_counter(budget.scope, now), images, budget.daily_images, "daily_images"))
            planned.append((budget, _month_counter(budget.scope, now), cost_micros, monthly, "monthly_usd"))
        reservation = Reservation([])
        try:
            # Every counter in one transaction (one write batch on Firestore), then each limit judged on its sum.
            held = [(counter, amount) for _, counter, amount, _, _ in planned]
            totals = await self._add(held)
            reservation.held = held
            for (budget, _, amount, limit, quota), total in zip(planned, totals, strict=True):
                # Over the limit, or a budget already spent (a call of unknown price must not slip through).
                if limit is not None and (total > limit or total - amount >= limit):
                    used = total - amount
                    if quota == "daily_images":
                        raise quota_exceeded(budget, quota, limit=limit, used=used, now=now)
                    raise quota_exceeded(budget, quota, limit=from_micros(limit), used=from_micros(used), now=now)
        except BaseException:
            await asyncio.shield(self.settle(reservation, images=0, cost_micros=0))
            raise
        return reservation

    async def settle(self, reservation: Reservation, *, images: int, cost_micros: int) -> None:
        """Bring each held amount to what was really spent (0, 0: release it all)."""
        actual = [(counter, images if counter.field == IMAGES else cost_micros) for counter, _ in reservation.held]
        moved = [
            (counter, spent - held)
            for (counter, spent), (_, held) in zip(actual, reservation.held, strict=True)
            if spent != held
        ]
        if moved:
            await self._add(moved)
        reservation.held = actual

    async def _add(self, amounts: list[tuple[_Counter, int]]) -> list[int]:
        increments = [Increment(counter.key, counter.field, amount, counter.expires_at) for counter, amount in amounts]
        return await self.state.increment_all(COUNTERS, increments)

    async def standing(self, budgets: list[Budget], now: datetime) -> list[dict[str, Any]]:
        """Each quota's limit, what is used (in-flight reservations included), what is left, and when it resets."""
        out: list[dict[str, Any]] = []
        for budget in budgets:
            day, month = _day_counter(budget.scope, now), _month_counter(budget.scope, now)
            day_doc = await self.state.get(COUNTERS, day.key)
            month_doc = await self.state.get(COUNTERS, month.key)
            images = int((day_doc.data if day_doc else {}).get(IMAGES, 0))
            cost = from_micros(int((month_doc.data if month_doc else {}).get(COST_MICROS, 0)))
            out.append(_standing(budget.scope, "daily_images", budget.daily_images, images, next_day(now)))
            out.append(_standing(budget.scope, "monthly_usd", budget.monthly_usd, cost, next_month(now)))
        return out


def _standing(scope: str, quota: str, limit: float | None, used: float, resets: datetime) -> dict[str, Any]:
    remaining = None if limit is None else max(0.0, limit - used)
    if quota == "monthly_usd" and remaining is not None:
        remaining = round(remaining, 6)
    return {
        "scope": scope,
        "quota": quota,
        "limit": limit,
        "used": used,
        "remaining": int(remaining) if quota == "daily_images" and remaining is not None else remaining,
        "resets_at": iso(resets),
    }
