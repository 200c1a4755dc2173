"""Quotas across instances: two server processes share one store (SQLite file or the Firestore emulator)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.types import CallToolResult

from imagegen_mcp.access.keys import KeyRecord, create_api_key
from imagegen_mcp.config import Settings
from imagegen_mcp.deps import build_state
from imagegen_mcp.usage.quotas import COUNTERS
from imagegen_mcp.usage.records import RECORDS
from tests.fakes.openai_server import start_fake_openai
from tests.integration.reliability_support import error_code, log_records, mcp_client, openai_env
from tests.support.servers import ServerHandle, start_server

pytestmark = pytest.mark.anyio
PLACEHOLDER = "local/placeholder"
CALLS, CONCURRENCY, DAILY_IMAGES = 400, 32, 100


@pytest.fixture(params=["sqlite", "firestore"])
def state_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {"IMAGEGEN_STATE": "local", "IMAGEGEN_STATE_PATH": str(tmp_path / "state.sqlite3")}
    host = request.getfixturevalue("firestore_emulator")
    # A project of its own per test: counters and records of other tests sharing the emulator stay apart.
    project = f"usage-{tmp_path.name[-20:].lower().replace('_', '-')}".strip("-")
    return {"IMAGEGEN_STATE": "firestore", "FIRESTORE_EMULATOR_HOST": host, "GOOGLE_CLOUD_PROJECT": project}


def _keys(*records: KeyRecord) -> str:
    return json.dumps({"keys": [r.to_json() for r in records]})


async def _stored(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every usage record and counter in the shared store, read with the production backend."""
    for name in ("FIRESTORE_EMULATOR_HOST",):
        if name in env:
            monkeypatch.setenv(name, env[name])
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        state=env["IMAGEGEN_STATE"],
        state_path=env.get("IMAGEGEN_STATE_PATH"),
        google_cloud_project=env.get("GOOGLE_CLOUD_PROJECT"),
    )
    state = build_state(settings)
    try:
        records = [doc.data for doc in await state.scan(RECORDS)]
        counters = {doc.key: doc.data for doc in await state.scan(COUNTERS)}
    finally:
        await state.aclose()
    return records, counters


def _usage_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).parent / "imagegen-mcp"
    return subprocess.run([str(cli), "usage", *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _usage_lines(*handles: ServerHandle) -> list[dict[str, Any]]:
    return [r for h in handles for r in log_records(h) if r.get("event") == "usage"]


async def test_two_servers_enforce_one_daily_quota_exactly(
    state_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, record = create_api_key("quota test", daily_images=DAILY_IMAGES)
    env = {
        "IMAGEGEN_AUTH": "bearer",
        "IMAGEGEN_API_KEYS": _keys(record),
        "IMAGEGEN_DEFAULT_MODEL": PLACEHOLDER,
        "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
        **state_env,
    }
    headers = {"Authorization": f"Bearer {key}"}
    results: list[CallToolResult] = []
    with start_server(env) as first, start_server(env) as second:
        async with (
            mcp_client(first.mcp_url, headers=headers, timeout=120) as a,
            mcp_client(second.mcp_url, headers=headers, timeout=120) as b,
        ):
            limiter = anyio.Semaphore(CONCURRENCY)

            async def call(i: int) -> None:
                async with limiter:
                    client = a if i % 2 else b
                    results.append(
                        await client.call_tool("generate_image", {"prompt": f"tile {i}", "wait_seconds": 60})
                    )

            with anyio.fail_after(300):  # a bound, not a speed target: the machine is shared
                async with anyio.create_task_group() as group:
                    for i in range(CALLS):
                        group.start_soon(call, i)
            usage = await a.call_tool("get_usage", {})
        lines = _usage_lines(first, second)

    codes = Counter(error_code(r) for r in results)
    assert codes == {None: DAILY_IMAGES, "quota_exceeded": CALLS - DAILY_IMAGES}, codes
    refusal = next(r for r in results if r.is_error).structured_content["error"]  # type: ignore[index]
    assert refusal["details"]["limit"] == DAILY_IMAGES and refusal["details"]["scope"] == f"key:{record.id}"

    records, counters = await _stored(env, monkeypatch)
    assert len(records) == DAILY_IMAGES
    assert all(r["key_id"] == record.id and r["key_label"] == "quota test" and r["outcome"] == "ok" for r in records)
    assert all(r["job_id"] and r["request_id"] and r["model"] == PLACEHOLDER for r in records)
    day = next(v for k, v in counters.items() if k.startswith(f"key:{record.id}~day~"))
    assert day["images"] == sum(r["images"] for r in records) == DAILY_IMAGES
    assert len(lines) == DAILY_IMAGES and {line["job_id"] for line in lines} == {r["job_id"] for r in records}

    report = usage.structured_content or {}
    assert report["today"]["images"] == DAILY_IMAGES and report["today"]["calls"] == DAILY_IMAGES
    assert report["today"]["by_model"][PLACEHOLDER]["images"] == DAILY_IMAGES
    daily = next(q for q in report["quotas"] if q["quota"] == "daily_images")
    assert (daily["limit"], daily["used"], daily["remaining"]) == (DAILY_IMAGES, DAILY_IMAGES, 0)

    cli = _usage_cli({**first.env, **env}, "--json", "--by", "key")
    assert cli.returncode == 0, cli.stderr
    printed = json.loads(cli.stdout)
    assert printed["groups"][record.id]["images"] == report["month"]["images"] == DAILY_IMAGES
    assert printed["groups"][record.id]["estimated_cost_usd"] == report["month"]["estimated_cost_usd"]
    table = _usage_cli({**first.env, **env}, "--by", "model")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith(PLACEHOLDER))
    assert row.split()[1:3] == [str(DAILY_IMAGES), str(DAILY_IMAGES)]  # calls, images


async def test_failed_upstream_call_releases_its_reservation(
    state_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, record = create_api_key("one a day", daily_images=1)
    headers = {"Authorization": f"Bearer {key}"}
    with start_fake_openai(fault_500=1.0) as (base_url, fake):
        env = openai_env(
            base_url,
            IMAGEGEN_AUTH="bearer",
            IMAGEGEN_API_KEYS=_keys(record),
            IMAGEGEN_UPSTREAM_MAX_ATTEMPTS="1",
            **state_env,
        )
        with start_server(env) as server:
            async with mcp_client(server.mcp_url, headers=headers) as client:
                failed = await client.call_tool("generate_image", {"prompt": "fails upstream"})
                fake.fault_500 = 0.0
                succeeded = await client.call_tool("generate_image", {"prompt": "works now"})
                refused = await client.call_tool("generate_image", {"prompt": "one too many"})
            lines = _usage_lines(server)
    assert error_code(failed) == "upstream_error"
    assert error_code(succeeded) is None  # the failed call took its image back: the quota of 1 was still free
    assert error_code(refused) == "quota_exceeded"
    assert fake.counts["500"] == 1 and fake.counts["ok"] == 1  # the refused call never reached the upstream

    records, counters = await _stored(env, monkeypatch)
    outcomes = sorted((r["outcome"], r["images"]) for r in records)
    assert outcomes == [("ok", 1), ("upstream_error", 0)]
    day = next(v for k, v in counters.items() if k.startswith(f"key:{record.id}~day~"))
    assert day["images"] == 1
    assert sorted(line["outcome"] for line in lines) == ["ok", "upstream_error"]
