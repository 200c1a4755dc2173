"""Jobs on the Google Cloud path: Firestore (the real emulator) and Cloud Tasks (a wire fake that really dispatches).

Two server processes share Firestore and an output folder; Cloud Tasks delivers every task to the second one's
internal worker route with an OIDC token signed by a test key, as Cloud Run would see it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.fakes.cloud_tasks_server import FakeCloudTasks
from tests.fakes.google_certs_server import GoogleCertsServer, SigningKey, id_token_claims
from tests.fakes.google_token_server import start_fake_token_server, write_service_account_file
from tests.integration.reliability_support import assert_success, mcp_client, wait_for
from tests.support.servers import ServerHandle, free_port, start_server

pytestmark = pytest.mark.anyio
QUEUE = "projects/imagegen-test/locations/europe-west1/queues/imagegen-jobs"
TASKS_SA = "imagegen-tasks@imagegen-test.iam.gserviceaccount.com"
WORKER_PATH = "/internal/jobs/run"


class CloudPair:
    def __init__(self, front: ServerHandle, worker: ServerHandle, tasks: FakeCloudTasks, key: SigningKey) -> None:
        self.front, self.worker, self.tasks, self.key = front, worker, tasks, key


@pytest.fixture(scope="module")
def cloud(firestore_emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudPair]:
    key = SigningKey("tasks-test-key")
    certs = GoogleCertsServer()
    certs.publish(key)
    tmp = tmp_path_factory.mktemp("cloud")
    with contextlib.ExitStack() as stack:
        stack.enter_context(certs.running())
        token_uri, _ = stack.enter_context(start_fake_token_server())
        tasks = FakeCloudTasks(key)
        tasks_url, _ = stack.enter_context(tasks.running())
        worker_port = free_port()
        env = {
            "IMAGEGEN_STATE": "firestore",
            "FIRESTORE_EMULATOR_HOST": firestore_emulator,
            "GOOGLE_CLOUD_PROJECT": "imagegen-test",
            "GOOGLE_APPLICATION_CREDENTIALS": str(write_service_account_file(tmp / "adc.json", token_uri)),
            "NO_GCE_CHECK": "True",
            "IMAGEGEN_JOBS": "cloud-tasks",
            "IMAGEGEN_TASKS_QUEUE": QUEUE,
            "IMAGEGEN_TASKS_SERVICE_ACCOUNT": TASKS_SA,
            "IMAGEGEN_TASKS_WORKER_URL": f"http://127.0.0.1:{worker_port}",
            "IMAGEGEN_TASKS_ENDPOINT": tasks_url,
            "IMAGEGEN_IAM_CERTS_URL": certs.url,
            "IMAGEGEN_LOCAL_DIR": str(tmp / "outputs"),  # one folder standing in for the shared bucket
            "IMAGEGEN_DEFAULT_MODEL": "local/placeholder",
            "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
        }
        worker = stack.enter_context(start_server(env, port=worker_port))
        front = stack.enter_context(start_server(env))
        yield CloudPair(front, worker, tasks, key)


async def test_a_job_created_through_one_process_is_run_and_reported_by_the_other(cloud: CloudPair) -> None:
    async with mcp_client(cloud.front.mcp_url) as front:
        started = await front.call_tool("generate_image", {"prompt": "a shared lighthouse", "wait_seconds": 0})
        assert not started.is_error, started.content
        body: dict[str, Any] = started.structured_content or {}
        job_id = body["job_id"]
        assert body["status"] in ("queued", "running", "succeeded")
    task_name = f"{QUEUE}/tasks/{job_id}"
    assert wait_for(lambda: cloud.tasks.delivered().get(task_name) == [200], 30.0), cloud.tasks.delivered()
    assert cloud.tasks.task_body(task_name) == {"job_id": job_id}
    async with mcp_client(cloud.worker.mcp_url) as other:
        done = assert_success(await other.call_tool("get_job", {"job_id": job_id, "wait_seconds": 20}))
    assert done["status"] == "succeeded" and done["job_id"] == job_id
    assert httpx2.get(done["images"][0]["url"]).status_code == 200
    # The front process reads the same record from Firestore.
    async with mcp_client(cloud.front.mcp_url) as front:
        again = assert_success(await front.call_tool("get_job", {"job_id": job_id, "wait_seconds": 0}))
    assert again["images"][0]["id"] == done["images"][0]["id"]
    assert "job task" in cloud.worker.logs() and "job task" not in cloud.front.logs()


def _post_worker(cloud: CloudPair, token: str | None, body: Any = None) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.post(f"{cloud.worker.base_url}{WORKER_PATH}", json=body or {"job_id": "job_x"}, headers=headers)


def test_the_worker_route_refuses_everyone_but_the_tasks_service_account(cloud: CloudPair) -> None:
    audience = f"{cloud.worker.base_url}"
    assert _post_worker(cloud, None).status_code == 401
    other_sa = cloud.key.sign(id_token_claims(audience, email="someone@imagegen-test.iam.gserviceaccount.com"))
    assert _post_worker(cloud, other_sa).status_code in (401, 403)
    wrong_audience = cloud.key.sign(id_token_claims("https://elsewhere.example", email=TASKS_SA))
    assert _post_worker(cloud, wrong_audience).status_code == 401
    forged = SigningKey("tasks-test-key").sign(id_token_claims(audience, email=TASKS_SA))  # same kid, other key
    assert _post_worker(cloud, forged).status_code == 401
    good = cloud.key.sign(id_token_claims(audience, email=TASKS_SA))
    answer = _post_worker(cloud, good, {"job_id": "job_doesnotexist"})
    assert answer.status_code == 200 and answer.json() == {"outcome": "skipped"}
    # The worker route is not an MCP endpoint, and /mcp does not run jobs.
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert _post_worker(cloud, good, rpc).json()["outcome"] == "rejected"


def test_cloud_tasks_settings_are_checked(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from imagegen_mcp.config import Settings

    with pytest.raises(ValidationError, match="IMAGEGEN_TASKS_QUEUE"):
        Settings(_env_file=None, jobs="cloud-tasks", local_dir=tmp_path)  # type: ignore[call-arg]


async def test_an_inline_input_too_big_for_a_firestore_record_is_a_typed_error(cloud: CloudPair) -> None:
    import base64
    import io
    import os

    from PIL import Image

    noise = Image.frombytes("RGB", (700, 700), os.urandom(700 * 700 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    inline = base64.b64encode(out.getvalue()).decode()
    assert len(inline) > 1_000_000
    async with mcp_client(cloud.front.mcp_url) as front:
        result = await front.call_tool("edit_image", {"prompt": "brighter", "images": [inline], "wait_seconds": 0})
    body: dict[str, Any] = result.structured_content or {}
    assert result.is_error and body["error"]["code"] == "invalid_argument", body
    assert "https URLs" in body["error"]["message"] and "job_id" not in body
