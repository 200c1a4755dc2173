"""SecretManagerSource through the real Secret Manager client (REST transport) against a local fake of the API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from google.oauth2 import credentials as user_credentials

from imagegen_mcp.config import Settings
from imagegen_mcp.deps import build_secrets
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.secrets import base as secret_names
from imagegen_mcp.secrets.base import SecretSource
from imagegen_mcp.secrets.secret_manager import SecretManagerSource
from tests.fakes.iam_credentials_server import google_error as google_reply
from tests.fakes.secret_manager_server import FakeSecretManager, start_fake_secret_manager
from tests.support.timing import clearly_before

pytestmark = pytest.mark.anyio

PROJECT = "test-project"
OPENAI_ID = "imagegen-openai-api-key"
REPLICATE_ID = "imagegen-replicate-api-token"


class Clock:
    """A monotonic clock the test moves by hand (TTL expiry without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def secret_manager() -> Iterator[tuple[str, FakeSecretManager]]:
    with start_fake_secret_manager({OPENAI_ID: "sk-openai-v1\n"}, project=PROJECT) as served:
        yield served


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def source(secret_manager: tuple[str, FakeSecretManager], clock: Clock) -> AsyncIterator[SecretManagerSource]:
    endpoint, _ = secret_manager
    src = make_source(endpoint, clock)
    yield src
    await src.aclose()


def make_source(endpoint: str, clock: Clock | None = None, environ: dict[str, str] | None = None, **kw: Any):
    settings = Settings(
        secrets="secret-manager",
        secret_manager_endpoint=endpoint,
        secret_project=PROJECT,
        secret_ttl_seconds=60,
        **kw,
    )
    return SecretManagerSource(
        settings,
        credentials=user_credentials.Credentials(token="test-token"),
        environ=environ or {},
        clock=clock or time.monotonic,
    )


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def misconfigured(source: SecretManagerSource, name: str, secret_id: str) -> str:
    """The message of the `misconfigured` error `get(name)` raises; it names the secret and leaks nothing."""
    with pytest.raises(ImageGenError) as err:
        await source.get(name)
    assert err.value.code is ErrorCode.MISCONFIGURED
    assert f"projects/{PROJECT}/secrets/{secret_id}" in err.value.message
    shown = str(err.value.to_dict())
    assert "sk-openai" not in shown and "test-token" not in shown
    return err.value.message


async def test_reads_latest_version_and_caches(
    source: SecretManagerSource, secret_manager: tuple[str, FakeSecretManager]
) -> None:
    _, fake = secret_manager
    assert isinstance(source, SecretSource)
    assert await source.get(secret_names.OPENAI) == "sk-openai-v1"
    assert await source.get(secret_names.OPENAI) == "sk-openai-v1"
    assert fake.access_count(OPENAI_ID) == 1
    request = fake.requests[0]
    assert request.path == f"/v1/projects/{PROJECT}/secrets/{OPENAI_ID}/versions/latest:access"
    assert request.headers["authorization"] == "Bearer test-token"


async def test_concurrent_first_reads_share_one_fetch(
    source: SecretManagerSource, secret_manager: tuple[str, FakeSecretManager]
) -> None:
    _, fake = secret_manager
    fake.delay = 0.2
    values = await asyncio.gather(*(source.get(secret_names.OPENAI) for _ in range(20)))
    assert values == ["sk-openai-v1"] * 20
    assert fake.access_count(OPENAI_ID) == 1


async def test_ttl_expiry_serves_stale_value_while_refreshing(
    source: SecretManagerSource, secret_manager: tuple[str, FakeSecretManager], clock: Clock
) -> None:
    _, fake = secret_manager
    assert await source.get(secret_names.OPENAI) == "sk-openai-v1"
    fake.set(OPENAI_ID, "sk-openai-v2")  # rotation
    clock.now += 30
    assert await source.get(secret_names.OPENAI) == "sk-openai-v1"  # still fresh: no request
    assert fake.access_count(OPENAI_ID) == 1

    fake.delay = 2.0
    clock.now += 31
    started = time.monotonic()
    assert await source.get(secret_names.OPENAI) == "sk-openai-v1"  # expired: stale value, no waiting
    assert await source.get(secret_names.OPENAI) == "sk-openai-v1"
    clearly_before(time.monotonic() - started, 2.0, "an expired value is served stale, not awaited")

    async def rotated() -> bool:
        return await source.get(secret_names.OPENAI) == "sk-openai-v2"

    await wait_for(rotated)
    assert fake.access_count(OPENAI_ID) == 2  # one background refresh, however many callers


async def test_missing_secret_is_none_and_cached(
    source: SecretManagerSource, secret_manager: tuple[str, FakeSecretManager], clock: Clock
) -> None:
    _, fake = secret_manager
    assert await source.get(secret_names.REPLICATE) is None
    assert await source.get(secret_names.REPLICATE) is None
    assert fake.access_count(REPLICATE_ID) == 1

    fake.set(REPLICATE_ID, "r8-token")  # created later: picked up after the TTL
    clock.now += 61
    await source.get(secret_names.REPLICATE)

    async def created() -> bool:
        return await source.get(secret_names.REPLICATE) == "r8-token"

    await wait_for(created)


async def test_crc_mismatch_is_misconfigured(
    source: SecretManagerSource, secret_manager: tuple[str, FakeSecretManager]
) -> None:
    _, fake = secret_manager
    fake.corrupt(OPENAI_ID)
    assert "CRC32C" in await misconfigured(source, secret_names.OPENAI, OPENAI_ID)


async def test_permission_denied_is_misconfigured_without_value(
    source: SecretManagerSource, secret_manager: tuple[str, FakeSecretManager]
) -> None:
    _, fake = secret_manager
    fake.deny(OPENAI_ID)
    assert "roles/secretmanager.secretAccessor" in await misconfigured(source, secret_names.OPENAI, OPENAI_ID)
    # Other secrets keep working.
    fake.set(REPLICATE_ID, "r8-ok")
    assert await source.get(secret_names.REPLICATE) == "r8-ok"


async def test_failed_refresh_keeps_last_good_value(
    source: SecretManagerSource, secret_manager: tuple[str, FakeSecretManager], clock: Clock
) -> None:
    _, fake = secret_manager
    assert await source.get(secret_names.OPENAI) == "sk-openai-v1"
    fake.deny(OPENAI_ID)
    clock.now += 61
    assert await source.get(secret_names.OPENAI) == "sk-openai-v1"

    async def refreshed_once() -> bool:
        return fake.access_count(OPENAI_ID) == 2 and not source._inflight

    await wait_for(refreshed_once)
    assert await source.get(secret_names.OPENAI) == "sk-openai-v1"  # the failure did not evict the value


async def test_environment_variable_wins(secret_manager: tuple[str, FakeSecretManager]) -> None:
    endpoint, fake = secret_manager
    src = make_source(endpoint, environ={"OPENAI_API_KEY": "sk-from-env", "UNRELATED": "x"})
    assert await src.get(secret_names.OPENAI) == "sk-from-env"
    assert fake.access_count() == 0
    assert "OPENAI_API_KEY" in src.describe(secret_names.OPENAI)
    await src.aclose()


async def test_warm_prefetches_every_secret(
    source: SecretManagerSource, secret_manager: tuple[str, FakeSecretManager]
) -> None:
    _, fake = secret_manager
    fake.deny(REPLICATE_ID)  # a failing secret is logged, not raised
    await source.warm()
    assert fake.access_count() == 5
    assert await source.get(secret_names.OPENAI) == "sk-openai-v1"
    assert await source.get(secret_names.GEMINI) is None
    with pytest.raises(ImageGenError):
        await source.get(secret_names.REPLICATE)
    assert fake.access_count() == 5


async def test_describe_and_unknown_name(source: SecretManagerSource) -> None:
    assert source.describe(secret_names.OPENAI).startswith(
        f"Secret Manager secret projects/{PROJECT}/secrets/{OPENAI_ID}"
    )
    assert await source.get("no-such-logical-name") is None


async def test_secret_ids_come_from_settings(secret_manager: tuple[str, FakeSecretManager]) -> None:
    endpoint, fake = secret_manager
    fake.set("team-openai", "sk-team")
    src = make_source(endpoint, openai_key_secret="team-openai")
    assert await src.get(secret_names.OPENAI) == "sk-team"
    await src.aclose()


async def test_missing_project_is_misconfigured(secret_manager: tuple[str, FakeSecretManager]) -> None:
    endpoint, fake = secret_manager
    settings = Settings(secrets="secret-manager", secret_manager_endpoint=endpoint, secret_project=None)
    settings.google_cloud_project = None
    src = SecretManagerSource(settings, credentials=user_credentials.Credentials(token="t"), environ={})
    with pytest.raises(ImageGenError) as err:
        await src.get(secret_names.OPENAI)
    assert err.value.code is ErrorCode.MISCONFIGURED and "GOOGLE_CLOUD_PROJECT" in err.value.message
    assert fake.access_count() == 0


async def test_transient_error_is_retried(
    source: SecretManagerSource, secret_manager: tuple[str, FakeSecretManager]
) -> None:
    _, fake = secret_manager
    fake.script(google_reply(503, "UNAVAILABLE", "try again"))
    assert await source.get(secret_names.OPENAI) == "sk-openai-v1"
    assert fake.access_count(OPENAI_ID) == 2


async def test_bad_request_is_misconfigured_without_retry(
    source: SecretManagerSource, secret_manager: tuple[str, FakeSecretManager]
) -> None:
    _, fake = secret_manager
    fake.script(google_reply(400, "FAILED_PRECONDITION", "Secret version is in DISABLED state."))
    await misconfigured(source, secret_names.OPENAI, OPENAI_ID)
    assert fake.access_count(OPENAI_ID) == 1


def test_build_secrets_picks_secret_manager() -> None:
    settings = Settings(secrets="secret-manager", secret_project=PROJECT)
    assert isinstance(build_secrets(settings), SecretManagerSource)
