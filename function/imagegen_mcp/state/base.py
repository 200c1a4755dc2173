"""The StateStore protocol: JSON documents with an expiry, create-if-absent, transactional update, atomic counters."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

# A mutation gets the current document data (None when absent or expired) and returns the new data,
# or None to leave the document as it is. It may run more than once (Firestore retries contended
# transactions), so it must be a pure function of its argument.
Mutation = Callable[[dict[str, Any] | None], dict[str, Any] | None]


@dataclass(frozen=True)
class Document:
    """One stored document: its key, its JSON data and when it expires (UTC)."""

    key: str
    data: dict[str, Any]
    expires_at: datetime


@dataclass(frozen=True)
class Increment:
    """Add `amount` to integer `field` of document `key` (absent: 0); its expiry becomes `expires_at`."""

    key: str
    field: str
    amount: int
    expires_at: datetime


# A document's size is that of its compact JSON. One encoder for all: json.dumps with separators builds one per call.
compact_json = json.JSONEncoder(separators=(",", ":")).encode


class DocumentTooLarge(Exception):
    """A document over the backend's `max_document_bytes` as compact JSON; nothing was written."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a {size}-byte document is over this store's {limit}-byte limit")
        self.size, self.limit = size, limit


class StateStore(Protocol):
    """Documents grouped in collections; every operation is atomic across processes and instances."""

    max_document_bytes: int  # the largest JSON document the backend stores

    async def get(self, collection: str, key: str) -> Document | None:
        """The document, or None when absent or past its expiry."""
        ...

    async def create(self, collection: str, key: str, data: dict[str, Any], *, expires_at: datetime) -> bool:
        """Store `data` under `key` unless a live document is there; True when this call created it.

        Raises DocumentTooLarge, writing nothing, when `data` as compact JSON is over `max_document_bytes`.
        """
        ...

    async def update(
        self, collection: str, key: str, mutate: Mutation, *, expires_at: datetime | None = None
    ) -> Document | None:
        """Read-modify-write in one transaction; returns the document as it is afterwards (None: absent)."""
        ...

    async def increment_all(self, collection: str, increments: Sequence[Increment]) -> list[int]:
        """Every increment at once, atomically (all or none); the sums, in order. One increment per document."""
        ...

    async def delete(self, collection: str, key: str) -> None: ...

    async def scan(self, collection: str, *, start: str | None = None, end: str | None = None) -> list[Document]:
        """The live documents whose keys lie in [start, end) (None: unbounded), in key order."""
        ...

    async def aclose(self) -> None: ...


def distinct_keys(increments: Sequence[Increment]) -> None:
    """Refuse two increments of one document in one call (a write batch may touch a document only once)."""
    if len({item.key for item in increments}) != len(increments):
        raise ValueError("increment_all takes one increment per document")
