"""A person through Cloud Run IAM with nothing but `gcloud auth login`: user ID tokens as gcloud mints them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from imagegen_mcp.access.iam import GCLOUD_CLIENT_ID, SIGNATURE_REMOVED
from tests.fakes.google_certs_server import GoogleCertsServer, SigningKey
from tests.support.mcp_http import HttpRecord, mcp_client
from tests.support.servers import ServerHandle, start_server

pytestmark = pytest.mark.anyio
SERVICE_URL = "https://imagegen-mcp-dev-123456789.europe-west1.run.app"


def gcloud_user_token(key: SigningKey, email: str, **extra: Any) -> str:
    """Shaped like `gcloud auth print-identity-token` for a user account: gcloud's client as aud and azp."""
    import time

    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "azp": GCLOUD_CLIENT_ID,
        "aud": GCLOUD_CLIENT_ID,
        "sub": "104" + uuid.uuid4().hex[:18],
        "hd": email.rpartition("@")[2],
        "email": email,
        "email_verified": True,
        "at_hash": "q2mPIfNEtRBKAXPZ8hV2xg",
        "iat": now,
        "exp": now + 3600,
        **extra,
    }
    return key.sign(claims, header={"alg": "RS256", "kid": key.kid, "typ": "JWT"})


def through_cloud_run(token: str) -> str:
    """What the app receives after Cloud Run IAM verified the token: the same token, its signature removed."""
    head, body, _ = token.split(".")
    return f"{head}.{body}.{SIGNATURE_REMOVED}"


@pytest.fixture(scope="module")
def google() -> Iterator[tuple[GoogleCertsServer, SigningKey]]:
    server = GoogleCertsServer(max_age=3600)
    with server.running():
        yield server, server.publish(SigningKey("kid-user"))


@pytest.fixture(scope="module")
def cloud_run_iam(google: tuple[GoogleCertsServer, SigningKey]) -> Iterator[ServerHandle]:
    certs, _ = google
    env = {  # what infra/modules/imagegen_service/run.tf sets in IAM mode, plus what Cloud Run sets itself
        "IMAGEGEN_AUTH": "iam",
        "IMAGEGEN_IAM_CLOUD_RUN_ENFORCED": "true",
        "IMAGEGEN_PUBLIC_URL": SERVICE_URL,
        "IMAGEGEN_IAM_ALLOWED_DOMAINS": "acme.com",
        "IMAGEGEN_IAM_CERTS_URL": certs.url,
        "IMAGEGEN_DEFAULT_MODEL": "local/placeholder",
        "K_SERVICE": "imagegen-mcp-dev",
    }
    with start_server(env) as handle:
        yield handle


async def _call(handle: ServerHandle, token: str) -> tuple[list[int], Any]:
    record = HttpRecord()
    try:
        async with mcp_client(
            handle.mcp_url, headers={"Authorization": f"Bearer {token}"}, record=record, timeout=30
        ) as client:
            return record.sequence, await client.call_tool("generate_image", {"prompt": "a lighthouse"})
    except BaseException as exc:  # the client raises (a group) when the server answers 401
        return record.sequence, exc


async def test_user_token_through_cloud_run_iam_is_accepted(
    cloud_run_iam: ServerHandle, google: tuple[GoogleCertsServer, SigningKey]
) -> None:
    _, key = google
    statuses, result = await _call(cloud_run_iam, through_cloud_run(gcloud_user_token(key, "ana@acme.com")))
    assert set(statuses) <= {200, 202}, statuses
    assert not result.is_error, result.content
    assert '"caller": "ana@acme.com"' in cloud_run_iam.logs()  # the verified e-mail is the principal


async def test_allowlists_still_apply_to_people(
    cloud_run_iam: ServerHandle, google: tuple[GoogleCertsServer, SigningKey]
) -> None:
    _, key = google
    statuses, _ = await _call(cloud_run_iam, through_cloud_run(gcloud_user_token(key, "eve@elsewhere.org")))
    assert statuses and statuses[0] == 401


async def test_user_token_not_through_cloud_run_must_name_the_service(
    cloud_run_iam: ServerHandle, google: tuple[GoogleCertsServer, SigningKey]
) -> None:
    # The same token with its signature intact did not pass Cloud Run IAM: gcloud's audience is not this service.
    _, key = google
    statuses, _ = await _call(cloud_run_iam, gcloud_user_token(key, "ana@acme.com"))
    assert statuses and statuses[0] == 401


async def test_other_audiences_stay_refused_behind_cloud_run(
    cloud_run_iam: ServerHandle, google: tuple[GoogleCertsServer, SigningKey]
) -> None:
    _, key = google
    token = gcloud_user_token(key, "ana@acme.com", aud="https://someone-else.a.run.app")
    statuses, _ = await _call(cloud_run_iam, through_cloud_run(token))
    assert statuses and statuses[0] == 401
