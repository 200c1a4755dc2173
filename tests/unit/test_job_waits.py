"""JobStore's wake-ups: a waiter in this process goes on with what a change wrote, and reads only when it must."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from imagegen_mcp.jobs import model
from imagegen_mcp.jobs.store import JobStore
from imagegen_mcp.state.sqlite import SQLiteStateStore

pytestmark = pytest.mark.anyio
OWNER = {"id": "k_1", "kind": "bearer", "label": None, "allowed_models": None}


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    state = SQLiteStateStore(tmp_path / "state.sqlite3")
    yield JobStore(state, retention_days=1, lease_seconds=30)
    await state.aclose()


async def _queued(store: JobStore) -> tuple[str, dict[str, Any]]:
    job_id = model.new_job_id()
    record = model.new_record(owner=OWNER, operation="generate", request={}, request_id="r", queue_timeout=60)
    await store.create(job_id, record)
    return job_id, record


async def test_a_transition_hands_the_waiter_the_record_it_wrote(store: JobStore) -> None:
    job_id, queued = await _queued(store)
    change = store.watch(job_id)
    assert change.fresh_record(queued) is None  # not woken yet: only a read tells
    claimed = await store.claim(job_id, "worker-a")
    await store.changed(change, 1.0)
    assert claimed is not None and change.fresh_record(queued) == claimed == await store.get(job_id)
    assert change.fresh_record(queued)["status"] == "running"  # type: ignore[index]


async def test_progress_alone_leaves_the_record_the_waiter_had(store: JobStore) -> None:
    job_id, queued = await _queued(store)
    change = store.watch(job_id)
    store.poke(job_id)
    await store.changed(change, 1.0)
    assert change.fresh_record(queued) is queued


async def test_a_wait_that_timed_out_reads_the_store(store: JobStore) -> None:
    job_id, queued = await _queued(store)
    change = store.watch(job_id)
    await store.changed(change, 0.01)  # another process may have cancelled it meanwhile
    assert change.fresh_record(queued) is None


async def test_a_transition_that_left_no_usable_record_makes_the_waiter_read(store: JobStore) -> None:
    job_id, queued = await _queued(store)
    gone = store.watch(job_id)
    await store.state.delete(model.COLLECTION, job_id)
    assert await store.cancel(job_id) is None  # the job is gone: the update wrote nothing
    assert gone.fresh_record(queued) is None
    # A record whose lease has run out is reconciled (failed, durably) by a read, never used as it is.
    job_id, queued = await _queued(store)
    change = store.watch(job_id)
    claimed = await store.claim(job_id, "worker-a")
    assert claimed is not None
    stale = {**claimed, "lease_expires_at": time.time() - 1}
    change.record = stale
    assert model.expired_failure(stale, time.time()) is not None and change.fresh_record(queued) is None


async def test_a_call_waiting_on_its_own_job_reads_the_record_once_then_follows_the_transitions(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """claim, the upstream flag and the finish each hand the waiter their record: a fast call reads its job only
    where a read decides something (the owner check, and the runner's first look), not after every change."""
    from mcp import Client

    from imagegen_mcp.access.caller import Caller
    from imagegen_mcp.deps import build_deps
    from imagegen_mcp.server import build_server

    reads: list[str] = []
    real_get = SQLiteStateStore.get

    async def counted(self: SQLiteStateStore, collection: str, key: str) -> Any:
        reads.append(collection)
        return await real_get(self, collection, key)

    monkeypatch.setattr(SQLiteStateStore, "get", counted)
    server = build_server(build_deps(make_settings()), in_process_caller=Caller(id="waits-test", kind="none"))
    async with Client(server) as client:
        await client.call_tool("generate_image", {"prompt": "warm-up"})
        reads.clear()
        done = await client.call_tool("generate_image", {"prompt": "a lighthouse", "preview": False})
    assert not done.is_error and (done.structured_content or {})["status"] == "succeeded"
    assert reads.count(model.COLLECTION) <= 2, reads  # 4 when every wake-up read the record back
