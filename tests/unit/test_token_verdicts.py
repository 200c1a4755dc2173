"""VerdictCache: verdicts keyed by the token's hash, kept until they expire, bounded, one lookup per token."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from imagegen_mcp.access.token_verdicts import VerdictCache, token_key

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def counting(value: str, lifetime: float, clock: Clock, calls: list[str]):  # type: ignore[no-untyped-def]
    async def decide() -> tuple[str, float]:
        calls.append(value)
        return value, clock.now + lifetime

    return decide


async def test_keys_are_hashes_never_tokens() -> None:
    cache: VerdictCache[str] = VerdictCache(10, clock=Clock())
    await cache.get("ya29.secret-token", counting("ana", 60, Clock(), []))
    assert cache.keys() == [hashlib.sha256(b"ya29.secret-token").hexdigest()] == [token_key("ya29.secret-token")]
    assert "ya29.secret-token" not in repr(cache.__dict__)


async def test_a_verdict_is_kept_until_it_expires_then_decided_again() -> None:
    clock, calls = Clock(), []  # type: ignore[var-annotated]
    cache: VerdictCache[str] = VerdictCache(10, clock=clock)
    assert await cache.get("t", counting("ana", 60, clock, calls)) == "ana"
    clock.now += 59
    assert await cache.get("t", counting("other", 60, clock, calls)) == "ana"
    assert calls == ["ana"]
    clock.now += 1  # expires_at reached
    assert await cache.get("t", counting("again", 60, clock, calls)) == "again"
    assert calls == ["ana", "again"]


async def test_a_verdict_already_expired_is_not_stored() -> None:
    clock, calls = Clock(), []  # type: ignore[var-annotated]
    cache: VerdictCache[str] = VerdictCache(10, clock=clock)
    await cache.get("t", counting("dead", 0, clock, calls))
    await cache.get("t", counting("dead", 0, clock, calls))
    assert len(cache) == 0 and calls == ["dead", "dead"]


async def test_size_is_bounded_least_recently_used_goes_first() -> None:
    clock, calls = Clock(), []  # type: ignore[var-annotated]
    cache: VerdictCache[str] = VerdictCache(3, clock=clock)
    for name in ("a", "b", "c"):
        await cache.get(name, counting(name, 60, clock, calls))
    await cache.get("a", counting("a2", 60, clock, calls))  # a is used again: b is now the oldest
    for name in ("d", "e"):
        await cache.get(name, counting(name, 60, clock, calls))
    assert len(cache) == 3
    assert set(cache.keys()) == {token_key(name) for name in ("a", "d", "e")}
    assert calls == ["a", "b", "c", "d", "e"]


async def test_concurrent_first_uses_share_one_decision() -> None:
    clock, calls = Clock(), []  # type: ignore[var-annotated]
    cache: VerdictCache[str] = VerdictCache(10, clock=clock)
    release = asyncio.Event()

    async def slow() -> tuple[str, float]:
        calls.append("lookup")
        await release.wait()
        return "ana", clock.now + 60

    waiters = [asyncio.ensure_future(cache.get("t", slow)) for _ in range(20)]
    await asyncio.sleep(0)
    waiters[0].cancel()  # one asker hanging up does not cancel the lookup the others wait on
    release.set()
    results = await asyncio.gather(*waiters[1:])
    assert results == ["ana"] * 19 and calls == ["lookup"]
    assert await cache.get("t", slow) == "ana" and calls == ["lookup"]


async def test_a_failed_decision_is_not_cached_and_reaches_every_waiter() -> None:
    clock = Clock()
    cache: VerdictCache[str] = VerdictCache(10, clock=clock)
    attempts = []

    async def broken() -> tuple[str, float]:
        attempts.append(1)
        await asyncio.sleep(0)
        raise RuntimeError("token-info down")

    results = await asyncio.gather(cache.get("t", broken), cache.get("t", broken), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and len(attempts) == 1
    with pytest.raises(RuntimeError):
        await cache.get("t", broken)
    assert len(attempts) == 2 and len(cache) == 0
