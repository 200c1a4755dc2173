"""JobRunner's writes while a job waits on its upstream: the lease and the progress, each written once per change."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from imagegen_mcp.access.caller import Caller
from imagegen_mcp.catalog import GenerationOptions
from imagegen_mcp.jobs import model
from imagegen_mcp.jobs.runner import JobRunner, owner_record, request_record
from imagegen_mcp.jobs.store import JobStore
from imagegen_mcp.state.sqlite import SQLiteStateStore
from imagegen_mcp.tools import CallContext, ImageOutcome

pytestmark = pytest.mark.anyio
LEASE = 3.0  # watcher every 0.3 s, lease renewed every 1 s


class SlowUpstream:
    """ImageTools' part in a job: progress, the upstream flag, then an upstream that takes `seconds`."""

    def __init__(self, seconds: float, beats: list[str]) -> None:
        self.seconds, self.beats = seconds, beats

    async def run(self, call: CallContext, **arguments: Any) -> ImageOutcome:
        assert call.progress is not None and call.before_upstream is not None
        await call.progress(1, "calling test/model via test")
        await call.before_upstream()
        for beat in self.beats:  # what the pipeline's heartbeat says while the upstream works
            await asyncio.sleep(self.seconds / (len(self.beats) + 1))
            await call.progress(2, beat)
        await asyncio.sleep(self.seconds / (len(self.beats) + 1))
        return ImageOutcome({"images": [], "model": "test/model"}, [], None)


async def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tools: SlowUpstream) -> tuple[list[str], str]:
    state = SQLiteStateStore(tmp_path / "state.sqlite3")
    store = JobStore(state, retention_days=1, lease_seconds=LEASE)
    renewals: list[str] = []
    real_renew = store.renew

    async def counted(job_id: str, worker: str, attempt: int, **changes: Any) -> Any:
        renewals.append(changes.get("progress", ""))
        return await real_renew(job_id, worker, attempt, **changes)

    monkeypatch.setattr(store, "renew", counted)
    job_id = model.new_job_id()
    owner = owner_record(Caller(id="lease-test", kind="none"))
    request = request_record({"prompt": "x", "model": "test/model", "options": GenerationOptions()})
    await store.create(
        job_id, model.new_record(owner=owner, operation="generate", request=request, request_id="r", queue_timeout=60)
    )
    try:
        outcome = await JobRunner(None, tools, store).run(job_id)  # type: ignore[arg-type]
        assert outcome == "ran" and (await store.get(job_id) or {})["status"] == "succeeded"
    finally:
        await state.aclose()
    return renewals, job_id


async def test_the_upstream_flag_carries_the_progress_so_the_watcher_has_nothing_to_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renewals, _ = await _run(tmp_path, monkeypatch, SlowUpstream(0.8, []))  # 2 watcher looks, no renewal due
    assert renewals == ["calling test/model via test"]  # the before-upstream write, nothing more


async def test_each_new_progress_message_and_a_due_lease_are_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renewals, _ = await _run(tmp_path, monkeypatch, SlowUpstream(1.8, ["waiting (1s)"]))
    assert renewals[0] == "calling test/model via test"
    assert "waiting (1s)" in renewals[1:]  # persisted for waiters on other instances
    assert len(renewals) <= 4, renewals  # the lease (every 1 s) and the message, not a write per look
