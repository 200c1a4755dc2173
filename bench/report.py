"""The table printed at the end of a run and the JSON report (schema: docs/performance.md)."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .scenarios import Plan, Row

SCHEMA = "imagegen-mcp-bench/1"


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(rows: list[Row]) -> str:
    """A Markdown table (readable in a terminal, pasteable into docs/performance.md)."""
    header = ["scenario", "metric", "imagegen", "floor", "unit", "ratio", "target", "ok"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        ok = "—" if row.ok is None else ("yes" if row.ok else "**NO**")
        cells = [
            row.scenario,
            row.metric,
            _number(row.imagegen),
            _number(row.floor),
            row.unit,
            _number(row.ratio),
            row.target,
            ok,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def build_report(plan: Plan, rows: list[Row], scenarios: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(seconds, 1),
        "quick": plan.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "mcp": _version("mcp"),
            "uvicorn": _version("uvicorn"),
            "functions-framework": _version("functions-framework"),
        },
        "plan": asdict(plan),
        "rows": [asdict(row) for row in rows],
        "targets_missed": [f"{row.scenario}: {row.metric}" for row in rows if row.ok is False],
        "scenarios": scenarios,
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
