"""errors.py's failure policy where it used to be broken: provider probes, the default model, cancellation."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from imagegen_mcp.catalog import load_catalog
from imagegen_mcp.deps import build_deps
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.providers.base import Availability
from imagegen_mcp.providers.routing import Router

pytestmark = pytest.mark.anyio
MODEL = "google/gemini-3-pro-image"  # offered by vertex and gemini


class Stop(BaseException):
    """Stands for cancellation / interpreter exit: must never be swallowed."""


class Probe:
    """A provider whose availability check answers, fails or raises as told."""

    def __init__(self, name: str, outcome: BaseException | Availability) -> None:
        self.name = name
        self.outcome = outcome

    async def availability(self) -> Availability:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def _router(outcome: BaseException | Availability) -> Router:
    return Router(load_catalog(), {"vertex": Probe("vertex", outcome)}, ["vertex"])  # type: ignore[dict-item]


async def test_a_crashing_probe_is_unavailable_the_same_way_in_status_and_route(caplog) -> None:  # type: ignore[no-untyped-def]
    router = _router(RuntimeError("bug in the check"))
    with caplog.at_level(logging.WARNING):
        status = {s.model.id: s for s in await router.status()}[MODEL]
        with pytest.raises(ImageGenError) as routed:
            await router.route(MODEL)
    assert status.live_provider is None and "vertex availability check failed" in (status.reason or "")
    assert routed.value.code == ErrorCode.MISCONFIGURED
    assert "vertex availability check failed" in routed.value.message
    traced = [r for r in caplog.records if r.exc_info and "availability check failed" in r.getMessage()]
    assert len(traced) == 2, "each defect is logged with its trace"


@pytest.mark.parametrize("where", ["status", "route"])
async def test_cancellation_in_a_probe_is_never_swallowed(where: str) -> None:
    router = _router(Stop())
    with pytest.raises(Stop):
        if where == "status":
            await router.status()
        else:
            await router.route(MODEL)


async def test_default_model_falls_back_only_on_an_answer_not_on_a_defect(make_settings) -> None:  # type: ignore[no-untyped-def]
    deps = build_deps(make_settings())
    assert await deps.effective_default_model() == "local/placeholder"  # the catalog default is not live here

    class BrokenRouter:
        async def route(self, model_id: str) -> None:
            raise RuntimeError("defect in routing")

    broken = dataclasses.replace(deps, router=BrokenRouter())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await broken.effective_default_model()
