"""The decode budget (waits first come first served, refuses typed) and the per-call pixel allowance."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from imagegen_mcp.config import Settings
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.images.budget import DecodeBudget, PixelAllowance, return_large_frees_to_os


def test_defaults_follow_the_instance_memory() -> None:
    one_gib = Settings(memory_limit_mb=1024)
    assert one_gib.decode_budget_bytes == 512 * 2**20
    assert one_gib.request_pixel_cap == 128 * 2**20
    two_gib = Settings(memory_limit_mb=2048)
    assert two_gib.decode_budget_bytes == 2 * one_gib.decode_budget_bytes
    explicit = Settings(memory_limit_mb=2048, decode_budget_mb=100, max_request_pixels=5)
    assert (explicit.decode_budget_bytes, explicit.request_pixel_cap) == (100 * 2**20, 5)
    budget = DecodeBudget.from_settings(Settings(memory_limit_mb=512, decode_wait_seconds=3))
    assert (budget.capacity, budget.wait_seconds) == (256 * 2**20, 3)


def test_a_share_waits_for_memory_given_back_then_proceeds() -> None:
    async def scenario() -> list[str]:
        budget = DecodeBudget(100, wait_seconds=5)
        order: list[str] = []
        release = asyncio.Event()

        async def first() -> None:
            async with budget.hold(70, "first"):
                order.append("first in")
                await release.wait()
            order.append("first out")

        async def second() -> None:
            async with budget.hold(50, "second"):
                order.append("second in")
                assert budget.held == 50

        task = asyncio.create_task(first())
        await asyncio.sleep(0)
        waiter = asyncio.create_task(second())
        await asyncio.sleep(0.05)
        assert order == ["first in"] and budget.held == 70  # 70 + 50 > 100: the second waits
        release.set()
        await asyncio.gather(task, waiter)
        assert budget.held == 0
        return order

    assert asyncio.run(scenario()) == ["first in", "first out", "second in"]


def test_waiting_too_long_is_rate_limited_and_retryable() -> None:
    async def scenario() -> ImageGenError:
        budget = DecodeBudget(100, wait_seconds=0.05)
        async with budget.hold(80, "a"):
            with pytest.raises(ImageGenError) as caught:
                async with budget.hold(30, "input image 1"):
                    pass
            assert budget.held == 80
        assert budget.held == 0
        return caught.value

    error = asyncio.run(scenario())
    assert error.code == ErrorCode.RATE_LIMITED and error.retryable
    assert "busy" in error.message


def test_a_share_larger_than_the_budget_is_refused_at_once() -> None:
    async def scenario() -> None:
        budget = DecodeBudget(100 * 2**20, wait_seconds=60)
        with pytest.raises(ImageGenError) as caught:
            async with budget.hold(588 * 2**20, "input image 1"):
                pass
        assert caught.value.code == ErrorCode.INVALID_ARGUMENT and not caught.value.retryable
        assert "588 MiB" in caught.value.message and "100 MiB" in caught.value.message

    asyncio.run(scenario())


def test_first_come_first_served_and_cancelled_waiters_give_their_place_back() -> None:
    async def scenario() -> list[str]:
        budget = DecodeBudget(100, wait_seconds=5)
        order: list[str] = []
        release = asyncio.Event()

        async def take(name: str, nbytes: int, wait: asyncio.Event | None = None) -> None:
            async with budget.hold(nbytes, name):
                order.append(name)
                if wait is not None:
                    await wait.wait()

        holder = asyncio.create_task(take("holder", 90, release))
        await asyncio.sleep(0)
        big = asyncio.create_task(take("big", 60))
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(take("cancelled", 5))
        await asyncio.sleep(0)
        small = asyncio.create_task(take("small", 5))
        await asyncio.sleep(0.02)
        assert order == ["holder"]  # small ones fit but do not jump the queue ahead of "big"
        async with budget.hold(0, "nothing decoded"):  # holds nothing: never queues behind the waiters
            order.append("zero")
        cancelled.cancel()
        await asyncio.sleep(0.02)
        release.set()
        await asyncio.gather(holder, big, small)
        assert cancelled.cancelled() and budget.held == 0
        return order

    assert asyncio.run(scenario()) == ["holder", "zero", "big", "small"]


def test_the_allowance_counts_inputs_and_outputs_of_one_call() -> None:
    allowance = PixelAllowance(100)
    allowance.take(60, "input image 1")
    allowance.take(40, "output image 1")
    with pytest.raises(ImageGenError) as caught:
        allowance.take(1, "output image 2")
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    assert "101" in caught.value.message and "at most 100" in caught.value.message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_mmap_threshold_is_set_without_starting_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started at startup: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    assert return_large_frees_to_os() is True
