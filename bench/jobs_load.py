"""`python -m bench.jobs_load`: a bounded load run of jobs — many slow generations, two processes, short waits.

Every call is `generate_image` with `wait_seconds` (default 1) against an upstream that takes `--delay` seconds
(default 20), spread over two server processes sharing one SQLite state file and output folder; each job is
then read back through the OTHER process with `get_job` until it ends. Checked: every job ends `succeeded`,
none is lost, none reaches the upstream twice. Figures go to stdout and bench/results/jobs_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the fakes live in tests/ at the repository root
    sys.path.insert(0, str(ROOT))

from http.server import ThreadingHTTPServer  # noqa: E402

from tests.fakes.openai_server import DEFAULT_KEY, FakeOpenAI  # noqa: E402
from tests.support.servers import scratch_dir  # noqa: E402

from .client import CallFailed, McpHttp  # noqa: E402
from .measure import percentile  # noqa: E402
from .procs import start_server  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "jobs_load.json"
TERMINAL = {"succeeded", "failed", "cancelled"}
# The stdlib server's listen backlog is 5: 200 simultaneous upstream calls would be refused by the FAKE (a
# reset before the request is read), which is not what a real API does. This process only runs the fake.
ThreadingHTTPServer.request_queue_size = 1024


def _server_env(upstream: str, state: Path, outputs: Path, delay: float) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": DEFAULT_KEY,
        "IMAGEGEN_OPENAI_BASE_URL": upstream,
        "IMAGEGEN_PROVIDERS": "openai",
        "IMAGEGEN_DEFAULT_MODEL": "openai/gpt-image-1",
        "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
        "IMAGEGEN_UPSTREAM_MAX_ATTEMPTS": "1",  # a second upstream request for a prompt would be a double run
        "IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS": str(delay * 3 + 30),
        "IMAGEGEN_REQUEST_DEADLINE_SECONDS": str(delay * 4 + 60),
        "IMAGEGEN_STATE_PATH": str(state),
        "IMAGEGEN_LOCAL_DIR": str(outputs),
        "IMAGEGEN_LOG_LEVEL": "WARNING",
    }


async def _until_done(client: McpHttp, job_id: str, limit: float, errors: list[str]) -> tuple[str, int]:
    """Poll get_job (each call waiting up to 30 s) until the job ends; returns its status and the calls made."""
    deadline = time.monotonic() + limit
    calls = 0
    status = "unknown"
    while time.monotonic() < deadline:
        calls += 1
        try:
            answer = await client.call("get_job", {"job_id": job_id, "wait_seconds": 30})
            status = answer.result["structuredContent"]["status"]
        except CallFailed as exc:  # a failed job is an isError result: counted as failed, its reason kept
            status = "failed"
            errors.append(str(exc)[:200])
            break
        if status in TERMINAL:
            break
    return status, calls


async def run(jobs: int, delay: float, wait: float) -> dict[str, Any]:
    workdir = scratch_dir("bench-jobs-")
    fake = FakeOpenAI(delay=delay, image_size=(64, 64))
    with fake.running("/v1") as (upstream, _):
        env = _server_env(upstream, workdir / "state.sqlite3", workdir / "outputs", delay)
        with start_server("imagegen", env) as first, start_server("imagegen", env) as second:
            clients = [McpHttp(f"{first.base_url}/mcp"), McpHttp(f"{second.base_url}/mcp")]
            errors: list[str] = []
            started = time.perf_counter()

            async def one(i: int) -> dict[str, Any]:
                submit, other = clients[i % 2], clients[(i + 1) % 2]
                answer = await submit.call("generate_image", {"prompt": f"bench job {i}", "wait_seconds": wait})
                body = answer.result["structuredContent"]
                status, polls = await _until_done(other, body["job_id"], delay * 4 + 120, errors)
                return {
                    "job_id": body["job_id"],
                    "first_status": body["status"],
                    "submit_seconds": answer.seconds,
                    "status": status,
                    "polls": polls,
                    "done_after": time.perf_counter() - started,
                }

            results = await asyncio.gather(*(one(i) for i in range(jobs)))
            wall = time.perf_counter() - started
            for client in clients:
                await client.aclose()
            first.check_alive()
            second.check_alive()
    prompts = Counter(r.json()["prompt"] for r in fake.api_requests() if r.path.endswith("/images/generations"))
    submit = [r["submit_seconds"] for r in results]
    done = [r["done_after"] for r in results]
    return {
        "jobs": jobs,
        "upstream_delay_seconds": delay,
        "wait_seconds": wait,
        "processes": 2,
        "statuses": dict(Counter(r["status"] for r in results)),
        "first_statuses": dict(Counter(r["first_status"] for r in results)),
        "lost": sum(1 for r in results if r["status"] not in TERMINAL),
        "upstream_requests": sum(prompts.values()),
        "prompts_sent_twice": sum(1 for n in prompts.values() if n > 1),
        "prompts_never_sent": jobs - len(prompts),
        "submit_p50_s": round(percentile(submit, 50), 3),
        "submit_p95_s": round(percentile(submit, 95), 3),
        "submit_max_s": round(max(submit), 3),
        "all_done_s": round(wall, 2),
        "done_p50_s": round(percentile(done, 50), 2),
        "done_p95_s": round(percentile(done, 95), 2),
        "get_job_calls": sum(r["polls"] for r in results),
        "failure_reasons": dict(Counter(errors)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs_load", description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--delay", type=float, default=20.0, help="seconds the fake upstream takes per request")
    parser.add_argument("--wait", type=float, default=1.0, help="wait_seconds of each generate_image call")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.jobs, args.delay, args.wait))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for key, value in report.items():
        print(f"{key:>24}: {value}")
    ok = report["statuses"] == {"succeeded": args.jobs} and report["prompts_sent_twice"] == 0
    return 0 if ok and report["lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
