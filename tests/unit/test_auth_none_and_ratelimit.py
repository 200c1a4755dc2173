"""none mode's loopback rule and startup check; the per-caller token bucket with an injected clock."""

from __future__ import annotations

import pytest

from imagegen_mcp.access.auth import build_authenticator, check_startup
from imagegen_mcp.access.caller import ANONYMOUS
from imagegen_mcp.access.hosts import is_loopback_host
from imagegen_mcp.access.ratelimit import RateLimiter
from imagegen_mcp.config import Settings
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.secrets.base import EnvSecretSource


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.4", False),
        ("169.254.1.1", False),
        ("testserver", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback_host(host) is expected


@pytest.mark.anyio
async def test_none_mode_serves_loopback_only() -> None:
    auth = build_authenticator(Settings(), EnvSecretSource({}))
    assert auth.mode == "none"
    assert await auth.authenticate({}, client_host="127.0.0.1", server_host="127.0.0.1") == ANONYMOUS
    assert await auth.authenticate({}, client_host="::1", server_host="::1") == ANONYMOUS
    for client, server in [("10.1.2.3", "127.0.0.1"), ("127.0.0.1", "10.0.0.5"), (None, "127.0.0.1")]:
        with pytest.raises(ImageGenError) as info:
            await auth.authenticate({}, client_host=client, server_host=server)
        assert info.value.code is ErrorCode.MISCONFIGURED
        assert "IMAGEGEN_ALLOW_UNAUTHENTICATED" in info.value.message and "IMAGEGEN_AUTH" in info.value.message


@pytest.mark.anyio
async def test_none_mode_override() -> None:
    auth = build_authenticator(Settings(allow_unauthenticated=True), EnvSecretSource({}))
    caller = await auth.authenticate({}, client_host="203.0.113.5", server_host="10.0.0.5")
    assert (caller.id, caller.kind, caller.may_use("anything")) == ("anonymous", "none", True)
    assert "authorization_servers" not in auth.protected_resource_metadata("http://127.0.0.1:8080/mcp")


def test_startup_check() -> None:
    check_startup(Settings(), "127.0.0.1")
    check_startup(Settings(), "localhost")
    for host in ("0.0.0.0", "::", "192.168.1.20"):
        with pytest.raises(ImageGenError) as info:
            check_startup(Settings(), host)
        assert info.value.code is ErrorCode.MISCONFIGURED and host in info.value.message
    check_startup(Settings(allow_unauthenticated=True), "0.0.0.0")
    check_startup(Settings(auth="bearer"), "0.0.0.0")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def exhausted(limiter: RateLimiter, caller: str) -> ImageGenError:
    with pytest.raises(ImageGenError) as info:
        limiter.check(caller)
    assert info.value.code is ErrorCode.RATE_LIMITED and info.value.retryable
    return info.value


def test_burst_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    for _ in range(3):
        limiter.check("k_a")
    err = exhausted(limiter, "k_a")
    assert err.retry_after_seconds == pytest.approx(1.0)
    assert err.to_dict()["retry_after_seconds"] == 1.0
    limiter.check("k_b")  # buckets are per caller

    clock.now += 0.5
    assert exhausted(limiter, "k_a").retry_after_seconds == pytest.approx(0.5)
    clock.now += 0.5
    limiter.check("k_a")
    exhausted(limiter, "k_a")

    clock.now += 60  # refills up to the burst, not beyond
    for _ in range(3):
        limiter.check("k_a")
    exhausted(limiter, "k_a")


def test_slow_rate_retry_hint() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=2, burst=1, clock=clock)
    limiter.check("k")
    assert exhausted(limiter, "k").retry_after_seconds == pytest.approx(30.0)


def test_disabled_limiter_never_limits() -> None:
    limiter = RateLimiter(per_minute=0, burst=1, clock=Clock())
    for _ in range(1000):
        limiter.check("k")
    assert len(limiter) == 0


def test_idle_buckets_are_evicted() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=10, clock=clock)
    for i in range(100):
        limiter.check(f"caller-{i}")
    assert len(limiter) == 100
    clock.now += 9.9  # not yet refilled: buckets still carry state
    limiter.check("caller-0")
    assert len(limiter) == 100
    clock.now += 0.2  # everyone but caller-0 is full again, i.e. indistinguishable from a fresh bucket
    limiter.check("fresh")
    assert len(limiter) == 2


def test_bucket_count_is_capped() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=1, burst=1, clock=clock, max_buckets=50)
    for i in range(500):
        limiter.check(f"caller-{i}")
        clock.now += 0.001
    assert len(limiter) == 50
    exhausted(limiter, "caller-499")  # the most recent callers keep their state


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        RateLimiter(per_minute=-1, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(per_minute=1, burst=0)
