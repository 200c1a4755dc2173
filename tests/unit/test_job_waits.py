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
    assert change.take(queued) is None  # nothing noted yet: only a read tells
    claimed = await store.claim(job_id, "worker-a")
    await store.changed(change, 1.0)
    assert claimed is not None and claimed["status"] == "running"
    assert change.take(queued) == claimed == await store.get(job_id)
    assert change.take(queued) is None  # taken: the next look needs a new change (or a read)


async def test_progress_alone_leaves_the_record_the_waiter_had(store: JobStore) -> None:
    job_id, queued = await _queued(store)
    change = store.watch(job_id)
    store.poke(job_id)
    await store.changed(change, 1.0)
    assert change.take(queued) is queued


async def test_what_happens_before_the_waiter_looks_is_not_lost(store: JobStore) -> None:
    """Progress, then two transitions, all before the waiter takes a look: it goes on with the last record, and
    progress after a transition does not hide it (the waiter would otherwise poll for a finished job)."""
    job_id, queued = await _queued(store)
    change = store.watch(job_id)
    store.poke(job_id)
    claimed = await store.claim(job_id, "worker-a")
    assert claimed is not None
    finished = await store.finish(job_id, "worker-a", claimed["attempt"], result={"images": []})
    store.poke(job_id)
    assert finished and change.take(queued) == await store.get(job_id)
    assert (await store.get(job_id) or {})["status"] == "succeeded"


async def test_every_waiter_is_told_and_a_finished_wait_leaves_nothing_behind(store: JobStore) -> None:
    job_id, queued = await _queued(store)
    first, second = store.watch(job_id), store.watch(job_id)
    claimed = await store.claim(job_id, "worker-a")
    assert first.take(queued) == claimed == second.take(queued)
    store.unwatch(job_id, first)
    store.unwatch(job_id, second)
    assert store._watches == {}  # one entry per job ever waited on would be a leak


async def test_a_wait_that_timed_out_reads_the_store(store: JobStore) -> None:
    job_id, queued = await _queued(store)
    change = store.watch(job_id)
    await store.changed(change, 0.01)  # another process may have cancelled it meanwhile
    assert change.take(queued) is None


async def test_a_transition_that_left_no_usable_record_makes_the_waiter_read(store: JobStore) -> None:
    job_id, queued = await _queued(store)
    gone = store.watch(job_id)
    await store.state.delete(model.COLLECTION, job_id)
    assert await store.cancel(job_id) is None  # the job is gone: the update wrote nothing
    assert gone.take(queued) is None
    # A record whose lease has run out is reconciled (failed, durably) by a read, never used as it is.
    job_id, queued = await _queued(store)
    change = store.watch(job_id)
    claimed = await store.claim(job_id, "worker-a")
    assert claimed is not None
    stale = {**claimed, "lease_expires_at": time.time() - 1}
    change.note(stale, progress_only=False)
    assert model.expired_failure(stale, time.time()) is not None and change.take(queued) is None


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


async def test_an_in_process_job_is_created_claimed_so_it_is_written_three_times(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the local queue the job runs here: its record is created `running`, attempt 1, held by the worker
    that runs it (no claim write), then the upstream flag and the finish are its only other writes."""
    from mcp import Client

    from imagegen_mcp.access.caller import Caller
    from imagegen_mcp.deps import build_deps
    from imagegen_mcp.server import build_server

    created: list[dict[str, Any]] = []
    updated: list[str] = []
    real_create, real_update = SQLiteStateStore.create, SQLiteStateStore.update

    async def create(self: SQLiteStateStore, collection: str, key: str, data: dict[str, Any], **kw: Any) -> Any:
        if collection == model.COLLECTION:
            created.append(dict(data))
        return await real_create(self, collection, key, data, **kw)

    async def update(self: SQLiteStateStore, collection: str, key: str, mutate: Any, **kw: Any) -> Any:
        if collection == model.COLLECTION:
            updated.append(key)
        return await real_update(self, collection, key, mutate, **kw)

    monkeypatch.setattr(SQLiteStateStore, "create", create)
    monkeypatch.setattr(SQLiteStateStore, "update", update)
    server = build_server(build_deps(make_settings()), in_process_caller=Caller(id="claims-test", kind="none"))
    async with Client(server) as client:
        done = await client.call_tool("generate_image", {"prompt": "a lighthouse", "preview": False})
    body = done.structured_content or {}
    assert not done.is_error and body["status"] == "succeeded"
    assert len(created) == 1 and created[0]["status"] == "running" and created[0]["attempt"] == 1
    assert created[0]["worker"] and created[0]["lease_expires_at"] > created[0]["created_at"]
    assert updated == [body["job_id"], body["job_id"]], updated  # the upstream flag, the finish


def test_only_a_queued_record_can_be_created_claimed() -> None:
    from imagegen_mcp.jobs.runner import JobRunner

    runner = JobRunner(None, None, JobStore(None, retention_days=1, lease_seconds=30))  # type: ignore[arg-type]
    queued = model.new_record(owner=OWNER, operation="generate", request={}, request_id="r", queue_timeout=60)
    worker, claimed = runner.claim_new(queued)
    assert claimed["status"] == "running" and claimed["worker"] == worker and claimed["attempt"] == 1
    assert queued["status"] == "queued"  # the record handed in is left as it was
    with pytest.raises(ValueError, match="only a queued job"):
        runner.claim_new(claimed)


async def test_a_cloud_tasks_job_is_never_created_claimed(make_settings: Any) -> None:
    """The worker a task is delivered to claims it (it may be another instance): the queue refuses a claimed job."""
    from imagegen_mcp.jobs.cloud_tasks import CloudTasksQueue

    settings = make_settings(
        jobs="cloud-tasks",
        tasks_queue="projects/p/locations/europe-west1/queues/imagegen-jobs",
        tasks_service_account="tasks@p.iam.gserviceaccount.com",
        public_url="https://imagegen.example.com",
    )
    queue = CloudTasksQueue(settings)
    assert queue.runs_in_process is False
    with pytest.raises(ValueError, match="claimed by the worker it is delivered to"):
        await queue.submit("job_0", ("worker", {"status": "running"}))
