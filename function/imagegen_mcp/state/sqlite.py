"""SQLiteStateStore: the embedded StateStore (one WAL-mode file in the local data folder, safe across processes)."""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from .base import Document, DocumentTooLarge, Increment, Mutation, compact_json, distinct_keys

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (collection, key)
)
"""
T = TypeVar("T")
BUSY_TIMEOUT_SECONDS = 30.0
SWEEP_EVERY_WRITES = 500
INLINE_MAX_CHARS = 256 * 1024  # JSON of a document handled on the event loop (~1 ms of json work at most)
LARGE_KEYS_KEPT = 4096


def _larger_than(value: Any, limit: int) -> bool:
    """Whether `value` as JSON would be over `limit` characters, judged from its strings without serializing it."""
    stack, total = [value], 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + 4 * len(item) + sum(len(str(k)) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 24
        if total > limit:
            return True
    return False


def _stamp(moment: datetime) -> float:
    return moment.astimezone(UTC).timestamp()


class _Deferred(Exception):
    """An on-loop attempt gave up before changing anything: the operation runs again in a worker thread."""


class SQLiteStateStore:
    """Each operation is one transaction (writes: `BEGIN IMMEDIATE`) on the store's connection.

    A small transaction runs on the event loop when it can start at once (no other process writing): it takes
    tens of microseconds, less than the hop to a worker thread. While one of this process's transactions runs in
    a thread, the others wait for it on the loop and then run there. Anything that would wait on another process
    (a busy lock) or is large (a document over INLINE_MAX_CHARS) runs in a thread.
    """

    max_document_bytes = 256 * 1024 * 1024  # far below SQLite's 1 GB row limit; bounded by the request size anyway

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._writes = 0
        self._db: sqlite3.Connection | None = self._connect()
        self._db.execute("PRAGMA journal_mode=WAL")
        # Checkpoints (which fsync) are run by maintenance in a thread, never by a commit on the event loop.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.execute(_SCHEMA)
        self._db.execute("PRAGMA busy_timeout=0")  # a wait for another process happens in a thread (_transaction)
        self._on_loop = False  # set while a transaction runs on the event loop (under the lock)
        self._large: set[tuple[str, str]] = set()  # documents seen over INLINE_MAX_CHARS: always in a thread
        self._threads: set[asyncio.Future[Any]] = set()  # this store's work running in worker threads

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves so a read-modify-write holds the write lock.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("state store is closed")
        return self._db

    def _read(self, conn: sqlite3.Connection, collection: str, key: str) -> tuple[dict[str, Any], float] | None:
        found = self._read_text(conn, collection, key)
        return None if found is None else (json.loads(found[0]), found[1])

    def _read_text(self, conn: sqlite3.Connection, collection: str, key: str) -> tuple[str, float] | None:
        if self._on_loop and (collection, key) in self._large:
            raise _Deferred
        row = conn.execute(
            "SELECT data, expires_at FROM documents WHERE collection = ? AND key = ?", (collection, key)
        ).fetchone()
        if row is None or row[1] <= time.time():
            return None
        if len(row[0]) > INLINE_MAX_CHARS:
            self._remember_large(collection, key)
            if self._on_loop:
                raise _Deferred
        return row[0], row[1]

    def _remember_large(self, collection: str, key: str) -> None:
        if len(self._large) >= LARGE_KEYS_KEPT:
            self._large.clear()  # forgetting only costs one more read on the loop before the thread takes over
        self._large.add((collection, key))

    def _write(
        self,
        conn: sqlite3.Connection,
        collection: str,
        key: str,
        data: dict[str, Any],
        expires: float,
        *,
        created: bool,
    ) -> None:
        if self._on_loop and _larger_than(data, INLINE_MAX_CHARS):
            self._remember_large(collection, key)
            raise _Deferred
        text = compact_json(data)
        if created and len(text) > self.max_document_bytes:  # ASCII (ensure_ascii): characters are bytes
            raise DocumentTooLarge(len(text), self.max_document_bytes)
        if len(text) > INLINE_MAX_CHARS:
            self._remember_large(collection, key)
        conn.execute(
            "INSERT OR REPLACE INTO documents (collection, key, data, expires_at) VALUES (?, ?, ?, ?)",
            (collection, key, text, expires),
        )
        self._writes += 1

    def _maintain(self) -> None:
        """Every SWEEP_EVERY_WRITES writes: drop expired documents and checkpoint the WAL (in a worker thread)."""
        self._transaction(lambda conn: conn.execute("DELETE FROM documents WHERE expires_at <= ?", (time.time(),)))
        with self._lock:
            self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _transaction(self, body: Any, *, write: bool = True) -> Any:
        # One connection per store, one transaction at a time in this process; SQLite's file locks order processes.
        # In a worker thread, so it may wait for another process's lock (the connection never waits on the loop).
        with self._lock:
            conn = self._conn()
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            try:
                return self._body(body, write)
            finally:
                conn.execute("PRAGMA busy_timeout=0")

    def _body(self, body: Any, write: bool) -> Any:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = body(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _try_on_loop(self, body: Callable[[sqlite3.Connection], T], write: bool) -> tuple[str, T | None]:
        """("done", result) when the transaction ran here without waiting; else why not, with nothing changed:
        "held" (this process's lock is taken) or "thread" (it would wait on another process, or is large)."""
        if not self._lock.acquire(blocking=False):
            return "held", None
        conn = self._conn()
        try:
            self._on_loop = True
            try:
                return "done", self._body(body, write)
            except _Deferred:
                return "thread", None
            except sqlite3.OperationalError as exc:
                if conn.in_transaction or ("locked" not in str(exc) and "busy" not in str(exc)):
                    raise
                return "thread", None  # BEGIN found another process writing: nothing ran, wait in a thread
            finally:
                self._on_loop = False
        finally:
            self._lock.release()

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        """`fn` in a worker thread, tracked until it returns (the lock released) even if the caller is cancelled."""
        future = asyncio.get_running_loop().run_in_executor(None, fn)
        self._threads.add(future)
        future.add_done_callback(self._threads.discard)
        return await asyncio.shield(future)

    async def _run(self, body: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        writes = self._writes
        while True:
            outcome, result = self._try_on_loop(body, write)
            if outcome == "done":
                break
            loop = asyncio.get_running_loop()
            holders = [f for f in self._threads if f.get_loop() is loop]
            if outcome == "thread" or not holders:
                result = await self._in_thread(functools.partial(self._transaction, body, write=write))
                break
            # This process's lock is held by one of its own threads: wait for it here and run on the loop after,
            # instead of queueing behind it in a thread too (which under concurrency sends every call to threads).
            await asyncio.wait(holders, return_when=asyncio.FIRST_COMPLETED)
        if self._writes // SWEEP_EVERY_WRITES != writes // SWEEP_EVERY_WRITES:
            await self._in_thread(self._maintain)
        return cast(T, result)

    async def get(self, collection: str, key: str) -> Document | None:
        def body(conn: sqlite3.Connection) -> Document | None:
            found = self._read(conn, collection, key)
            return None if found is None else Document(key, found[0], datetime.fromtimestamp(found[1], UTC))

        return await self._run(body, write=False)

    async def create(self, collection: str, key: str, data: dict[str, Any], *, expires_at: datetime) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            if self._read(conn, collection, key) is not None:
                return False
            self._write(conn, collection, key, data, _stamp(expires_at), created=True)
            return True

        return await self._run(body)

    async def update(
        self, collection: str, key: str, mutate: Mutation, *, expires_at: datetime | None = None
    ) -> Document | None:
        def body(conn: sqlite3.Connection) -> Document | None:
            found = self._read_text(conn, collection, key)
            text, expires = found if found else (None, None)
            current = None if text is None else json.loads(text)  # a fresh parse: the mutation's own copy
            new = mutate(current)
            if new is None:
                if text is None or expires is None:
                    return None
                # Parsed again: the mutation may have changed its argument before leaving the document as it is.
                return Document(key, json.loads(text), datetime.fromtimestamp(expires, UTC))
            stamp = _stamp(expires_at) if expires_at is not None else expires
            if stamp is None:
                raise ValueError("creating a document through update needs expires_at")
            self._write(conn, collection, key, new, stamp, created=False)
            return Document(key, new, datetime.fromtimestamp(stamp, UTC))

        return await self._run(body)

    async def increment_all(self, collection: str, increments: Sequence[Increment]) -> list[int]:
        distinct_keys(increments)

        def body(conn: sqlite3.Connection) -> list[int]:
            totals = []
            for item in increments:
                found = self._read(conn, collection, item.key)
                data = found[0] if found else {}
                total = int(data.get(item.field, 0)) + item.amount
                data[item.field] = total
                self._write(conn, collection, item.key, data, _stamp(item.expires_at), created=False)
                totals.append(total)
            return totals

        return await self._run(body)

    async def delete(self, collection: str, key: str) -> None:
        def body(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM documents WHERE collection = ? AND key = ?", (collection, key))

        await self._run(body)

    async def scan(self, collection: str, *, start: str | None = None, end: str | None = None) -> list[Document]:
        def body(conn: sqlite3.Connection) -> list[Document]:
            rows = conn.execute(
                "SELECT key, data, expires_at FROM documents WHERE collection = ? AND key >= ? "
                "AND (? IS NULL OR key < ?) AND expires_at > ? ORDER BY key",
                (collection, start or "", end, end, time.time()),
            ).fetchall()
            return [Document(k, json.loads(d), datetime.fromtimestamp(e, UTC)) for k, d, e in rows]

        return await self._in_thread(functools.partial(self._transaction, body, write=False))

    async def aclose(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
