"""Each upstream attempt's timeout is capped by what is left of the request deadline, not only by the setting."""

from __future__ import annotations

import pytest

from imagegen_mcp.deadline import Deadline
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.providers.upstream_http import UpstreamFailure, request_json
from tests.fakes.http_fake import FakeApi, Reply
from tests.integration.provider_support import make_ctx

pytestmark = pytest.mark.anyio


def _no_failure(status: int, body: object) -> UpstreamFailure:
    return UpstreamFailure()


class _Echo(FakeApi):
    def handle(self, request):  # type: ignore[no-untyped-def]
        return Reply(json={"ok": True})


async def test_the_attempt_timeout_is_what_the_deadline_leaves() -> None:
    with _Echo().running() as (base, fake):
        ctx = make_ctx(fake, {}, upstream_timeout_seconds=120.0)
        deadline = Deadline(2.0)
        sent: list[dict[str, float]] = []

        async def record(request):  # type: ignore[no-untyped-def]
            sent.append(request.extensions["timeout"])

        ctx.http.upstream().event_hooks["request"].append(record)
        answer = await request_json(
            ctx, "fake", "GET", f"{base}/v1/x", deadline=deadline, secret="k", parse_failure=_no_failure
        )
        assert answer == {"ok": True}
        (timeouts,) = sent
        assert 0 < timeouts["read"] <= 2.0 and 0 < timeouts["connect"] <= 2.0
        await ctx.http.aclose()


async def test_an_upstream_slower_than_the_deadline_is_cut_at_the_deadline() -> None:
    """The fake answers after 3 s, well inside the 120 s per-attempt setting: only the 0.5 s deadline cuts it."""
    with _Echo().running() as (base, fake):
        fake.script(Reply(json={"late": True}, hang=3.0))
        ctx = make_ctx(fake, {}, upstream_timeout_seconds=120.0)
        with pytest.raises(ImageGenError) as info:
            await request_json(
                ctx, "fake", "GET", f"{base}/v1/x", deadline=Deadline(0.5), secret="k", parse_failure=_no_failure
            )
        assert info.value.code == ErrorCode.UPSTREAM_TIMEOUT
        await ctx.http.aclose()
