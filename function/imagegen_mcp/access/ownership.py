"""Who owns an output or upload (recorded in its metadata) and which callers may use it."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .caller import Caller

OWNER_KEY = "owner"
"""The metadata key every stored output and upload carries: `owner_of(caller)` of the caller who made it."""


def owner_of(caller: Caller) -> str:
    """The owner recorded for what `caller` creates: kind-qualified, so a key id never equals an email."""
    return f"{caller.kind}:{caller.id}"


def may_use(caller: Caller, metadata: Mapping[str, str], shared: Collection[str]) -> bool:
    """Whether `caller` may read an object with `metadata`.

    With `auth=none` every object is the local user's. Otherwise the caller must be its owner, or both the
    caller and the owner must be named in `shared` (`IMAGEGEN_SHARED_OWNERS`: key ids or principal emails).
    An object without a recorded owner belongs to nobody.
    """
    if caller.kind == "none":
        return True
    owner = metadata.get(OWNER_KEY)
    if owner is None:
        return False
    if owner == owner_of(caller):
        return True
    _kind, _, owner_id = owner.partition(":")
    return caller.id in shared and owner_id in shared
