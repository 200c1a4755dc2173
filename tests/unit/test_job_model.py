"""The job state machine: who may claim, renew, finish and cancel, and what a dead worker turns into."""

from __future__ import annotations

from imagegen_mcp.jobs import model

OWNER = {"id": "k_1", "kind": "bearer", "label": None, "allowed_models": None}


def _queued(now: float = 100.0) -> dict[str, object]:
    return model.new_record(owner=OWNER, operation="generate", request={}, request_id="r", queue_timeout=50, now=now)


def test_a_queued_job_is_claimed_once() -> None:
    job = model.claim(_queued(), worker="a", lease=10, now=101)
    assert job is not None and job["status"] == "running" and job["attempt"] == 1 and job["worker"] == "a"
    assert model.claim(job, worker="b", lease=10, now=105) is None  # the lease is live


def test_a_dead_attempt_is_retried_only_if_it_never_reached_the_upstream() -> None:
    job = model.claim(_queued(), worker="a", lease=10, now=101)
    assert job is not None
    retried = model.claim(job, worker="b", lease=10, now=120)
    assert retried is not None and retried["attempt"] == 2 and retried["worker"] == "b"
    started = model.renew(job, worker="a", attempt=1, lease=10, now=102, upstream_started=True)
    assert started is not None and started["upstream_started"]
    assert model.claim(started, worker="b", lease=10, now=200) is None  # may have been billed: never again
    failed = model.expired_failure(started, now=200)
    assert failed is not None and failed["status"] == "failed" and failed["error"]["code"] == "upstream_error"


def test_expiry_fails_stale_jobs_and_leaves_healthy_ones() -> None:
    queued = _queued()
    assert model.expired_failure(queued, now=120) is None
    late = model.expired_failure(queued, now=151)
    assert late is not None and late["error"]["code"] == "internal"
    assert model.claim(queued, worker="a", lease=10, now=151) is None  # past the queue deadline
    running = model.claim(queued, worker="a", lease=10, now=101)
    assert running is not None and model.expired_failure(running, now=105) is None
    dead = model.expired_failure(running, now=112)
    assert dead is not None and dead["error"]["code"] == "internal" and "before calling" in dead["error"]["message"]


def test_a_lost_attempt_can_neither_renew_nor_finish() -> None:
    job = model.claim(_queued(), worker="a", lease=10, now=101)
    cancelled = model.cancel(job, now=102)
    assert cancelled is not None and cancelled["status"] == "cancelled"
    assert model.renew(cancelled, worker="a", attempt=1, lease=10, now=103) is None
    assert model.finish(cancelled, worker="a", attempt=1, now=103, result={"images": []}) is None
    assert model.cancel(cancelled, now=104) is None  # cancelling an ended job changes nothing
    done = model.finish(job, worker="a", attempt=1, now=103, result={"images": []})
    assert done is not None and done["status"] == "succeeded" and done["finished_by"] == "a:1"
    assert model.finish(job, worker="b", attempt=1, now=103, error={"code": "internal"}) is None
