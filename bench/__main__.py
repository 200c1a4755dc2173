"""`python -m bench [--quick]`: run every scenario on loopback, print the table, write the JSON report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the fakes live in tests/ at the repository root
    sys.path.insert(0, str(ROOT))

from .procs import start_fake_upstream  # noqa: E402
from .report import build_report, table, update_docs, write_report  # noqa: E402
from .scenarios import (  # noqa: E402
    Plan,
    Row,
    cold_start,
    concurrency_and_memory,
    result_size,
    warm_throughput,
)

SCENARIOS = ("cold", "warm", "concurrency", "size")
DEFAULT_OUT = ROOT / "bench" / "results" / "latest.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts (smoke test, ~30 s); figures are not meaningful"
    )
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only these scenarios (repeatable)")
    parser.add_argument("--no-gcs", action="store_true", help="skip the GCS-store cells (fake-gcs-server)")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of the warm run")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON report path (default {DEFAULT_OUT})")
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="rewrite the performance tables of README.md and docs/performance.md from this run (not --quick)",
    )
    parser.add_argument(
        "--from",
        dest="from_report",
        type=Path,
        default=None,
        help="do not run: print (and with --update-docs, write to the docs) the table of this JSON report",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = (
        Plan.quick_plan(gcs=not args.no_gcs)
        if args.quick
        else Plan.full(gcs=not args.no_gcs, profile=not args.no_profile)
    )
    wanted = args.only or list(SCENARIOS)
    rows: list[Row] = []
    results: dict[str, Any] = {}
    started = time.perf_counter()
    # The raw py-spy profiles (collapsed stacks) stay beside the JSON report.
    workdir = (args.out or DEFAULT_OUT).parent / "profiles"
    workdir.mkdir(parents=True, exist_ok=True)
    with start_fake_upstream(plan.warm_image_bytes) as upstream:
        steps: list[tuple[str, str, Callable[[], tuple[dict[str, Any], list[Row]]]]] = [
            ("cold", "cold_start", lambda: cold_start(plan, upstream)),
            ("warm", "warm_throughput", lambda: warm_throughput(plan, upstream, workdir)),
            ("concurrency", "concurrency_and_memory", lambda: concurrency_and_memory(plan, upstream, workdir)),
            ("size", "result_size", lambda: result_size(plan, upstream)),
        ]
        for key, name, step in steps:
            if key not in wanted:
                continue
            print(f"[bench] {name} …", file=sys.stderr, flush=True)
            began = time.perf_counter()
            results[name], new_rows = step()
            results[name]["seconds"] = round(time.perf_counter() - began, 1)
            rows += new_rows
    return build_report(plan, rows, results, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.update_docs and args.quick:
        print("--update-docs needs a full run (the --quick figures mean little)", file=sys.stderr)
        return 2
    if args.from_report is not None:
        report = json.loads(args.from_report.read_text(encoding="utf-8"))
        out = args.from_report
    else:
        report = run(args)
        out = args.out or DEFAULT_OUT
        write_report(report, out)

    print(table([Row(**row) for row in report["rows"]]))
    print(f"\nreport: {out}  ({report['duration_s']} s)")
    if args.update_docs:
        changed = update_docs(report, ROOT)
        print("docs: " + (", ".join(changed) + " updated" if changed else "up to date"))
    missed = report["targets_missed"]
    if missed:
        print("targets missed: " + "; ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
