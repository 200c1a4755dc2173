"""The rollout end of cloudbuild.yaml: traffic pinned to the smoke-tested revision, then every c-<sha> tag removed."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text(encoding="utf-8"))
STEPS = {step["id"]: step for step in PIPELINE["steps"]}


def _substitute(script: str) -> str:
    """What Cloud Build hands to bash: `$$` becomes `$`, substitutions are filled in."""
    values = {"${_SERVICE}": "imagegen-mcp-dev", "${_REGION}": "europe-west1", "$SHORT_SHA": "abc1234"}
    for key, value in values.items():
        script = script.replace(key, value)
    return script.replace("$$", "$")


def _run_with_fake_gcloud(tmp_path: Path, tags: str) -> list[str]:
    calls = tmp_path / "calls"
    fake = tmp_path / "gcloud"
    fake.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\ncase "$*" in *"services describe"*) printf "%s\\n" "$FAKE_TAGS";; esac\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    script = _substitute(STEPS["remove-revision-tags"]["args"][1])
    env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "FAKE_TAGS": tags}
    subprocess.run(["bash", "-c", script], check=True, env=env, timeout=30)
    return calls.read_text().splitlines() if calls.exists() else []


def test_steps_end_with_shift_then_tag_cleanup() -> None:
    ids = [step["id"] for step in PIPELINE["steps"]]
    assert ids[-3:] == ["smoke-test", "shift-traffic", "remove-revision-tags"]
    shift = STEPS["shift-traffic"]["args"]
    assert "--to-tags=c-$SHORT_SHA=100" in shift and "--to-latest" not in shift


def test_every_commit_tag_is_removed_and_others_kept(tmp_path: Path) -> None:
    calls = _run_with_fake_gcloud(tmp_path, "c-abc1234;c-0ld0ld0;stable")
    assert calls[0].startswith("run services describe imagegen-mcp-dev --region=europe-west1")
    assert calls[1] == (
        "run services update-traffic imagegen-mcp-dev --region=europe-west1 --remove-tags=c-abc1234,c-0ld0ld0 --quiet"
    )


def test_nothing_to_remove_is_not_an_error(tmp_path: Path) -> None:
    calls = _run_with_fake_gcloud(tmp_path, "stable")
    assert len(calls) == 1 and "describe" in calls[0]
