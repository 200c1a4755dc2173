"""`python -m bench.jobs_cost`: CPU a generate call spends on its job (record, queue, wait, render), in-process.

The same call is made two ways in one process, in alternating blocks: through `JobTools.start` with the default
`wait_seconds` (what generate_image does) and as the bare pipeline (`ImageTools.run` plus rendering the result).
The difference in process CPU per call is what jobs cost. Prints one JSON object. The process runs alone (the
upstream is another process), so its CPU time is the call's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

from .procs import private_local_dir


async def _measure(blocks: int, calls: int) -> dict[str, Any]:
    from imagegen_mcp.access.caller import Caller
    from imagegen_mcp.catalog import GenerationOptions
    from imagegen_mcp.config import Settings
    from imagegen_mcp.deps import build_deps
    from imagegen_mcp.surface.framing import image_result
    from imagegen_mcp.surface.jobs import JobTools
    from imagegen_mcp.tools import CallContext, ImageTools

    deps = build_deps(Settings())
    await deps.store.startup_check()
    tools = ImageTools(deps)
    jobs = JobTools(deps, tools)
    call = CallContext(caller=Caller(id="bench", kind="none"), request_id="bench", base_url="http://127.0.0.1:1")
    args: dict[str, Any] = {"prompt": "a lighthouse at dusk", "model": os.environ["IMAGEGEN_DEFAULT_MODEL"]}

    async def with_job() -> None:
        result = await jobs.start(call, "generate", None, {**args, "options": GenerationOptions(), "preview": False})
        assert not result.is_error, result

    async def bare() -> None:
        outcome = await tools.run(call, **args, options=GenerationOptions(), preview=False)
        image_result(outcome.structured)

    async def block(run: Any) -> float:
        began = time.process_time()
        for _ in range(calls):
            await run()
        return (time.process_time() - began) * 1000 / calls

    for run in (with_job, bare):  # warm both paths (first-use imports, connections)
        await block(run)
    job_ms: list[float] = []
    bare_ms: list[float] = []
    for index in range(blocks):
        order = (with_job, bare) if index % 2 == 0 else (bare, with_job)
        for run in order:
            (job_ms if run is with_job else bare_ms).append(await block(run))
    await deps.aclose()
    job, plain = statistics.median(job_ms), statistics.median(bare_ms)
    return {
        "blocks": blocks,
        "calls_per_block": calls,
        "job_cpu_ms_per_call": round(job, 3),
        "bare_cpu_ms_per_call": round(plain, 3),
        "jobs_cpu_ms_per_call": round(job - plain, 3),
        "job_blocks_ms": [round(v, 3) for v in job_ms],
        "bare_blocks_ms": [round(v, 3) for v in bare_ms],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs_cost", description=__doc__)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args(argv)
    os.environ.setdefault("IMAGEGEN_LOCAL_DIR", private_local_dir("bench-jobs-cost-"))
    print(json.dumps(asyncio.run(_measure(args.blocks, args.calls))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
