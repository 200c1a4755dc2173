"""The table printed at the end of a run and the JSON report (schema: docs/performance.md)."""

from __future__ import annotations

import json
import os
import platform
import re
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


DOC_FILES = ("README.md", "docs/performance.md")
_BLOCK = re.compile(r"(<!-- generated: python -m bench -->\n)(.*?)(<!-- end generated -->)", re.S)


def docs_block(report: dict[str, Any]) -> str:
    """The generated part of the performance docs: what ran where, the table, the targets missed."""
    machine = report["machine"]
    day = report["created_at"][:10]
    lines = [
        f"`python3 dev.py bench` of {day}: {machine['cpus']} vCPU, Python {machine['python']}, mcp {machine['mcp']}, "
        f"uvicorn {machine['uvicorn']}, functions-framework {machine['functions-framework']}; the run took "
        f"{report['duration_s']:.0f} s.",
        "",
        table([Row(**row) for row in report["rows"]]),
    ]
    missed = report["targets_missed"]
    lines += ["", "Targets missed in this run: " + ("; ".join(missed) if missed else "none") + "."]
    return "\n".join(lines)


def update_docs(report: dict[str, Any], root: Path) -> list[str]:
    """Rewrite the generated blocks of README.md and docs/performance.md from `report`; the files changed."""
    if report["quick"]:
        raise ValueError("a --quick report's figures mean little: the docs are generated from a full run")
    block = docs_block(report)
    changed = []
    for name in DOC_FILES:
        path = root / name
        text = path.read_text(encoding="utf-8")
        if not _BLOCK.search(text):
            raise ValueError(f"{name} has no <!-- generated: python -m bench --> block")
        updated = _BLOCK.sub(lambda m: m.group(1) + block + "\n" + m.group(3), text)
        if updated != text:
            path.write_text(updated, encoding="utf-8")
            changed.append(name)
    return changed
