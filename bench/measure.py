"""Measuring primitives: timed load loops, percentiles, import-time and py-spy profile summaries."""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import McpHttp

HEAVY_PREFIXES = ("google.genai", "google.cloud", "google.api_core", "grpc", "google.protobuf", "googleapiclient")
# functions-framework's own `google.cloud.functions` context classes (shipped in its wheel): small, and the
# floor imports them as well.
NOT_HEAVY = ("google.cloud.functions",)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Load:
    """One load run: `calls` answered in `seconds` of wall time by `concurrency` callers."""

    calls: int
    seconds: float
    concurrency: int
    latencies: list[float]

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "seconds": round(self.seconds, 4),
            "concurrency": self.concurrency,
            "calls_per_s": round(self.calls_per_s, 3),
            "p50_ms": round(percentile(self.latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(self.latencies, 99) * 1000, 2),
        }


async def run_load(
    call: Callable[[], Awaitable[object]],
    *,
    concurrency: int,
    max_calls: int,
    duration: float | None = None,
    min_calls: int = 1,
) -> Load:
    """`concurrency` callers await `call()` back to back until `max_calls` started or, with a `duration`, that
    time passed (once `min_calls` started)."""
    started_calls = 0
    latencies: list[float] = []
    begin = time.perf_counter()
    end = begin + duration if duration is not None else float("inf")

    async def caller() -> None:
        nonlocal started_calls
        while started_calls < max_calls and (started_calls < min_calls or time.perf_counter() < end):
            started_calls += 1
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return Load(len(latencies), time.perf_counter() - begin, concurrency, latencies)


def tool_call(client: McpHttp, tool: str, arguments: dict[str, Any]) -> Callable[[], Awaitable[object]]:
    return lambda: client.call(tool, arguments)


async def burst(client: McpHttp, tool: str, arguments: dict[str, Any], count: int) -> tuple[float, list[float]]:
    """`count` calls sent at once; (wall seconds until the last answer, per-call latencies)."""
    begin = time.perf_counter()
    answers = await asyncio.gather(*(client.call(tool, arguments) for _ in range(count)))
    return time.perf_counter() - begin, [a.seconds for a in answers]


def median(values: list[float]) -> float:
    return statistics.median(values)


# --- import time -----------------------------------------------------------------------------------------------
_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)$")


def import_profile(module: str, app_dir: Path, env: dict[str, str], top: int) -> dict[str, Any]:
    """`python -X importtime -c "import <module>"`: total, top packages, heavy SDK modules and their importers."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=str(app_dir),
        env={**env, "PYTHONPATH": str(app_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"import {module} failed:\n{completed.stderr[-3000:]}")
    rows: list[tuple[int, int, int, str]] = []  # (self us, cumulative us, depth, name)
    for line in completed.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            depth = (len(match.group(3)) - 1) // 2
            rows.append((int(match.group(1)), int(match.group(2)), depth, match.group(4)))
    total = next((cum for _, cum, depth, name in rows if name == module and depth == 0), sum(r[0] for r in rows))
    by_package: Counter[str] = Counter()
    for self_us, _, _, name in rows:
        by_package[name.split(".")[0]] += self_us
    heavy = []
    for index, (_, cum, _depth, name) in enumerate(rows):
        if name.startswith(HEAVY_PREFIXES) and not name.startswith(NOT_HEAVY):
            heavy.append({"module": name, "cumulative_ms": round(cum / 1000, 1), "chain": _importers(rows, index)})
    return {
        "module": module,
        "total_ms": round(total / 1000, 1),
        "modules": len(rows),
        "top_packages_self_ms": [[pkg, round(us / 1000, 1)] for pkg, us in by_package.most_common(top)],
        "top_modules_cumulative_ms": [
            [name, round(cum / 1000, 1)] for _, cum, _, name in sorted(rows, key=lambda r: -r[1])[:top]
        ],
        "heavy_sdk_modules": heavy,
    }


def _importers(rows: list[tuple[int, int, int, str]], index: int) -> list[str]:
    """The import chain above rows[index]: importtime prints a module's imports before the module itself."""
    chain = [rows[index][3]]
    depth = rows[index][2]
    for _, _, row_depth, name in rows[index + 1 :]:
        if row_depth < depth:
            chain.append(name)
            depth = row_depth
            if depth == 0:
                break
    return list(reversed(chain))


# --- sampling profile (py-spy, all threads) --------------------------------------------------------------------
_CATEGORIES = (
    ("base64", ("base64.py", "binascii")),
    ("json", ("json/",)),
    ("file I/O", ("pathlib.py", "shutil.py")),
    ("image (PIL)", ("PIL/",)),
    ("GCS client", ("google/", "requests/", "urllib3/")),
    ("upstream HTTP client", ("httpx2/", "httpcore2/", "h11/")),
    ("uvicorn / ASGI", ("uvicorn/", "starlette/", "sse_starlette/")),
    ("imagegen_mcp", ("imagegen_mcp/",)),  # before "mcp/", which it contains
    ("MCP SDK", ("mcp/", "mcp_types/")),
    ("pydantic", ("pydantic",)),
    ("event loop / threads", ("asyncio/", "anyio/", "selectors.py", "concurrent/futures", "threading.py")),
)


def py_spy_binary() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    binary = py_spy_binary()
    if binary is None:
        return None
    command = [binary, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--nonblocking"]
    command += ["--duration", str(max(1, round(seconds))), "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))


def summarize_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Busy samples (all threads) by category of the innermost frame, plus the hottest functions (self time)."""
    leaves: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    own_code: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaves[frames[-1]] += count
        categories[_category(frames[-1])] += count
        mine = next((f for f in reversed(frames) if "imagegen_mcp/" in f), None)
        if mine is not None:
            own_code[mine] += count
    if total == 0:
        return {"samples": 0}

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "by_category_pct": share(categories),
        "hottest_functions_self_pct": share(leaves),
        "innermost_imagegen_frame_pct": share(own_code),
    }


def _category(frame: str) -> str:
    for name, needles in _CATEGORIES:
        if any(needle in frame for needle in needles):
            return name
    return "other"
