"""Owner records and the sharing rule of access/ownership.py."""

from __future__ import annotations

from imagegen_mcp.access.caller import ANONYMOUS, Caller
from imagegen_mcp.access.ownership import OWNER_KEY, may_use, owner_of

ALICE = Caller("key-a", "bearer")
BOB = Caller("key-b", "bearer")
ANN = Caller("ann@example.com", "iam")


def test_owner_is_kind_qualified() -> None:
    assert owner_of(ALICE) == "bearer:key-a"
    assert owner_of(ANN) == "iam:ann@example.com"
    assert owner_of(Caller("ann@example.com", "bearer")) != owner_of(ANN)


def test_owner_may_use_own_objects_and_others_may_not() -> None:
    meta = {OWNER_KEY: owner_of(ALICE)}
    assert may_use(ALICE, meta, ())
    assert not may_use(BOB, meta, ())
    assert not may_use(Caller("key-a", "iam"), meta, ())


def test_object_without_owner_belongs_to_nobody_unless_auth_is_none() -> None:
    assert not may_use(ALICE, {}, ("key-a",))
    assert may_use(ANONYMOUS, {}, ())
    assert may_use(ANONYMOUS, {OWNER_KEY: owner_of(ALICE)}, ())


def test_shared_owners_need_both_sides_named() -> None:
    meta = {OWNER_KEY: owner_of(ALICE)}
    assert may_use(BOB, meta, ("key-a", "key-b"))
    assert not may_use(BOB, meta, ("key-b",))
    assert not may_use(BOB, meta, ("key-a",))
    assert may_use(ANN, meta, ("key-a", "ann@example.com"))
