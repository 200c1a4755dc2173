"""The internal worker route Cloud Tasks calls: only the tasks service account's OIDC token gets in (not MCP)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..access.iam import IamAuthenticator
from ..errors import ErrorCode, ImageGenError
from .cloud_tasks import WORKER_PATH, worker_audience

if TYPE_CHECKING:
    from ..deps import Deps

log = logging.getLogger(__name__)


def worker_route(deps: Deps) -> Route:
    """POST {"job_id": ...}: run the job inside this request, so Cloud Run gives it CPU until it ends."""
    settings = deps.settings
    assert settings.tasks_service_account
    verifier = IamAuthenticator(
        settings.model_copy(
            update={
                "auth": ["iam"],
                "iam_audience": [worker_audience(settings)],
                "iam_allowed_principals": [settings.tasks_service_account],
                "iam_allowed_domains": [],
            }
        )
    )

    async def run(request: Request) -> Response:
        client = request.client
        try:
            await verifier.authenticate(
                {k.lower(): v for k, v in request.headers.items()},
                client_host=client.host if client else None,
                server_host=None,
            )
        except ImageGenError as err:
            status = 401 if err.code == ErrorCode.UNAUTHENTICATED else 403
            return JSONResponse({"error": {"code": err.code.value, "message": "not the tasks service account"}}, status)
        try:
            body = await request.json()
            job_id = body["job_id"]
            if not isinstance(job_id, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            # Answer 200: a malformed task will never succeed, so Cloud Tasks must not retry it.
            return JSONResponse({"outcome": "rejected", "reason": 'body must be {"job_id": "..."}'}, 200)
        outcome = await deps.job_queue.run_here(job_id)
        log.info("job task", extra={"fields": {"job_id": job_id, "outcome": outcome}})
        return JSONResponse({"outcome": outcome})

    return Route(WORKER_PATH, run, methods=["POST"])
