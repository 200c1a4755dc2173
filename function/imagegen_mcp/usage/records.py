"""Usage records: one per metered call, stored (keyed by caller scope and time) and logged as `"event": "usage"`."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .prices import from_micros, to_micros
from .quotas import safe_id

if TYPE_CHECKING:
    from ..state.base import StateStore

RECORDS = "usage_records"
_STAMP = "%Y%m%dT%H%M%S%fZ"  # fixed width, so key order is time order within a scope
log = logging.getLogger("imagegen_mcp.usage")


def record_key(scope: str, moment: datetime) -> str:
    return f"{safe_id(scope)}~{moment.astimezone(UTC).strftime(_STAMP)}~{secrets.token_hex(4)}"


def key_range(scope: str, since: datetime, until: datetime) -> tuple[str, str]:
    """The [start, end) key range holding `scope`'s records from `since` up to `until`."""
    prefix = safe_id(scope)
    return f"{prefix}~{since.astimezone(UTC).strftime(_STAMP)}", f"{prefix}~{until.astimezone(UTC).strftime(_STAMP)}"


class UsageLog:
    """Writes records to the StateStore (for get_usage and the CLI) and to the log (for the BigQuery sink)."""

    def __init__(self, state: StateStore, *, retention_days: int) -> None:
        self.state = state
        self.retention = timedelta(days=retention_days)

    async def write(self, scope: str, record: dict[str, Any], moment: datetime) -> None:
        log.info("usage", extra={"fields": {"event": "usage", **record}})
        key = record_key(scope, moment)
        await self.state.create(RECORDS, key, record, expires_at=moment + self.retention)

    async def of_scope(self, scope: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        start, end = key_range(scope, since, until)
        return [doc.data for doc in await self.state.scan(RECORDS, start=start, end=end)]

    async def between(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Every caller's records in [since, until): an operator's read, over the whole collection."""
        low, high = iso_micro(since), iso_micro(until)
        return [doc.data for doc in await self.state.scan(RECORDS) if low <= doc.data.get("time", "") < high]


def iso_micro(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _blank() -> dict[str, Any]:
    return {"calls": 0, "images": 0, "cost_micros": 0, "unpriced_images": 0}


def _add(total: dict[str, Any], record: dict[str, Any]) -> None:
    total["calls"] += 1
    images = int(record.get("images") or 0)
    total["images"] += images
    cost = record.get("estimated_cost_usd")
    if cost is None:
        total["unpriced_images"] += images
    else:
        total["cost_micros"] += to_micros(cost)


def _finish(total: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in total.items() if k != "cost_micros"}
    out["estimated_cost_usd"] = from_micros(total["cost_micros"])
    return out


def summarize(records: Iterable[dict[str, Any]], by: str | None = None) -> dict[str, Any]:
    """Totals (calls, images, estimated USD, images of unknown price), and the same per `by` field value."""
    total = _blank()
    groups: dict[str, dict[str, Any]] = {}
    for record in records:
        _add(total, record)
        if by is not None:
            _add(groups.setdefault(str(record.get(by) or "-"), _blank()), record)
    out = _finish(total)
    if by is not None:
        out["by_" + by] = {name: _finish(groups[name]) for name in sorted(groups)}
    return out
