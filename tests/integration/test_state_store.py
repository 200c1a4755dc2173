"""StateStore contract, run against the embedded SQLite store and the real Firestore emulator."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from imagegen_mcp.state.base import Increment, StateStore

pytestmark = pytest.mark.anyio

LATER = datetime.now(UTC) + timedelta(days=1)


@pytest.fixture(params=["sqlite", "firestore"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StateStore]:
    if request.param == "sqlite":
        from imagegen_mcp.state.sqlite import SQLiteStateStore

        backend: Any = SQLiteStateStore(tmp_path / "state.sqlite3")
    else:
        host = request.getfixturevalue("firestore_emulator")
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host)
        from imagegen_mcp.state.firestore import FirestoreStateStore

        backend = FirestoreStateStore(make_settings(google_cloud_project="imagegen-test"))
    yield backend
    await backend.aclose()


def _collection() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def test_create_is_create_if_absent(store: StateStore) -> None:
    coll = _collection()
    assert await store.create(coll, "a", {"v": 1, "nested": {"x": [1, 2]}}, expires_at=LATER)
    assert not await store.create(coll, "a", {"v": 2}, expires_at=LATER)
    doc = await store.get(coll, "a")
    assert doc is not None and doc.data == {"v": 1, "nested": {"x": [1, 2]}}
    assert abs((doc.expires_at - LATER).total_seconds()) < 1
    assert await store.get(coll, "missing") is None


async def test_expired_document_reads_absent_and_can_be_recreated(store: StateStore) -> None:
    coll = _collection()
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert await store.create(coll, "a", {"v": 1}, expires_at=past)
    assert await store.get(coll, "a") is None
    assert await store.update(coll, "a", lambda d: None if d is None else {"stale": d}) is None
    assert await store.create(coll, "b", {"v": 1}, expires_at=past)
    assert await store.create(coll, "b", {"v": 2}, expires_at=LATER)
    doc = await store.get(coll, "b")
    assert doc is not None and doc.data == {"v": 2}


async def test_create_refuses_a_document_over_the_store_limit_and_writes_nothing(store: StateStore) -> None:
    from imagegen_mcp.state.base import DocumentTooLarge

    coll = _collection()
    store.max_document_bytes = 100
    with pytest.raises(DocumentTooLarge) as info:
        await store.create(coll, "a", {"v": "x" * 200}, expires_at=LATER)
    assert info.value.size > 200 and info.value.limit == 100
    assert await store.get(coll, "a") is None
    assert await store.create(coll, "a", {"v": "x" * 50}, expires_at=LATER)


async def test_update_mutation_sees_current_data_and_none_leaves_it(store: StateStore) -> None:
    coll = _collection()
    await store.create(coll, "a", {"status": "queued"}, expires_at=LATER)
    unchanged = await store.update(coll, "a", lambda d: None)
    assert unchanged is not None and unchanged.data == {"status": "queued"}
    # A mutation that changes its argument and then declines leaves the document, and the answer, as they were.
    declined = await store.update(coll, "a", lambda d: None if d is None else d.update(status="touched"))
    assert declined is not None and declined.data == {"status": "queued"}
    changed = await store.update(coll, "a", lambda d: {**(d or {}), "status": "running"})
    assert changed is not None and changed.data == {"status": "running"}
    got = await store.get(coll, "a")
    assert got is not None and got.data == {"status": "running"}
    absent = await store.update(coll, "nope", lambda d: None)
    assert absent is None
    with pytest.raises(ValueError):
        await store.update(coll, "nope2", lambda d: {"x": 1})  # creating needs an expiry
    created = await store.update(coll, "nope3", lambda d: {"was": d}, expires_at=LATER)
    assert created is not None and created.data == {"was": None}


async def test_conditional_update_has_exactly_one_winner(store: StateStore) -> None:
    coll = _collection()
    await store.create(coll, "job", {"status": "queued", "owner": None}, expires_at=LATER)

    async def claim(worker: str) -> bool:
        def mutate(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None or d["status"] != "queued":
                return None
            return {"status": "running", "owner": worker}

        doc = await store.update(coll, "job", mutate)
        return doc is not None and doc.data["owner"] == worker

    wins = await asyncio.gather(*(claim(f"w{i}") for i in range(8)))
    assert sum(wins) == 1


async def _add(store: StateStore, coll: str, key: str, amount: int, expires_at: datetime = LATER) -> int:
    return (await store.increment_all(coll, [Increment(key, "calls", amount, expires_at)]))[0]


async def test_increment_is_atomic(store: StateStore) -> None:
    coll = _collection()
    values = await asyncio.gather(*(_add(store, coll, "c", 1) for _ in range(20)))
    assert sorted(values) == list(range(1, 21))
    assert await _add(store, coll, "c", -5) == 15
    doc = await store.get(coll, "c")
    assert doc is not None and doc.data == {"calls": 15}
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert await _add(store, coll, "old", 7, past) == 7
    assert await _add(store, coll, "old", 1) == 1  # an expired counter starts over


async def test_several_counters_move_together_and_each_sum_comes_back_in_order(store: StateStore) -> None:
    coll = _collection()
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert await _add(store, coll, "stale", 9, past) == 9
    pair = [Increment("day", "images", 1, LATER), Increment("month", "micros", 250, LATER)]
    sums = await asyncio.gather(*(store.increment_all(coll, pair) for _ in range(12)))
    assert sorted(sums) == [[i, 250 * i] for i in range(1, 13)]  # each call saw both counters at one moment
    mixed = [Increment("month", "micros", -1000, LATER), Increment("stale", "calls", 2, LATER)]
    assert await store.increment_all(coll, mixed) == [2000, 2]  # the expired one started over
    day, month = await store.get(coll, "day"), await store.get(coll, "month")
    assert day is not None and day.data == {"images": 12}
    assert month is not None and month.data == {"micros": 2000}
    assert await store.increment_all(coll, []) == []


async def test_two_increments_of_one_document_are_refused_and_change_nothing(store: StateStore) -> None:
    coll = _collection()
    with pytest.raises(ValueError, match="one increment per document"):
        await store.increment_all(coll, [Increment("c", "a", 1, LATER), Increment("c", "b", 1, LATER)])
    assert await store.get(coll, "c") is None


async def test_delete(store: StateStore) -> None:
    coll = _collection()
    await store.create(coll, "a", {"v": 1}, expires_at=LATER)
    await store.delete(coll, "a")
    assert await store.get(coll, "a") is None
    await store.delete(coll, "a")  # deleting an absent document is fine


_INCREMENTER = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from imagegen_mcp.state.base import Increment
from imagegen_mcp.state.sqlite import SQLiteStateStore

async def main() -> None:
    store = SQLiteStateStore(Path(sys.argv[1]))
    for _ in range(int(sys.argv[2])):
        await store.increment_all("c", [Increment("k", "n", 1, datetime.now(UTC) + timedelta(days=1))])
    await store.aclose()

asyncio.run(main())
"""


async def test_sqlite_counter_is_atomic_across_processes(tmp_path: Path) -> None:
    from imagegen_mcp.state.sqlite import SQLiteStateStore

    path = tmp_path / "shared.sqlite3"
    procs = [
        subprocess.Popen([sys.executable, "-c", _INCREMENTER, str(path), "60"], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    store = SQLiteStateStore(path)
    doc = await store.get("c", "k")
    await store.aclose()
    assert doc is not None and doc.data == {"n": 180}


async def test_scan_returns_live_documents_of_a_key_range_in_key_order(store: StateStore) -> None:
    coll = _collection()
    for key in ("b~2", "a~1", "b~1", "b~3", "c~1"):
        assert await store.create(coll, key, {"k": key}, expires_at=LATER)
    assert await store.create(coll, "b~0", {"k": "gone"}, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert [d.key for d in await store.scan(coll, start="b~", end="b~3")] == ["b~1", "b~2"]
    assert [d.data["k"] for d in await store.scan(coll)] == ["a~1", "b~1", "b~2", "b~3", "c~1"]
    assert [d.key for d in await store.scan(coll, start="b~2")] == ["b~2", "b~3", "c~1"]
    assert await store.scan(_collection()) == []


async def test_sqlite_write_waits_for_a_lock_another_connection_holds_and_then_succeeds(tmp_path: Path) -> None:
    import sqlite3

    from imagegen_mcp.state.sqlite import SQLiteStateStore

    path = tmp_path / "locked.sqlite3"
    store = SQLiteStateStore(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
    write = asyncio.create_task(store.increment_all("c", [Increment("k", "n", 1, LATER)]))
    ticks = 0
    for _ in range(20):  # the loop keeps running while the write waits for the lock
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 20 and not write.done()
    other.execute("COMMIT")
    other.close()
    assert await asyncio.wait_for(write, 30) == [1]
    doc = await store.get("c", "k")
    await store.aclose()
    assert doc is not None and doc.data == {"n": 1}


async def test_sqlite_large_documents_round_trip_and_expired_ones_are_swept(tmp_path: Path) -> None:
    from imagegen_mcp.state import sqlite as module

    store = module.SQLiteStateStore(tmp_path / "big.sqlite3")
    big = {"blob": "x" * (module.INLINE_MAX_CHARS + 10)}
    assert await store.create("c", "big", big, expires_at=LATER)
    grown = await store.update("c", "big", lambda d: None if d is None else {**d, "n": 1})
    assert grown is not None and grown.data == {**big, "n": 1}
    doc = await store.get("c", "big")
    assert doc is not None and doc.data == {**big, "n": 1}
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert await store.create("c", "old", {"v": 1}, expires_at=past)
    for index in range(module.SWEEP_EVERY_WRITES):
        await store.create("c", f"k{index}", {"v": index}, expires_at=LATER)
    rows = store._conn().execute("SELECT count(*) FROM documents WHERE key = 'old'").fetchone()
    await store.aclose()
    assert rows == (0,)


async def test_sqlite_small_transactions_wait_on_the_loop_while_one_runs_in_a_thread(tmp_path: Path) -> None:
    import threading

    from imagegen_mcp.state import sqlite as module

    store = module.SQLiteStateStore(tmp_path / "busy.sqlite3")
    assert await store.create("c", "big", {"blob": "x" * (module.INLINE_MAX_CHARS + 10)}, expires_at=LATER)
    release = threading.Event()
    ran_in: list[threading.Thread] = []

    def slow(d: dict[str, Any] | None) -> dict[str, Any] | None:  # a large document: runs in a worker thread
        release.wait(10)
        return None if d is None else {**d, "n": 1}

    def small(d: dict[str, Any] | None) -> dict[str, Any]:
        ran_in.append(threading.current_thread())
        return {"n": (d or {}).get("n", 0) + 1}

    big = asyncio.create_task(store.update("c", "big", slow))
    await asyncio.sleep(0.05)  # the large update now holds the store's lock in its thread
    waiters = [asyncio.create_task(store.update("c", f"s{i}", small, expires_at=LATER)) for i in range(3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters)
    big.cancel()  # its caller goes away; the thread still holds the lock until it returns
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters)
    release.set()
    done = await asyncio.wait_for(asyncio.gather(*waiters), 10)
    assert [d.data for d in done if d is not None] == [{"n": 1}] * 3
    # Each waited for the threaded transaction on the loop, then ran there: none was queued behind it in a thread.
    assert ran_in == [threading.main_thread()] * 3
    grown = await store.get("c", "big")
    await store.aclose()
    assert grown is not None and grown.data["n"] == 1  # the cancelled caller's update itself went through
