"""Caller: who an authenticated request (or a CLI run) acts as, and which models it may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Caller:
    """An authenticated caller; `id` (key id, email or "anonymous") goes into logs and object metadata."""

    id: str
    kind: Literal["none", "bearer", "iam"]
    label: str | None = None
    allowed_models: frozenset[str] | None = None  # None = all

    def may_use(self, model_id: str) -> bool:
        if self.allowed_models is None:
            return True
        return any(
            model_id == allowed or (allowed.endswith("/*") and model_id.startswith(allowed[:-1]))
            for allowed in self.allowed_models
        )


ANONYMOUS = Caller("anonymous", "none")
