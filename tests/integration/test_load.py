"""Bounded load through the MCP endpoint with injected upstream faults: all calls answered, no 5xx, leaks or orphans.

The full run (2,000 calls at concurrency 64) is marked slow; a 200-call variant runs in the default suite.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import anyio
import psutil
import pytest

from tests.fakes.openai_server import start_fake_openai
from tests.integration.reliability_support import (
    HttpRecord,
    error_code,
    generate,
    mcp_client,
    openai_env,
    output_files,
)
from tests.support.servers import ServerHandle, start_server

FAULT_CODES = {"rate_limited", "upstream_error", "upstream_timeout"}
DEADLINE = 6.0


@dataclass
class Sample:
    done: int
    rss: int
    fds: int


@dataclass
class LoadReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    slowest: float = 0.0
    ids: list[str] = field(default_factory=list)


def sample(process: psutil.Process, done: int) -> Sample:
    return Sample(done, process.memory_info().rss, process.num_fds())


async def run_load(handle: ServerHandle, calls: int, concurrency: int, record: HttpRecord) -> LoadReport:
    report = LoadReport()
    process = psutil.Process(handle.process.pid)
    next_call = 0
    done = 0
    checkpoints = {calls * q // 4 for q in (1, 2, 3, 4)}

    async def worker() -> None:
        nonlocal next_call, done
        async with mcp_client(handle.mcp_url, record=record, timeout=DEADLINE + 20) as client:
            while next_call < calls:
                index = next_call
                next_call += 1
                started = time.monotonic()
                try:
                    result = await generate(client, f"load test image {index}")
                    code = error_code(result) or "ok"
                    if code == "ok":
                        report.ids.append(result.structured_content["images"][0]["id"])
                except Exception as exc:  # any transport failure is a test failure, reported below
                    code = "exception"
                    report.failures.append(f"call {index}: {exc!r}")
                report.slowest = max(report.slowest, time.monotonic() - started)
                report.outcomes[code] += 1
                done += 1
                if done in checkpoints:
                    report.samples.append(sample(process, done))

    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(worker)
    return report


async def load_scenario(calls: int, concurrency: int) -> None:
    record = HttpRecord()
    with (
        start_fake_openai(fault_429=0.10, fault_500=0.05, fault_timeout=0.02, timeout_hang=3.0, seed=7) as (
            base_url,
            fake,
        ),
        start_server(
            openai_env(
                base_url,
                IMAGEGEN_REQUEST_DEADLINE_SECONDS=str(DEADLINE),
                IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS="1",
                IMAGEGEN_LOG_LEVEL="WARNING",
            )
        ) as handle,
    ):
        started = time.monotonic()
        report = await run_load(handle, calls, concurrency, record)
        elapsed = time.monotonic() - started
        print(
            f"\n{calls} calls / {concurrency} in {elapsed:.1f}s: {dict(report.outcomes)}; injected {fake.counts}; "
            f"http {dict(record.statuses)}; slowest {report.slowest:.2f}s; samples {report.samples}"
        )

        assert report.failures == [], report.failures[:5]
        assert sum(report.outcomes.values()) == calls
        assert set(report.outcomes) <= {"ok", *FAULT_CODES}, report.outcomes
        assert report.outcomes["ok"] >= calls * 0.8, report.outcomes  # faults are mostly absorbed by retries
        assert fake.counts["429"] and fake.counts["500"] and fake.counts["timeout"], fake.counts
        assert not [s for s in record.statuses if s >= 500], record.statuses
        # No call outlived its deadline by more than the client's timeout (DEADLINE + 20 s, a hang detector): such a
        # call would be a transport failure above. Throughput and latency are measured in bench/, not asserted here.

        first, last = report.samples[0], report.samples[-1]
        assert last.fds <= first.fds + 16, report.samples
        assert last.rss <= first.rss * 1.25 + 32 * 2**20, report.samples

        # Exactly one image (and its metadata sidecar) per success; no temp files, nothing from failed calls.
        names = {p.name for p in output_files(handle)}
        expected = set(report.ids) | {f"{image_id}.json" for image_id in report.ids}
        assert names == expected, sorted(names - expected)[:5]


@pytest.mark.anyio
async def test_load_reduced() -> None:
    await load_scenario(calls=200, concurrency=32)


@pytest.mark.slow
@pytest.mark.anyio
async def test_load_full() -> None:
    await load_scenario(calls=2000, concurrency=64)
