"""The jobs load run (bench/jobs_load.py) stays runnable: a tiny run must end with every job succeeded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_jobs_load_run_small(tmp_path: Path) -> None:
    out = tmp_path / "jobs.json"
    command = [sys.executable, "-m", "bench.jobs_load", "--jobs", "6", "--delay", "1", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["statuses"] == {"succeeded": 6} and report["lost"] == 0
    assert report["upstream_requests"] == 6 and report["prompts_sent_twice"] == 0
