"""The get_usage tool: the caller's own usage today and this month, per model, and what is left of each quota."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..errors import ImageGenError
from ..usage.meter import UsageMeter
from ..usage.quotas import caller_scope, day_of, day_start, month_of, month_start
from ..usage.records import iso_micro, summarize
from .framing import ErrorBody, Surface

if TYPE_CHECKING:
    from ..access.caller import Caller


class UsageTotals(BaseModel):
    calls: int = Field(description="Metered calls (those that reached the upstream, failed ones included).")
    images: int
    estimated_cost_usd: float = Field(description="Sum of the priced calls' estimates.")
    unpriced_images: int = Field(description="Images of models whose price is unknown (not in the estimate).")


class UsagePeriod(UsageTotals):
    period: str = Field(description="The UTC day (YYYY-MM-DD) or calendar month (YYYY-MM).")
    by_model: dict[str, UsageTotals]


class QuotaStanding(BaseModel):
    scope: str = Field(description="The budget: key:<id>, principal:<email>, domain:<domain> or caller:<id>.")
    quota: str = Field(description="daily_images or monthly_usd.")
    limit: float | None = Field(description="null: unlimited.")
    used: float = Field(description="Spent plus held by calls in flight.")
    remaining: float | None
    resets_at: str


class UsageReport(BaseModel):
    """Result of get_usage; an error result carries only `error`."""

    caller: str | None = None
    scope: str | None = None
    today: UsagePeriod | None = None
    month: UsagePeriod | None = None
    quotas: list[QuotaStanding] = Field(default_factory=list)
    error: ErrorBody | None = None


async def usage_report(meter: UsageMeter, caller: Caller, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    scope = caller_scope(caller)
    month = await meter.usage_log.of_scope(scope, month_start(now), now + timedelta(seconds=1))
    since_midnight = iso_micro(day_start(now))
    today = [r for r in month if r.get("time", "") >= since_midnight]
    standing = await meter.quotas.standing(await meter.quotas.budgets(caller), now)
    return {
        "caller": caller.id,
        "scope": scope,
        "today": {"period": day_of(now), **summarize(today, "model")},
        "month": {"period": month_of(now), **summarize(month, "model")},
        "quotas": standing,
    }


def _text(report: dict[str, Any]) -> str:
    today, month = report["today"], report["month"]
    lines = [
        f"Usage of {report['scope']}: today {today['images']} image(s), ${today['estimated_cost_usd']:.4f}; "
        f"this month {month['images']} image(s), ${month['estimated_cost_usd']:.4f} (estimated)."
    ]
    for q in report["quotas"]:
        if q["limit"] is not None:
            lines.append(f"{q['scope']} {q['quota']}: {q['used']:g} of {q['limit']:g} used, resets {q['resets_at']}.")
    return "\n".join(lines)


def register(surface: Surface) -> None:
    """Register get_usage."""
    meter = surface.tools.usage
    spec_name = "get_usage"

    @surface.tool(
        name=spec_name,
        error_fields={},
        title="Get my usage",
        description=(
            "Your own usage today and this month (UTC): images, estimated cost in USD, per model, and what is left "
            "of each quota (images per day, estimated USD per month)."
        ),
        annotations=ToolAnnotations(
            title="Get my usage",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def get_usage(ctx: Context) -> Annotated[CallToolResult, UsageReport]:
        try:
            report = await usage_report(meter, surface.call_context(ctx).caller)
        except ImageGenError as err:
            return surface.specs[spec_name].error_result(err)
        return CallToolResult(content=[TextContent(type="text", text=_text(report))], structured_content=report)
