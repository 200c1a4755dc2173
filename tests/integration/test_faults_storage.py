"""Storage faults through the MCP endpoint: GCS upload and IAM signBlob failures, local write failures → typed errors.

The server subprocess resolves real ADC from a service-account key file whose token endpoint is a loopback fake and
whose universe domain is not googleapis.com (so google-auth makes no regional-access-boundary lookup to Google);
it signs through the fake signBlob as another account, and stores in the real fake-gcs-server binary.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.gcs_server import create_bucket, start_fake_gcs
from tests.fakes.google_token_server import start_fake_token_server, write_service_account_file
from tests.fakes.iam_credentials_server import FakeIamCredentials, start_fake_iam_credentials
from tests.integration.reliability_support import (
    assert_success,
    error_code,
    generate,
    mcp_client,
    output_files,
)
from tests.support.servers import ServerHandle, start_server

BUCKET = "imagegen-fault-outputs"
SIGNER = "signer@test-project.iam.gserviceaccount.com"
DEADLINE = 8.0


@dataclass
class GcsRig:
    gcs_url: str
    iam: FakeIamCredentials
    env: dict[str, str]


def bucket_objects(gcs_url: str, bucket: str = BUCKET) -> list[str]:
    with urllib.request.urlopen(f"{gcs_url}/storage/v1/b/{bucket}/o", timeout=5) as response:
        return sorted(item["name"] for item in json.loads(response.read()).get("items", []))


def gcs_delete(gcs_url: str, path: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{gcs_url}/storage/v1/{path}", method="DELETE"), timeout=5).close()


@contextlib.contextmanager
def gcs_rig(tmp: Path, stack: contextlib.ExitStack) -> Iterator[GcsRig]:
    token_uri, _ = stack.enter_context(start_fake_token_server())
    iam_url, iam = stack.enter_context(start_fake_iam_credentials())
    gcs_url = stack.enter_context(start_fake_gcs((BUCKET,)))
    key_file = write_service_account_file(tmp / "adc.json", token_uri)
    info = json.loads(key_file.read_text())
    info["universe_domain"] = "imagegen.test"
    key_file.write_text(json.dumps(info))
    env = {
        "IMAGEGEN_STORAGE": "gcs",
        "IMAGEGEN_BUCKET": BUCKET,
        "STORAGE_EMULATOR_HOST": gcs_url,
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "GOOGLE_CLOUD_PROJECT": "test-project",
        "NO_GCE_CHECK": "True",
        "IMAGEGEN_SIGNING_SERVICE_ACCOUNT": SIGNER,
        "IMAGEGEN_IAM_CREDENTIALS_ENDPOINT": iam_url,
        "IMAGEGEN_ENABLE_PLACEHOLDER": "true",
        "IMAGEGEN_DEFAULT_MODEL": "local/placeholder",
        "IMAGEGEN_PROVIDERS": "openai",
        "IMAGEGEN_VERTEX_ENABLED": "false",
        "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
        "IMAGEGEN_REQUEST_DEADLINE_SECONDS": str(DEADLINE),
        "IMAGEGEN_STORAGE_TIMEOUT_SECONDS": "3",
    }
    yield GcsRig(gcs_url, iam, env)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GcsRig, ServerHandle]]:
    with contextlib.ExitStack() as stack:
        rig = stack.enter_context(gcs_rig(tmp_path_factory.mktemp("gcs-rig"), stack))
        handle = stack.enter_context(start_server(rig.env))
        yield rig, handle


@pytest.fixture
def iam(rig: tuple[GcsRig, ServerHandle]) -> Iterator[FakeIamCredentials]:
    fake = rig[0].iam
    yield fake
    fake.deny_status = None


async def timed_call(handle: ServerHandle) -> tuple[str | None, dict, float]:
    """A generation's code, body and how much longer than a no-op call (list_models, same session, just before) it took.

    The no-op's time is what a round trip costs on this machine right now; the rest is what the server spent.
    Every storage defect these tests guard against (the library's own 120 s retry, no timeout) costs far more than
    DEADLINE, which the server enforces on its own clock.
    """
    async with mcp_client(handle.mcp_url) as client:
        started = time.monotonic()
        await client.call_tool("list_models", {})
        baseline = time.monotonic() - started
        started = time.monotonic()
        result = await generate(client, "a paper boat")
        elapsed = time.monotonic() - started
    return error_code(result), dict(result.structured_content or {}), elapsed - baseline


@pytest.mark.anyio
async def test_gcs_happy_path_stores_one_object(rig: tuple[GcsRig, ServerHandle]) -> None:
    gcs, handle = rig
    before = set(bucket_objects(gcs.gcs_url))
    async with mcp_client(handle.mcp_url) as client:
        body = assert_success(await generate(client, "a paper boat"))
    assert set(bucket_objects(gcs.gcs_url)) - before == {f"outputs/{body['images'][0]['id']}"}
    assert SIGNER in urllib.parse.unquote(body["images"][0]["url"])


@pytest.mark.anyio
async def test_signblob_500_is_storage_error_and_the_upload_is_removed(
    rig: tuple[GcsRig, ServerHandle], iam: FakeIamCredentials
) -> None:
    gcs, handle = rig
    before = bucket_objects(gcs.gcs_url)
    iam.deny_status = 500
    calls_before = len(iam.requests)
    code, body, elapsed = await timed_call(handle)
    assert code == "storage_error", body
    assert body["error"]["retryable"] is True
    assert len(iam.requests) - calls_before == 3, "signBlob 5xx is retried before giving up"
    assert elapsed < DEADLINE
    assert bucket_objects(gcs.gcs_url) == before, "the object uploaded before signing failed must be deleted"


@pytest.mark.anyio
async def test_signblob_403_is_misconfigured_and_the_upload_is_removed(
    rig: tuple[GcsRig, ServerHandle], iam: FakeIamCredentials
) -> None:
    """A denied signBlob is an operator's IAM mistake: `misconfigured` (not retryable), with the role to grant."""
    gcs, handle = rig
    before = bucket_objects(gcs.gcs_url)
    iam.deny_status = 403
    code, body, elapsed = await timed_call(handle)
    assert code == "misconfigured", body
    assert body["error"]["retryable"] is False
    assert "roles/iam.serviceAccountTokenCreator" in body["error"]["message"]
    assert elapsed < DEADLINE
    assert bucket_objects(gcs.gcs_url) == before


@pytest.mark.anyio
async def test_missing_bucket_is_storage_error(rig: tuple[GcsRig, ServerHandle]) -> None:
    gcs, handle = rig
    for name in bucket_objects(gcs.gcs_url):
        gcs_delete(gcs.gcs_url, f"b/{BUCKET}/o/{urllib.parse.quote(name, safe='')}")
    gcs_delete(gcs.gcs_url, f"b/{BUCKET}")
    try:
        code, body, elapsed = await timed_call(handle)
    finally:
        create_bucket(gcs.gcs_url, BUCKET)
    assert code == "storage_error", body
    assert "bucket does not exist" in body["error"]["message"]
    assert elapsed < DEADLINE
    assert bucket_objects(gcs.gcs_url) == []


@pytest.mark.anyio
async def test_gcs_down_is_storage_error_within_the_deadline(tmp_path: Path) -> None:
    """fake-gcs-server stopped after startup: the upload's retries are bounded by IMAGEGEN_STORAGE_TIMEOUT_SECONDS."""
    with contextlib.ExitStack() as stack:
        gcs_stack = stack.enter_context(contextlib.ExitStack())
        rig = stack.enter_context(gcs_rig(tmp_path, gcs_stack))
        handle = stack.enter_context(start_server(rig.env))
        gcs_stack.close()  # stops fake-gcs-server (and the token/IAM fakes: they are not reached before the upload)
        code, body, elapsed = await timed_call(handle)
        assert code == "storage_error", body
        assert body["error"]["retryable"] is True
        assert elapsed < DEADLINE, f"took {elapsed:.1f}s"


@pytest.mark.anyio
async def test_local_store_write_failure_is_storage_error_and_leaves_nothing(tmp_path: Path) -> None:
    with start_server({"IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0"}) as handle:
        root = Path(handle.env["IMAGEGEN_LOCAL_DIR"])
        before = output_files(handle)
        moved = tmp_path / "outputs"
        shutil.move(root, moved)
        root.write_bytes(b"not a folder")  # every write below it now fails with an OSError
        try:
            code, body, _ = await timed_call(handle)
        finally:
            root.unlink()
            shutil.move(moved, root)
        assert code == "storage_error", body
        assert "local store" in body["error"]["message"]
        assert output_files(handle) == before
