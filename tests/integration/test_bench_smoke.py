"""Smoke run of the benchmark harness (`python -m bench --quick`) and unit checks of its parsing helpers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.client import CallFailed, parse_response
from bench.measure import _importers, percentile, summarize_profile

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {"cold_start", "warm_throughput", "concurrency_and_memory", "result_size"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[str]]:
    """The quick run's report, and what it left in its own temporary folder (TMPDIR) once it had exited."""
    out = tmp_path_factory.mktemp("bench") / "report.json"
    scratch = tmp_path_factory.mktemp("bench-tmpdir")
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=540,  # ~60 s idle, 117 s at load 8, > 150 s at load 17 beside a second xdist worker: hangs only
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "| scenario | metric |" in completed.stdout
    return json.loads(out.read_text()), sorted(path.name for path in scratch.iterdir())


@pytest.fixture(scope="module")
def quick_report(quick_run: tuple[dict, list[str]]) -> dict:
    return quick_run[0]


@pytest.mark.timeout(600)
def test_a_run_leaves_no_servers_outputs_or_logs_behind(quick_run: tuple[dict, list[str]]) -> None:
    """Every server's folder (log, outputs, state file; the floor's writes) goes when the run ends: a full run
    writes gigabytes, and repeated runs once filled the disk."""
    assert quick_run[1] == []


@pytest.mark.timeout(600)
def test_quick_run_reports_every_scenario_against_the_floor(quick_report: dict) -> None:
    assert quick_report["schema"] == "imagegen-mcp-bench/1"
    assert quick_report["quick"] is True
    assert set(quick_report["scenarios"]) == SCENARIOS
    rows = quick_report["rows"]
    assert {row["scenario"][0] for row in rows} == {"1", "2", "3", "4", "5"}
    for row in rows:
        assert row["imagegen"] is not None and math.isfinite(row["imagegen"]), row
        if row["ratio"] is not None:
            assert row["floor"] > 0
            assert row["ratio"] == pytest.approx(row["imagegen"] / row["floor"], rel=1e-2, abs=1e-3)
    missed = {f"{r['scenario']}: {r['metric']}" for r in rows if r["ok"] is False}
    assert set(quick_report["targets_missed"]) == missed


@pytest.mark.timeout(600)
def test_quick_run_measured_real_calls(quick_report: dict) -> None:
    scenarios = quick_report["scenarios"]
    plan = quick_report["plan"]
    for entry in ("uvicorn", "functions-framework"):
        runs = scenarios["cold_start"]["entries"][entry]
        assert len(runs["imagegen_runs_s"]) == len(runs["floor_runs_s"]) == plan["cold_runs"]
        assert all(0 < value < 60 for value in runs["imagegen_runs_s"] + runs["floor_runs_s"])
    cells = scenarios["warm_throughput"]["cells"]
    assert {(c["store"], c["concurrency"]) for c in cells} == {
        (store, level) for store in ("local", "gcs") for level in (1, plan["concurrency"])
    }
    assert all(c["imagegen"]["calls"] >= c["concurrency"] and c["floor"]["calls"] >= c["concurrency"] for c in cells)
    assert scenarios["warm_throughput"]["png_bytes"] == pytest.approx(plan["warm_image_bytes"], rel=0.05)
    memory = scenarios["concurrency_and_memory"]
    assert memory["concurrency"]["calls"] == plan["burst_calls"]
    # the calls overlapped the upstream delay instead of queueing behind each other
    assert plan["burst_delay"] <= memory["concurrency"]["wall_s"] < plan["burst_calls"] * plan["burst_delay"]
    assert memory["memory"]["peak_rss_bytes"] >= memory["memory"]["idle_rss_bytes"] > 0
    assert memory["leak"]["imagegen"]["calls"] == plan["leak_calls"]


@pytest.mark.timeout(600)
def test_product_limits_that_do_not_depend_on_machine_speed(quick_report: dict) -> None:
    heavy = {
        h["module"]
        for name, profile in quick_report["scenarios"]["cold_start"]["importtime"].items()
        if name != "floor"
        for h in profile["heavy_sdk_modules"]
    }
    assert heavy == set(), "google-genai / google-cloud-* must be imported lazily, not at startup"
    assert quick_report["scenarios"]["result_size"]["no_preview_bytes"] <= 2048


def test_parse_response_reads_sse_and_json_bodies() -> None:
    message = {"jsonrpc": "2.0", "id": 7, "result": {"content": [], "isError": False}}
    text = json.dumps(message)
    sse = f"event: message\ndata: {json.dumps({'jsonrpc': '2.0', 'method': 'notifications/progress'})}\n\n"
    sse += f"event: message\ndata: {text}\n\n"
    assert parse_response(sse, "text/event-stream", 7) == (message["result"], len(text))
    assert parse_response(text, "application/json", 7) == (message["result"], len(text))
    with pytest.raises(CallFailed):
        parse_response(text, "application/json", 8)
    error = json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad"}})
    with pytest.raises(CallFailed, match="bad"):
        parse_response(error, "application/json", 1)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 100) == 3.0
    assert percentile([5.0], 99) == 5.0


def test_importers_walks_up_the_importtime_tree() -> None:
    # importtime lists a module's own imports (deeper) before the module itself
    rows = [
        (1, 1, 3, "google.cloud.storage"),
        (1, 2, 2, "imagegen_mcp.storage.gcs"),
        (1, 3, 2, "other"),
        (1, 4, 1, "imagegen_mcp.deps"),
        (1, 5, 0, "main"),
    ]
    assert _importers(rows, 0) == ["main", "imagegen_mcp.deps", "imagegen_mcp.storage.gcs", "google.cloud.storage"]


def test_profile_summary_groups_busy_samples(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "run (uvicorn/server.py:1);decode_base64 (imagegen_mcp/providers/upstream_http.py:241) 30\n"
        "run (uvicorn/server.py:1);loads (json/__init__.py:341) 10\n"
    )
    summary = summarize_profile(raw)
    assert summary["samples"] == 40
    assert summary["by_category_pct"][0] == ["imagegen_mcp", 75.0]
    assert ["json", 25.0] in summary["by_category_pct"]
    assert summary["innermost_imagegen_frame_pct"] == [
        ["decode_base64 (imagegen_mcp/providers/upstream_http.py:241)", 75.0]
    ]


def _report(quick: bool) -> dict:
    row = {
        "scenario": "1 cold start",
        "metric": "uvicorn: spawn → first call (median)",
        "imagegen": 1.2,
        "floor": 1.0,
        "unit": "s",
        "ratio": 1.2,
        "target": "ratio ≤ 1.15",
        "ok": False,
    }
    return {
        "created_at": "2026-12-01T23:00:00+00:00",
        "duration_s": 200.0,
        "quick": quick,
        "machine": {"cpus": 2, "python": "3.11.7", "mcp": "2.3.0", "uvicorn": "0.54.0", "functions-framework": "3"},
        "rows": [row],
        "targets_missed": ["1 cold start: uvicorn: spawn → first call (median)"],
    }


def test_update_docs_rewrites_only_the_generated_blocks(tmp_path: Path) -> None:
    from bench.report import DOC_FILES, update_docs

    for name in DOC_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(
            "intro\n<!-- generated: python -m bench -->\nold table\n<!-- end generated -->\nafter\n", encoding="utf-8"
        )
    assert update_docs(_report(quick=False), tmp_path) == list(DOC_FILES)
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert text.startswith("intro\n<!-- generated: python -m bench -->\n`python3 dev.py bench` of 2026-12-01")
    assert "old table" not in text and text.endswith("<!-- end generated -->\nafter\n")
    assert "| 1 cold start | uvicorn: spawn → first call (median) | 1.2 | 1 | s | 1.2 | ratio ≤ 1.15 | **NO** |" in text
    assert "Targets missed in this run: 1 cold start: uvicorn: spawn → first call (median)." in text
    assert update_docs(_report(quick=False), tmp_path) == []  # already up to date
    with pytest.raises(ValueError, match="quick"):
        update_docs(_report(quick=True), tmp_path)


def test_the_repository_docs_carry_the_generated_blocks() -> None:
    from bench.report import DOC_FILES

    for name in DOC_FILES:
        text = (ROOT / name).read_text(encoding="utf-8")
        assert "<!-- generated: python -m bench -->" in text and "<!-- end generated -->" in text, name


def test_the_apps_are_byte_compiled_as_the_image_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from bench import procs

    sources = {app: tmp_path / app / "entry.py" for app in ("imagegen", "floor")}
    for source in sources.values():
        source.parent.mkdir()
        source.write_text("VALUE = 1\n", encoding="utf-8")
    monkeypatch.setattr(procs, "APP_DIRS", {app: source.parent for app, source in sources.items()})
    procs.compile_like_the_image()
    for source in sources.values():
        assert Path(importlib.util.cache_from_source(str(source))).is_file()
