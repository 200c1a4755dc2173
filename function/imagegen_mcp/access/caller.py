"""Caller: who an authenticated request (or a CLI run) acts as, and which models it may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GOOGLE_KINDS = frozenset({"iam", "google"})


@dataclass(frozen=True)
class Caller:
    """An authenticated caller; `id` (key id, email or "anonymous") goes into logs and object metadata."""

    id: str
    kind: Literal["none", "bearer", "iam", "google"]  # google: signed in with Google OAuth (`google-oauth`)
    label: str | None = None
    allowed_models: frozenset[str] | None = None  # None = all

    @property
    def google_principal(self) -> bool:
        """Whether `id` is a verified Google email (iam or google-oauth): such callers share principal budgets."""
        return self.kind in GOOGLE_KINDS

    def may_use(self, model_id: str) -> bool:
        if self.allowed_models is None:
            return True
        return any(
            model_id == allowed or (allowed.endswith("/*") and model_id.startswith(allowed[:-1]))
            for allowed in self.allowed_models
        )


ANONYMOUS = Caller("anonymous", "none")
