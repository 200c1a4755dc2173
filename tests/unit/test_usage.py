"""Usage metering in-process (real SQLite store, real MCP client): prices, records, quotas, get_usage."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from mcp import Client

from imagegen_mcp.access.caller import Caller
from imagegen_mcp.catalog import Catalog, ModelSpec, _model_from_json, load_catalog
from imagegen_mcp.deps import build_deps
from imagegen_mcp.server import build_server
from imagegen_mcp.usage.prices import estimate_cost, price_per_image
from imagegen_mcp.usage.quotas import COUNTERS
from imagegen_mcp.usage.records import RECORDS

pytestmark = pytest.mark.anyio
PLACEHOLDER = "local/placeholder"


def _priced_placeholder(pricing: dict[str, Any] | None) -> ModelSpec:
    """The shipped placeholder entry with `pricing` set, parsed the way catalog.json entries are."""
    raw = json.loads(resources.files("imagegen_mcp").joinpath("catalog.json").read_text(encoding="utf-8"))
    entry = next(m for m in raw["models"] if m["id"] == PLACEHOLDER)
    return _model_from_json({**entry, "pricing": pricing}, raw["defaults"])


def _catalog(spec: ModelSpec) -> Catalog:
    shipped = load_catalog()
    return Catalog([spec if m.id == spec.id else m for m in shipped], shipped.default_model)


def test_cost_comes_from_catalog_prices_and_unknown_stays_null() -> None:
    flat = _priced_placeholder({"source": "https://example.test/pricing", "per_image": 0.04})
    assert price_per_image(flat) == 0.04
    assert estimate_cost(flat, images=3) == pytest.approx(0.12)
    assert estimate_cost(flat, images=0) == 0.0
    per_request = _priced_placeholder({"source": "s", "per_request": 0.01, "per_image": 0.02, "per_input_image": 0.005})
    assert estimate_cost(per_request, images=2, inputs=2) == pytest.approx(0.01 + 0.04 + 0.01)
    tokens_only = _priced_placeholder({"source": "s", "per_output_image_token": 3e-5})
    assert estimate_cost(tokens_only, images=1) is None and price_per_image(tokens_only) is None
    assert estimate_cost(_priced_placeholder(None), images=1) is None


async def _generate(client: Client, **args: Any) -> Any:
    return await client.call_tool("generate_image", {"prompt": "a lighthouse", "model": PLACEHOLDER, **args})


async def test_daily_image_quota_stops_calls_and_records_only_metered_ones(make_settings: Any) -> None:
    deps = build_deps(make_settings(quota_daily_images=5))
    async with Client(build_server(deps, in_process_caller=Caller(id="in-process-test", kind="none"))) as client:
        outcomes = [await _generate(client, n=2) for _ in range(4)]
        usage = await client.call_tool("get_usage", {})
    ok = [r for r in outcomes if not r.is_error]
    refused = [r.structured_content["error"] for r in outcomes if r.is_error]
    assert len(ok) == 2 and len(refused) == 2  # 2 + 2 images; a third call of 2 would make 6 > 5
    error = refused[0]
    assert error["code"] == "quota_exceeded" and error["retryable"] is False
    assert error["details"]["quota"] == "daily_images" and error["details"]["limit"] == 5
    assert error["details"]["used"] == 4 and error["details"]["resets_at"].endswith("T00:00:00Z")
    assert error["retry_after_seconds"] > 0
    assert ok[0].structured_content["estimated_cost_usd"] is None  # the placeholder's price is unknown (null)

    records = [doc.data for doc in await deps.state.scan(RECORDS)]
    assert len(records) == 2 and {r["outcome"] for r in records} == {"ok"}
    assert {r["images"] for r in records} == {2} and records[0]["caller"] == "in-process-test"
    counters = {doc.key: doc.data for doc in await deps.state.scan(COUNTERS)}
    day = next(v for k, v in counters.items() if "~day~" in k)
    assert day["images"] == sum(r["images"] for r in records) == 4  # refused calls took back what they added

    report = usage.structured_content
    assert report["today"]["images"] == 4 and report["month"]["calls"] == 2
    assert report["today"]["by_model"][PLACEHOLDER]["images"] == 4
    daily = next(q for q in report["quotas"] if q["quota"] == "daily_images")
    assert daily["limit"] == 5 and daily["used"] == 4 and daily["remaining"] == 1
    await deps.aclose()


async def test_monthly_budget_counts_estimated_cost(make_settings: Any) -> None:
    spec = _priced_placeholder({"source": "https://example.test/pricing", "per_image": 0.04})
    deps = build_deps(make_settings(quota_monthly_usd=0.1), catalog=_catalog(spec))
    async with Client(build_server(deps, in_process_caller=Caller(id="in-process-test", kind="none"))) as client:
        first = await _generate(client, n=2)
        second = await _generate(client, n=2)  # 0.08 + 0.08 > 0.10
        third = await _generate(client, n=1)  # 0.08 + 0.04 > 0.10
        listing = await client.call_tool("list_models", {})
        usage = await client.call_tool("get_usage", {})
    assert first.structured_content["estimated_cost_usd"] == pytest.approx(0.08)
    for refused in (second, third):
        error = refused.structured_content["error"]
        assert error["code"] == "quota_exceeded" and error["details"]["quota"] == "monthly_usd"
        assert error["details"]["limit"] == 0.1 and error["details"]["used"] == pytest.approx(0.08)
    entry = next(m for m in listing.structured_content["models"] if m["id"] == PLACEHOLDER)
    assert entry["price_per_image_usd"] == 0.04
    month = usage.structured_content["month"]
    assert month["estimated_cost_usd"] == pytest.approx(0.08) and month["unpriced_images"] == 0
    budget = next(q for q in usage.structured_content["quotas"] if q["quota"] == "monthly_usd")
    assert budget["remaining"] == pytest.approx(0.02)
    await deps.aclose()


async def test_spent_budget_also_stops_calls_of_unknown_price(make_settings: Any) -> None:
    deps = build_deps(make_settings(quota_monthly_usd=0))
    async with Client(build_server(deps, in_process_caller=Caller(id="in-process-test", kind="none"))) as client:
        result = await _generate(client)
    assert result.is_error and result.structured_content["error"]["code"] == "quota_exceeded"
    assert [doc.data for doc in await deps.state.scan(RECORDS)] == []
    await deps.aclose()


async def test_refused_before_the_upstream_records_nothing(make_settings: Any) -> None:
    deps = build_deps(make_settings(quota_daily_images=1))
    async with Client(build_server(deps, in_process_caller=Caller(id="in-process-test", kind="none"))) as client:
        bad = await _generate(client, n=2, aspect_ratio="7:3")  # invalid: refused before any reservation
        good = await _generate(client)
    assert bad.is_error and bad.structured_content["error"]["code"] == "invalid_argument"
    assert not good.is_error
    assert len(await deps.state.scan(RECORDS)) == 1
    await deps.aclose()


def test_key_records_carry_their_quotas_and_reject_bad_ones() -> None:
    from imagegen_mcp.access.keys import create_api_key, parse_key_file
    from imagegen_mcp.errors import ImageGenError

    _, record = create_api_key("design", daily_images=200, monthly_usd=50)
    assert record.to_json()["daily_images"] == 200 and record.to_json()["monthly_usd"] == 50
    parsed = parse_key_file(json.dumps({"keys": [record.to_json()]}))[0]
    assert (parsed.daily_images, parsed.monthly_usd) == (200, 50.0)
    _, plain = create_api_key("no limits")
    assert "daily_images" not in plain.to_json()  # draws on the deployment default
    for bad in ({"daily_images": -1}, {"daily_images": 1.5}, {"daily_images": True}, {"monthly_usd": "5"}):
        with pytest.raises(ImageGenError) as caught:
            parse_key_file(json.dumps({"keys": [{**plain.to_json(), **bad}]}))
        assert caught.value.code.value == "misconfigured"
    with pytest.raises(ImageGenError):
        create_api_key("x", daily_images=-1)


async def test_iam_budgets_own_limits_then_a_shared_domain_budget(make_settings: Any) -> None:
    from imagegen_mcp.access.caller import Caller
    from imagegen_mcp.usage.quotas import Quotas

    settings = make_settings(
        quota_daily_images=10,
        quota_monthly_usd=5,
        quotas={"Ann@Example.com": {"daily_images": 50}, "example.com": {"monthly_usd": 100}},
    )
    deps = build_deps(settings)
    quotas = Quotas(deps.state, settings, deps.auth)
    ann = await quotas.budgets(Caller("ann@example.com", "iam"))
    assert [(b.scope, b.daily_images, b.monthly_usd) for b in ann] == [
        ("principal:ann@example.com", 50, 5),
        ("domain:example.com", None, 100),
    ]
    bob = await quotas.budgets(Caller("bob@other.org", "iam"))
    assert [(b.scope, b.daily_images, b.monthly_usd) for b in bob] == [("principal:bob@other.org", 10, 5)]
    await deps.aclose()


async def test_a_domain_budget_is_shared_by_its_principals(make_settings: Any) -> None:
    from datetime import UTC, datetime

    from imagegen_mcp.access.caller import Caller
    from imagegen_mcp.usage.quotas import Quotas

    settings = make_settings(quotas={"example.com": {"daily_images": 3}})
    deps = build_deps(settings)
    quotas = Quotas(deps.state, settings, deps.auth)
    now = datetime.now(UTC)
    for who in ("ann@example.com", "bob@example.com", "cy@example.com"):
        await quotas.reserve(await quotas.budgets(Caller(who, "iam")), images=1, cost_micros=0, now=now)
    budgets = await quotas.budgets(Caller("dee@example.com", "iam"))
    with pytest.raises(Exception) as caught:
        await quotas.reserve(budgets, images=1, cost_micros=0, now=now)
    assert caught.value.details["scope"] == "domain:example.com"  # type: ignore[attr-defined]
    standing = {(q["scope"], q["quota"]): q["used"] for q in await quotas.standing(budgets, now)}
    assert standing[("principal:dee@example.com", "daily_images")] == 0  # the refusal took back dee's own image
    assert standing[("domain:example.com", "daily_images")] == 3
    await deps.aclose()


async def test_a_call_holds_all_its_counters_in_one_transaction_and_settles_in_at_most_one_more(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two budgets are four counters: one increment_all to hold them (one Firestore batch, not four round trips),
    none to settle a call that cost what it held, one to settle one that did not."""
    from datetime import UTC, datetime

    from imagegen_mcp.access.caller import Caller
    from imagegen_mcp.usage.quotas import Quotas

    settings = make_settings(quotas={"example.com": {"daily_images": 10}})
    deps = build_deps(settings)
    batches: list[int] = []
    real = deps.state.increment_all

    async def counted(collection: str, increments: Any) -> list[int]:
        batches.append(len(increments))
        return await real(collection, increments)

    monkeypatch.setattr(deps.state, "increment_all", counted)
    quotas = Quotas(deps.state, settings, deps.auth)
    budgets = await quotas.budgets(Caller("ann@example.com", "iam"))
    held = await quotas.reserve(budgets, images=2, cost_micros=500, now=datetime.now(UTC))
    assert batches == [4]
    await quotas.settle(held, images=2, cost_micros=500)
    assert batches == [4]
    await quotas.settle(held, images=1, cost_micros=500)  # one image fewer: the two day counters move
    assert batches == [4, 2]
    standing = {(q["scope"], q["quota"]): q["used"] for q in await quotas.standing(budgets, datetime.now(UTC))}
    assert standing[("principal:ann@example.com", "daily_images")] == 1
    assert standing[("domain:example.com", "daily_images")] == 1
    await deps.aclose()


def test_keys_create_prints_the_quotas_in_the_record(capsys: pytest.CaptureFixture[str]) -> None:
    from imagegen_mcp.cli import main

    assert main(["keys", "create", "--label", "design", "--daily-images", "200", "--monthly-usd", "50"]) == 0
    out = capsys.readouterr().out
    record = json.loads(out[out.index("{") : out.index("}") + 1])
    assert record["daily_images"] == 200 and record["monthly_usd"] == 50.0
