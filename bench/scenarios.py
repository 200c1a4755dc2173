"""The scenarios, each measuring the endpoint and the floor in the same run and returning report rows."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx2

from tests.support.servers import ENTRIES, free_port

from .client import CallFailed, McpHttp, call_once_sync
from .measure import burst, import_profile, median, run_load, start_profile, summarize_profile, tool_call
from .procs import (
    APP_DIRS,
    ENTRY_MODULES,
    ROOT,
    FakeUpstream,
    Proc,
    RssSampler,
    base_env,
    compile_like_the_image,
    private_local_dir,
    server_command,
    spawn,
    start_server,
)

MODEL = "openai/gpt-image-1"
# preview off: the floors return no image either; the preview row adds it back (it is on by default for users).
GEN_ARGS: dict[str, Any] = {"prompt": "a lighthouse at dusk, watercolour", "model": MODEL, "preview": False}
FLOOR_TOOL = "echo"
PAYLOAD_TOOL = "payload"
GCS_BUCKET = "bench-outputs"
# The targets of issue 18 (docs/performance.md): cold start against the floor, the 100-call burst with a 1 s upstream
# within 1.4 s (the upstream's delay + 0.4 s, so the quick plan's shorter delay scales), peak − idle RSS.
COLD_START_RATIO = 1.15
BURST_ALLOWANCE_S = 0.4
MEMORY_FACTOR = 1.5
MB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    """Counts and sizes of one run (`full()` for the report, `quick()` for the smoke test)."""

    quick: bool
    cold_runs: int
    warm_seconds: float
    warm_max_calls: int
    concurrency: int
    warm_image_bytes: int
    cold_image_bytes: int
    burst_calls: int
    burst_delay: float
    burst_image_bytes: int
    memory_image_bytes: int
    leak_calls: int
    leak_first: int
    leak_image_bytes: int
    gcs: bool
    profile_seconds: float
    jobs_blocks: int = 8
    jobs_calls: int = 30
    importtime_top: int = 12

    @classmethod
    def full(cls, *, gcs: bool = True, profile: bool = True) -> Plan:
        return cls(
            quick=False,
            cold_runs=7,
            warm_seconds=4.0,
            warm_max_calls=2000,
            concurrency=8,
            warm_image_bytes=2 * MB,
            cold_image_bytes=16 * 1024,
            burst_calls=100,
            burst_delay=1.0,
            burst_image_bytes=64 * 1024,
            memory_image_bytes=4 * MB,
            leak_calls=2000,
            leak_first=200,
            leak_image_bytes=256 * 1024,
            gcs=gcs,
            profile_seconds=5.0 if profile else 0.0,
        )

    @classmethod
    def quick_plan(cls, *, gcs: bool = True) -> Plan:
        """Tiny counts: keeps the harness from rotting (smoke test); the figures mean little."""
        return replace(
            cls.full(gcs=gcs, profile=False),
            quick=True,
            cold_runs=1,
            warm_seconds=0.3,
            warm_max_calls=12,
            burst_calls=10,
            burst_delay=0.3,
            memory_image_bytes=1 * MB,
            leak_calls=60,
            leak_first=20,
            leak_image_bytes=64 * 1024,
            jobs_blocks=2,
            jobs_calls=4,
        )


@dataclass
class Row:
    """One line of the table: a figure for the endpoint and the floor, their ratio, and the target it is held to."""

    scenario: str
    metric: str
    imagegen: float | None
    floor: float | None
    unit: str
    ratio: float | None
    target: str
    ok: bool | None

    @classmethod
    def compare(
        cls,
        scenario: str,
        metric: str,
        imagegen: float,
        floor: float,
        unit: str,
        *,
        at_most: float | None = None,
        at_least: float | None = None,
    ) -> Row:
        ratio = imagegen / floor if floor else None
        ok: bool | None = None
        target = "report"
        if at_most is not None:
            ok, target = ratio is not None and ratio <= at_most, f"ratio ≤ {at_most:g}"
        elif at_least is not None:
            ok, target = ratio is not None and ratio >= at_least, f"ratio ≥ {at_least:g}"
        return cls(scenario, metric, imagegen, floor, unit, _round(ratio), target, ok)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def endpoint_env(upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    """Settings that point the endpoint at the fake upstream, with per-caller limits off."""
    return {
        "OPENAI_API_KEY": "sk-bench-not-a-real-key",
        "IMAGEGEN_OPENAI_BASE_URL": upstream.base_url,
        "IMAGEGEN_PROVIDERS": "openai",
        "IMAGEGEN_DEFAULT_MODEL": MODEL,
        "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
        "IMAGEGEN_LOG_LEVEL": "WARNING",
        **extra,
    }


@contextlib.contextmanager
def gcs_env() -> Iterator[dict[str, str]]:
    """fake-gcs-server with the output bucket, and a generated service-account key so URLs are signed locally."""
    from tests.fakes.gcs_server import start_fake_gcs
    from tests.fakes.iam_credentials_server import generate_rsa_key, service_account_info

    with tempfile.TemporaryDirectory(prefix="bench-gcs-") as tmp, start_fake_gcs((GCS_BUCKET,)) as emulator:
        key_file = Path(tmp) / "sa-key.json"
        info = service_account_info("bench-runtime@bench-project.iam.gserviceaccount.com", generate_rsa_key())
        key_file.write_text(json.dumps(info), encoding="utf-8")
        yield {
            "IMAGEGEN_STORAGE": "gcs",
            "IMAGEGEN_BUCKET": GCS_BUCKET,
            "STORAGE_EMULATOR_HOST": emulator,
            "GOOGLE_CLOUD_PROJECT": "bench-project",
            "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        }


# --- 1. cold start ---------------------------------------------------------------------------------------------
def _spawn_to_first_call(
    http: httpx2.Client, app: str, entry: str, env: dict[str, str], tool: str, args: dict[str, Any]
) -> tuple[float, float]:
    """(wall seconds, server CPU seconds) from spawn to the first successful call."""
    port = free_port()
    full_env = base_env({"IMAGEGEN_LOCAL_DIR": private_local_dir("bench-cold-"), **env})
    with spawn(server_command(app, entry, port), full_env, port=port, name=f"cold-{app}") as proc:
        deadline = time.monotonic() + 60
        while True:
            try:
                call_once_sync(http, proc.mcp_url, tool, args, timeout=30.0)
                return time.perf_counter() - proc.spawned_at, proc.cpu_seconds()
            except (httpx2.HTTPError, CallFailed) as exc:
                proc.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{app}/{entry}: no successful call within 60 s: {exc}") from exc
                time.sleep(0.01)


def cold_start(plan: Plan, upstream: FakeUpstream) -> tuple[dict[str, Any], list[Row]]:
    compile_like_the_image()
    upstream.configure(image_bytes=plan.cold_image_bytes, delay=0.0)
    env = endpoint_env(upstream)
    runs: dict[str, dict[str, list[float]]] = {entry: {"imagegen": [], "floor": []} for entry in ENTRIES}
    cpu: dict[str, dict[str, list[float]]] = {entry: {"imagegen": [], "floor": []} for entry in ENTRIES}
    probes = {"imagegen": (env, "generate_image", GEN_ARGS), "floor": ({}, FLOOR_TOOL, {"text": "ping"})}
    with httpx2.Client(trust_env=False) as http:
        for index in range(plan.cold_runs):  # interleaved, order alternating: machine noise hits both alike
            for entry in ENTRIES:
                for app in ("imagegen", "floor") if index % 2 == 0 else ("floor", "imagegen"):
                    app_env, tool, args = probes[app]
                    wall, seconds = _spawn_to_first_call(http, app, entry, app_env, tool, args)
                    runs[entry][app].append(wall)
                    cpu[entry][app].append(seconds)
    rows: list[Row] = []
    entries: dict[str, Any] = {}
    for entry in ENTRIES:
        mine, floor = median(runs[entry]["imagegen"]), median(runs[entry]["floor"])
        row = Row.compare(
            "1 cold start", f"{entry}: spawn → first call (median)", mine, floor, "s", at_most=COLD_START_RATIO
        )
        rows.append(row)
        # CPU until the first answer moves much less with the machine's load than the wall time does.
        mine_cpu, floor_cpu = median(cpu[entry]["imagegen"]), median(cpu[entry]["floor"])
        rows.append(Row.compare("1 cold start", f"{entry}: server CPU, spawn → first call", mine_cpu, floor_cpu, "s"))
        entries[entry] = {
            "imagegen_runs_s": [round(v, 4) for v in runs[entry]["imagegen"]],
            "floor_runs_s": [round(v, 4) for v in runs[entry]["floor"]],
            "imagegen_cpu_s": [round(v, 4) for v in cpu[entry]["imagegen"]],
            "floor_cpu_s": [round(v, 4) for v in cpu[entry]["floor"]],
            **asdict(row),
        }
    function_dir, bench_dir = APP_DIRS["imagegen"], APP_DIRS["floor"]
    # The Cloud Run shape too: GCS store, Secret Manager, every provider (nothing is contacted at import).
    cloud = {
        "IMAGEGEN_STORAGE": "gcs",
        "IMAGEGEN_BUCKET": GCS_BUCKET,
        "IMAGEGEN_SECRETS": "secret-manager",
        "GOOGLE_CLOUD_PROJECT": "bench-project",
        "IMAGEGEN_AUTH": "none",
    }
    top = plan.importtime_top
    importtime = {
        "imagegen_bench_config": import_profile(ENTRY_MODULES["imagegen"], function_dir, base_env(env), top),
        "imagegen_default_config": import_profile(ENTRY_MODULES["imagegen"], function_dir, base_env(), top),
        "imagegen_cloud_config": import_profile(ENTRY_MODULES["imagegen"], function_dir, base_env(cloud), top),
        "floor": import_profile(ENTRY_MODULES["floor"], bench_dir, base_env(), top),
    }
    imports = importtime["imagegen_bench_config"]["total_ms"], importtime["floor"]["total_ms"]
    rows.append(Row.compare("1 cold start", "import time of the entry module", *imports, "ms"))
    heavy = {h["module"] for key, value in importtime.items() if key != "floor" for h in value["heavy_sdk_modules"]}
    rows.append(
        Row("1 cold start", "heavy SDK modules imported at startup", len(heavy), 0, "modules", None, "= 0", not heavy)
    )
    return {
        "runs": plan.cold_runs,
        "image_bytes": plan.cold_image_bytes,
        "entries": entries,
        "importtime": importtime,
    }, rows


# --- 2. warm throughput and CPU per call; 6. what jobs and the preview cost ---------------------------------------
async def _warm(proc: Proc, tool: str, args: dict[str, Any], plan: Plan, concurrency: int) -> dict[str, Any]:
    """Calls back to back for `plan.warm_seconds`; calls/s, latencies and the server's CPU per call."""
    async with McpHttp(proc.mcp_url) as client:
        await run_load(
            tool_call(client, tool, args), concurrency=concurrency, max_calls=concurrency, min_calls=concurrency
        )
        cpu_before = proc.cpu_seconds()
        load = await run_load(
            tool_call(client, tool, args),
            concurrency=concurrency,
            duration=plan.warm_seconds,
            max_calls=plan.warm_max_calls,
            min_calls=concurrency,
        )
        cpu = proc.cpu_seconds() - cpu_before
    return {**load.as_dict(), "cpu_ms_per_call": round(cpu * 1000 / load.calls, 3)}


def _jobs_cost(plan: Plan, upstream: FakeUpstream) -> dict[str, Any]:
    """bench.jobs_cost in its own process: CPU per call with and without the job around the pipeline."""
    command = [sys.executable, "-m", "bench.jobs_cost", "--blocks", str(plan.jobs_blocks)]
    command += ["--calls", str(plan.jobs_calls)]
    env = base_env({**endpoint_env(upstream), "PYTHONPATH": os.pathsep.join((str(ROOT), str(ROOT / "function")))})
    env["IMAGEGEN_LOCAL_DIR"] = private_local_dir("bench-jobs-cost-")
    done = subprocess.run(command, env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.jobs_cost failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _speed_rows(
    store: str, level: int, mine: dict[str, Any], floor: dict[str, Any], payload: dict[str, Any]
) -> list[Row]:
    name = f"{store} store, {level}-way"
    scenario = "2 warm throughput"
    return [
        Row.compare(scenario, f"{name}: calls/s", mine["calls_per_s"], floor["calls_per_s"], "calls/s"),
        Row.compare(
            scenario, f"{name}: calls/s vs payload floor", mine["calls_per_s"], payload["calls_per_s"], "calls/s"
        ),
        Row.compare(scenario, f"{name}: p50 (floor: payload floor)", mine["p50_ms"], payload["p50_ms"], "ms"),
        Row.compare(scenario, f"{name}: p99 (floor: payload floor)", mine["p99_ms"], payload["p99_ms"], "ms"),
    ]


def warm_throughput(plan: Plan, upstream: FakeUpstream, workdir: Path) -> tuple[dict[str, Any], list[Row]]:
    described = upstream.configure(image_bytes=plan.warm_image_bytes, delay=0.0)
    levels = (1, plan.concurrency)
    top = plan.concurrency
    floors: dict[int, dict[str, Any]] = {}
    payload: dict[int, dict[str, Any]] = {}
    with start_server("floor", {}) as floor:
        for level in levels:
            floors[level] = asyncio.run(_warm(floor, FLOOR_TOOL, {"text": "ping"}, plan, level))
            payload[level] = asyncio.run(_warm(floor, PAYLOAD_TOOL, {"url": upstream.base_url}, plan, level))
    stores: list[tuple[str, contextlib.AbstractContextManager[dict[str, str]]]] = [
        ("local", contextlib.nullcontext({}))
    ]
    if plan.gcs:
        stores.append(("gcs", gcs_env()))
    cells: list[dict[str, Any]] = []
    rows: list[Row] = []
    cpu: dict[str, dict[str, Any]] = {}
    profile: dict[str, Any] = {"skipped": "disabled (--quick or --no-profile)"}
    for store, store_env in stores:
        with store_env as extra, start_server("imagegen", endpoint_env(upstream, **extra)) as server:
            for level in levels:
                mine = asyncio.run(_warm(server, "generate_image", GEN_ARGS, plan, level))
                rows += _speed_rows(store, level, mine, floors[level], payload[level])
                ratio = _round(mine["calls_per_s"] / payload[level]["calls_per_s"])
                cells.append(
                    {
                        "store": store,
                        "concurrency": level,
                        "imagegen": mine,
                        "floor": floors[level],
                        "payload_floor": payload[level],
                        "ratio_to_payload_floor": ratio,
                    }
                )
                if level == top:
                    cpu[store] = mine
            if store == "local":
                cpu["preview"] = asyncio.run(_warm(server, "generate_image", {**GEN_ARGS, "preview": True}, plan, top))
                if plan.profile_seconds > 0:
                    profile = _profile(server, plan, workdir)
    jobs = _jobs_cost(plan, upstream)
    scenario = "2 warm CPU per call"
    rows.append(
        Row.compare(
            scenario,
            f"payload floor: server CPU per call ({top}-way; floor: bare floor)",
            payload[top]["cpu_ms_per_call"],
            floors[top]["cpu_ms_per_call"],
            "ms",
        )
    )
    local_cpu = Row.compare(
        scenario,
        f"local store: server CPU per call ({top}-way; floor: payload floor)",
        cpu["local"]["cpu_ms_per_call"],
        payload[top]["cpu_ms_per_call"],
        "ms",
        at_most=1.0,
    )
    rows.append(local_cpu)
    if "gcs" in cpu:
        rows.append(
            Row.compare(
                scenario,
                f"gcs store: server CPU per call ({top}-way; floor: payload floor; adds the upload)",
                cpu["gcs"]["cpu_ms_per_call"],
                payload[top]["cpu_ms_per_call"],
                "ms",
            )
        )
    scenario = "2 jobs and preview"
    rows.append(
        Row.compare(
            scenario,
            "jobs (wait_seconds default): CPU per call spent on the job (floor: the whole call; in-process)",
            max(jobs["jobs_cpu_ms_per_call"], 0.0),
            jobs["job_cpu_ms_per_call"],
            "ms",
            at_most=0.1,
        )
    )
    rows.append(
        Row.compare(
            scenario,
            f"preview on: server CPU per call ({top}-way, local; floor: preview off)",
            cpu["preview"]["cpu_ms_per_call"],
            cpu["local"]["cpu_ms_per_call"],
            "ms",
            at_most=1.1,
        )
    )
    # What no preview of a PNG can avoid: decoding it once (PNG has no reduced-scale decode, unlike JPEG).
    decode_ms = _png_decode_ms(plan.warm_image_bytes)
    preview_extra = cpu["preview"]["cpu_ms_per_call"] - cpu["local"]["cpu_ms_per_call"]
    rows.append(
        Row.compare(
            scenario,
            "preview: one decode of the output PNG (bench process; floor: what the preview added per call)",
            decode_ms,
            max(preview_extra, 0.0),
            "ms",
        )
    )
    result = {
        "png_bytes": described["png_size"],
        "cells": cells,
        "payload_floor": payload,
        "cpu_per_call": cpu,
        "jobs_cost": jobs,
        "profile": profile,
    }
    return result, rows


def _png_decode_ms(image_bytes: int, rounds: int = 5, calls: int = 10) -> float:
    """CPU of decoding one PNG like the upstream's (same size, random pixels) in this process, best of `rounds`."""
    import io

    from PIL import Image

    from .fake_upstream import noise_png

    png = noise_png(image_bytes)
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(calls):
            with Image.open(io.BytesIO(png)) as image:
                image.load()
        best = min(best, (time.process_time() - began) * 1000 / calls)
    return round(best, 3)


def _profile(server: Proc, plan: Plan, workdir: Path) -> dict[str, Any]:
    """py-spy (all threads, busy samples only) on the endpoint while it serves the concurrent load."""
    out = workdir / "warm-local-profile.txt"
    spy = start_profile(server.pid, plan.profile_seconds, out)
    if spy is None:
        return {"skipped": "py-spy not installed (pip install py-spy)"}
    time.sleep(0.3)  # py-spy attaches
    busy = replace(plan, warm_seconds=plan.profile_seconds + 0.5)
    load = asyncio.run(_warm(server, "generate_image", GEN_ARGS, busy, plan.concurrency))
    return {"load_during_profile": load, **_finish_profile(spy, out, plan.profile_seconds, plan.concurrency)}


def _finish_profile(spy: subprocess.Popen[bytes], out: Path, seconds: float, concurrency: int) -> dict[str, Any]:
    try:
        spy.wait(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()
    if not out.exists():
        return {"skipped": f"py-spy could not record (exit {spy.returncode}; it needs ptrace permission)"}
    return {"tool": "py-spy", "seconds": seconds, "concurrency": concurrency, **summarize_profile(out)}


# --- 3 + 4. concurrency and memory ------------------------------------------------------------------------------
async def _burst_with_rss(
    proc: Proc, tool: str, args: dict[str, Any], count: int, upstream: FakeUpstream | None = None
) -> dict[str, Any]:
    """One warm-up call, the idle RSS, then `count` calls at once with RSS sampled throughout."""
    async with McpHttp(proc.mcp_url, connections=count + 8) as client:
        await client.call(tool, args)
        await asyncio.sleep(0.2)
        idle = proc.rss()
        if upstream is not None:
            upstream.configure(reset_calls=True)
        cpu_before = proc.cpu_seconds()
        with RssSampler(proc.pid) as sampler:
            seconds, latencies = await burst(client, tool, args, count)
        cpu = proc.cpu_seconds() - cpu_before
    seen = upstream.configure() if upstream is not None else {}
    return {
        "upstream_arrival_spread_s": seen.get("arrival_spread_s"),
        "calls": count,
        "wall_s": round(seconds, 4),
        "slowest_call_s": round(max(latencies), 4),
        # Server CPU over the burst (RSS sampling included, for both sides alike): far steadier than the wall time.
        "cpu_ms_per_call": round(cpu * 1000 / count, 3),
        "idle_rss_bytes": idle,
        "peak_rss_bytes": sampler.peak,
        "rss_samples": sampler.samples,
        "peak_minus_idle_bytes": sampler.peak - idle,
    }


def _burst_profile(server: Proc, plan: Plan, workdir: Path) -> dict[str, Any]:
    """py-spy over one more burst: what the process is busy with once the upstream answers."""
    out = workdir / "burst-profile.txt"
    seconds = plan.burst_delay + 2.0
    spy = start_profile(server.pid, seconds, out)
    if spy is None:
        return {"skipped": "py-spy not installed (pip install py-spy)"}
    time.sleep(0.3)
    asyncio.run(_burst_with_rss(server, "generate_image", GEN_ARGS, plan.burst_calls))
    return _finish_profile(spy, out, seconds, plan.burst_calls)


def concurrency_and_memory(plan: Plan, upstream: FakeUpstream, workdir: Path) -> tuple[dict[str, Any], list[Row]]:
    floor_args = {"text": "ping", "delay": plan.burst_delay}
    described = upstream.configure(image_bytes=plan.burst_image_bytes, delay=plan.burst_delay)
    with start_server("floor", {}) as floor:
        floor_burst = asyncio.run(_burst_with_rss(floor, FLOOR_TOOL, floor_args, plan.burst_calls))
        # What is reachable with the per-image work: the payload floor, same upstream, delay and image size.
        payload_args = {"url": upstream.base_url}
        payload_burst = asyncio.run(_burst_with_rss(floor, PAYLOAD_TOOL, payload_args, plan.burst_calls, upstream))
    payload_burst["png_bytes"] = described["png_size"]
    runs: dict[str, dict[str, Any]] = {}
    for name, size in (("concurrency", plan.burst_image_bytes), ("memory", plan.memory_image_bytes)):
        described = upstream.configure(image_bytes=size, delay=plan.burst_delay)
        with start_server("imagegen", endpoint_env(upstream)) as server:
            runs[name] = asyncio.run(_burst_with_rss(server, "generate_image", GEN_ARGS, plan.burst_calls, upstream))
            if name == "concurrency" and plan.profile_seconds > 0:
                runs[name]["profile"] = _burst_profile(server, plan, workdir)
        runs[name]["png_bytes"] = described["png_size"]
    upstream.configure(delay=0.0)
    limit = plan.burst_delay + BURST_ALLOWANCE_S
    conc = runs["concurrency"]
    rows = [
        Row.compare(
            "3 concurrency",
            f"{plan.burst_calls} calls at once, {plan.burst_delay:g} s upstream: wall",
            conc["wall_s"],
            floor_burst["wall_s"],
            "s",
        ),
    ]
    rows[0].target, rows[0].ok = f"≤ {limit:g} s", conc["wall_s"] <= limit
    burst_name = f"{plan.burst_calls} calls at once"
    rows.append(
        Row.compare(
            "3 concurrency",
            f"{burst_name}: wall (floor: payload floor)",
            conc["wall_s"],
            payload_burst["wall_s"],
            "s",
        )
    )
    rows.append(
        Row.compare(
            "3 concurrency",
            f"{burst_name}: server CPU per call (floor: payload floor)",
            conc["cpu_ms_per_call"],
            payload_burst["cpu_ms_per_call"],
            "ms",
        )
    )
    # How far apart the calls reached the upstream: near 0 means they all overlapped its delay (no lock, no queue).
    rows.append(
        Row.compare(
            "3 concurrency",
            "first → last request seen by the upstream (floor: payload floor)",
            conc["upstream_arrival_spread_s"],
            payload_burst["upstream_arrival_spread_s"],
            "s",
        )
    )
    mem = runs["memory"]
    in_flight = plan.burst_calls * mem["png_bytes"]
    growth = Row.compare(
        "4 memory",
        f"peak − idle RSS, {plan.burst_calls} × {mem['png_bytes'] / MB:.1f} MB in flight",
        mem["peak_minus_idle_bytes"] / MB,
        floor_burst["peak_minus_idle_bytes"] / MB,
        "MB",
    )
    growth.target, growth.ok = (
        f"≤ {MEMORY_FACTOR * in_flight / MB:.0f} MB ({MEMORY_FACTOR:g} × in flight)",
        mem["peak_minus_idle_bytes"] <= MEMORY_FACTOR * in_flight,
    )
    rows.append(growth)
    rows.append(
        Row.compare(
            "4 memory",
            f"same burst with {mem['png_bytes'] / MB:.1f} MB images: wall",
            mem["wall_s"],
            floor_burst["wall_s"],
            "s",
        )
    )
    leak, leak_rows = _leak(plan, upstream)
    rows += leak_rows
    result = {
        "floor_burst": floor_burst,
        "payload_floor_burst": payload_burst,
        "concurrency": conc,
        "memory": mem,
        "in_flight_image_bytes": in_flight,
        "leak": leak,
    }
    return result, rows


async def _calls_with_rss(proc: Proc, tool: str, args: dict[str, Any], plan: Plan) -> dict[str, Any]:
    async with McpHttp(proc.mcp_url) as client:
        call = tool_call(client, tool, args)
        first = await run_load(call, concurrency=plan.concurrency, max_calls=plan.leak_first)
        after_first = proc.rss()
        rest = await run_load(call, concurrency=plan.concurrency, max_calls=plan.leak_calls - plan.leak_first)
        after_all = proc.rss()
    return {
        "calls": first.calls + rest.calls,
        "rss_after_first_bytes": after_first,
        "rss_after_all_bytes": after_all,
        "ratio": round(after_all / after_first, 4),
    }


def _leak(plan: Plan, upstream: FakeUpstream) -> tuple[dict[str, Any], list[Row]]:
    described = upstream.configure(image_bytes=plan.leak_image_bytes, delay=0.0)
    with start_server("floor", {}) as floor:
        floor_run = asyncio.run(_calls_with_rss(floor, FLOOR_TOOL, {"text": "ping"}, plan))
    with start_server("imagegen", endpoint_env(upstream)) as server:
        mine = asyncio.run(_calls_with_rss(server, "generate_image", GEN_ARGS, plan))
    row = Row.compare(
        "4 memory",
        f"RSS after {plan.leak_calls} calls / after {plan.leak_first}",
        mine["ratio"],
        floor_run["ratio"],
        "×",
    )
    row.ratio = None  # both figures are already ratios; the target is on the endpoint's own
    row.target, row.ok = "≤ 1.2", mine["ratio"] <= 1.2
    return {"png_bytes": described["png_size"], "imagegen": mine, "floor": floor_run}, [row]


# --- 5. result size --------------------------------------------------------------------------------------------
def result_size(plan: Plan, upstream: FakeUpstream) -> tuple[dict[str, Any], list[Row]]:
    described = upstream.configure(image_bytes=plan.warm_image_bytes, delay=0.0)

    async def measure(url: str, tool: str, args: dict[str, Any]) -> int:
        async with McpHttp(url) as client:
            return (await client.call(tool, args)).message_bytes

    with start_server("floor", {}) as floor:
        floor_bytes = asyncio.run(measure(floor.mcp_url, FLOOR_TOOL, {"text": "ping"}))
    with start_server("imagegen", endpoint_env(upstream)) as server:
        plain = asyncio.run(measure(server.mcp_url, "generate_image", {**GEN_ARGS, "preview": False}))
        with_preview = asyncio.run(measure(server.mcp_url, "generate_image", {**GEN_ARGS, "preview": True}))
    rows = [
        Row.compare("5 result size", "JSON-RPC result, no preview", plain, floor_bytes, "bytes"),
        Row.compare("5 result size", "JSON-RPC result, with preview", with_preview, floor_bytes, "bytes"),
    ]
    rows[0].target, rows[0].ok = "≤ 2048 bytes", plain <= 2048
    rows[1].target, rows[1].ok = "≤ 65536 bytes", with_preview <= 65536
    return {
        "png_bytes": described["png_size"],
        "no_preview_bytes": plain,
        "preview_bytes": with_preview,
        "floor_bytes": floor_bytes,
    }, rows
