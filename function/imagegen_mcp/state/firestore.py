"""FirestoreStateStore: the StateStore on Firestore in Native mode (transactions; TTL policy on `expires_at`)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ImageGenError
from .base import Document, DocumentTooLarge, Increment, Mutation, compact_json, distinct_keys

if TYPE_CHECKING:
    from ..config import Settings

EXPIRY_FIELD = "expires_at"  # the field Terraform's TTL policy names; Firestore deletes expired documents lazily
# Contended documents (a hot counter, workers racing for one job) abort transactions; the SDK retries them at
# once, which a crowd of writers can exhaust ("Failed to commit transaction in N attempts"): then we start the
# transaction again after a jittered, growing pause, for up to CONTENTION_BUDGET_SECONDS, before giving up typed.
TRANSACTION_ATTEMPTS = 30
CONTENTION_BUDGET_SECONDS = 20.0


def _live(snapshot: Any) -> tuple[dict[str, Any], datetime] | None:
    if not snapshot.exists:
        return None
    raw = snapshot.to_dict() or {}
    expires = raw.get(EXPIRY_FIELD)
    if not isinstance(expires, datetime) or expires <= datetime.now(UTC):
        return None  # TTL deletion can lag by a day: an expired document reads as absent
    return dict(raw.get("data") or {}), expires


class FirestoreStateStore:
    """One document per key at `<collection>/<key>`: `{data: {...}, expires_at: timestamp}`; SDK calls off the loop."""

    max_document_bytes = 1_000_000  # Firestore's document limit is 1 MiB, field names and overhead included

    def __init__(self, settings: Settings) -> None:
        from google.cloud import firestore  # heavy SDK: imported only when this backend is chosen

        self._firestore = firestore
        self._client = firestore.Client(project=settings.google_cloud_project, database=settings.firestore_database)

    def _ref(self, collection: str, key: str) -> Any:
        return self._client.collection(collection).document(key)

    def _in_transaction(self, body: Any) -> Any:
        from google.api_core import exceptions

        deadline = time.monotonic() + CONTENTION_BUDGET_SECONDS
        pause = 0.05
        while True:
            transaction = self._client.transaction(max_attempts=TRANSACTION_ATTEMPTS)
            try:
                return self._firestore.transactional(body)(transaction)
            except (ValueError, exceptions.Aborted) as exc:
                # ValueError: the SDK's own attempts ran out; anything else it raises is not contention.
                if isinstance(exc, ValueError) and "Failed to commit transaction" not in str(exc):
                    raise
                if time.monotonic() + pause > deadline:
                    raise ImageGenError(
                        ErrorCode.STORAGE_ERROR, "the state store is too busy right now (transaction contention)"
                    ) from exc
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, 1.0)

    async def get(self, collection: str, key: str) -> Document | None:
        def body() -> Document | None:
            found = _live(self._ref(collection, key).get())
            return None if found is None else Document(key, found[0], found[1])

        return await asyncio.to_thread(body)

    async def create(self, collection: str, key: str, data: dict[str, Any], *, expires_at: datetime) -> bool:
        ref = self._ref(collection, key)

        def body(transaction: Any) -> bool:
            if _live(ref.get(transaction=transaction)) is not None:
                return False
            transaction.set(ref, {"data": data, EXPIRY_FIELD: expires_at.astimezone(UTC)})
            return True

        def checked() -> bool:
            size = len(compact_json(data))  # here in the thread: a large one takes ms
            if size > self.max_document_bytes:
                raise DocumentTooLarge(size, self.max_document_bytes)
            return bool(self._in_transaction(body))

        return await asyncio.to_thread(checked)

    async def update(
        self, collection: str, key: str, mutate: Mutation, *, expires_at: datetime | None = None
    ) -> Document | None:
        ref = self._ref(collection, key)

        def body(transaction: Any) -> Document | None:
            found = _live(ref.get(transaction=transaction))
            current, expires = found if found else (None, None)
            new = mutate(None if current is None else dict(current))
            if new is None:
                return None if current is None or expires is None else Document(key, current, expires)
            stamp = expires_at.astimezone(UTC) if expires_at is not None else expires
            if stamp is None:
                raise ValueError("creating a document through update needs expires_at")
            transaction.set(ref, {"data": new, EXPIRY_FIELD: stamp})
            return Document(key, new, stamp)

        return await asyncio.to_thread(self._in_transaction, body)

    async def increment_all(self, collection: str, increments: Sequence[Increment]) -> list[int]:
        distinct_keys(increments)
        refs = [self._ref(collection, item.key) for item in increments]
        stamps = {ref.path: item.expires_at.astimezone(UTC) for ref, item in zip(refs, increments, strict=True)}

        def reset_if_expired(ref: Any) -> Any:
            def body(transaction: Any) -> None:
                snapshot = ref.get(transaction=transaction)
                if snapshot.exists and _live(snapshot) is None:
                    transaction.set(ref, {"data": {}, EXPIRY_FIELD: stamps[ref.path]})

            return body

        def body() -> list[int]:
            for snapshot in self._client.get_all(refs):  # one round trip for all of them
                if snapshot.exists and _live(snapshot) is None:
                    self._in_transaction(reset_if_expired(snapshot.reference))
            # Server-side increments in one atomic batch: hot counters take concurrent writers without contention.
            batch = self._client.batch()
            for ref, item in zip(refs, increments, strict=True):
                change = {"data": {item.field: self._firestore.Increment(item.amount)}, EXPIRY_FIELD: stamps[ref.path]}
                batch.set(ref, change, merge=True)
            return [int(result.transform_results[0].integer_value) for result in batch.commit()]

        return await asyncio.to_thread(body)

    async def delete(self, collection: str, key: str) -> None:
        await asyncio.to_thread(self._ref(collection, key).delete)

    async def scan(self, collection: str, *, start: str | None = None, end: str | None = None) -> list[Document]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        ref = self._client.collection(collection)

        def body() -> list[Document]:
            query = ref.order_by("__name__")
            if start:
                query = query.where(filter=FieldFilter("__name__", ">=", ref.document(start)))
            if end is not None:
                query = query.where(filter=FieldFilter("__name__", "<", ref.document(end)))
            found = ((snapshot.id, _live(snapshot)) for snapshot in query.stream())
            return [Document(key, live[0], live[1]) for key, live in found if live is not None]

        return await asyncio.to_thread(body)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)
