"""Hostile ID tokens and deployments (issue 11): odd claim types, lax email_verified, stripped tokens off Cloud Run,
requests relayed to a `none` server, forwarded headers from anyone."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx2
import pytest

from imagegen_mcp.access.auth import build_authenticator, check_startup
from imagegen_mcp.config import Settings
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.secrets.base import EnvSecretSource
from tests.fakes.google_certs_server import GoogleCertsServer, SigningKey, id_token_claims
from tests.integration.iam_support import HOSTS, SERVICE_URL, google_certs_fixture, settings_for, signing_key_fixture  # noqa: F401 (fixtures)
from tests.support.servers import ROOT, start_server

ON_CLOUD_RUN: dict[str, Any] = {"iam_cloud_run_enforced": True, "cloud_run_service": "imagegen"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def stripped(token: str) -> str:
    head, claims, _ = token.split(".")
    return f"{head}.{claims}.SIGNATURE_REMOVED_BY_GOOGLE"


async def outcome(settings: Settings, token: str) -> Any:
    """The caller the token yields, or the error code it is refused with (never another exception)."""
    auth = build_authenticator(settings, EnvSecretSource({}))
    try:
        return await auth.authenticate({"x-serverless-authorization": f"Bearer {token}"}, **HOSTS)
    except ImageGenError as err:
        return err.code
    finally:
        await auth.aclose()


ODD_CLAIMS = [
    pytest.param({"aud": [SERVICE_URL]}, id="aud-list"),
    pytest.param({"aud": {"url": SERVICE_URL}}, id="aud-object"),
    pytest.param({"iss": ["https://accounts.google.com"]}, id="iss-list"),
    pytest.param({"iss": {"iss": "https://accounts.google.com"}}, id="iss-object"),
    pytest.param({"exp": "9999999999"}, id="exp-string"),
    pytest.param({"iat": "0"}, id="iat-string"),
    pytest.param({"iat": [0]}, id="iat-list"),
    pytest.param({"email": ["dev@corp.example"]}, id="email-list"),
    pytest.param({"email": "dev@elsewhere.example", "hd": ["corp.example"]}, id="hd-list"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("odd", ODD_CLAIMS)
async def test_odd_claim_types_are_unauthenticated(
    google: GoogleCertsServer, key: SigningKey, odd: dict[str, Any]
) -> None:
    claims = id_token_claims(SERVICE_URL, email="dev@corp.example")
    verifying = settings_for(google, iam_allowed_domains="corp.example")
    trusting = settings_for(google, iam_allowed_domains="corp.example", **ON_CLOUD_RUN)
    for settings, token in ((verifying, key.sign(claims)), (trusting, stripped(key.sign(claims)))):
        assert (await outcome(settings, token)).id == "dev@corp.example"  # the same token without the odd claim
    odd_token = key.sign({**claims, **odd})
    assert await outcome(verifying, odd_token) is ErrorCode.UNAUTHENTICATED
    assert await outcome(trusting, stripped(odd_token)) is ErrorCode.UNAUTHENTICATED


@pytest.mark.anyio
async def test_deeply_nested_segment_is_unauthenticated(google: GoogleCertsServer) -> None:
    token = f"{_b64url(b'[' * 5000)}.{_b64url(b'{}')}.{_b64url(b'signature')}"
    assert len(token) < 8192
    assert await outcome(settings_for(google), token) is ErrorCode.UNAUTHENTICATED


@pytest.mark.anyio
@pytest.mark.parametrize("value", [1, 1.0, "1", "True", "yes", [True], {"verified": True}])
async def test_email_verified_must_be_true(google: GoogleCertsServer, key: SigningKey, value: Any) -> None:
    token = key.sign(id_token_claims(SERVICE_URL, email_verified=value))
    assert await outcome(settings_for(google), token) is ErrorCode.UNAUTHENTICATED


@pytest.mark.anyio
@pytest.mark.parametrize("value", [True, "true"])
async def test_email_verified_true_or_the_string_google_has_sent(
    google: GoogleCertsServer, key: SigningKey, value: Any
) -> None:
    token = key.sign(id_token_claims(SERVICE_URL, email="dev@example.com", email_verified=value))
    assert (await outcome(settings_for(google), token)).id == "dev@example.com"


@pytest.mark.anyio
async def test_domain_is_what_follows_the_last_at(google: GoogleCertsServer, key: SigningKey) -> None:
    settings = settings_for(google, iam_allowed_domains="corp.example")
    smuggled = key.sign(id_token_claims(SERVICE_URL, email="ana@corp.example@evil.example"))
    assert await outcome(settings, smuggled) is ErrorCode.UNAUTHENTICATED
    quoted = key.sign(id_token_claims(SERVICE_URL, email='"ana@evil.example"@corp.example'))
    assert (await outcome(settings, quoted)).id == '"ana@evil.example"@corp.example'


@pytest.mark.anyio
async def test_stripped_tokens_trusted_only_on_cloud_run(
    google: GoogleCertsServer, key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    off_cloud_run = settings_for(google, iam_cloud_run_enforced=True)
    for refuse in (
        lambda: build_authenticator(off_cloud_run, EnvSecretSource({})),
        lambda: check_startup(off_cloud_run, "127.0.0.1"),
    ):
        with pytest.raises(ImageGenError) as info:
            refuse()
        assert info.value.code is ErrorCode.MISCONFIGURED and "K_SERVICE" in info.value.message
    caplog.set_level(logging.INFO)
    on_cloud_run = settings_for(google, **ON_CLOUD_RUN)
    check_startup(on_cloud_run, "0.0.0.0")
    token = stripped(key.sign(id_token_claims(SERVICE_URL, email="dev@example.com")))
    assert (await outcome(on_cloud_run, token)).id == "dev@example.com"
    assert "trusting Cloud Run IAM" in caplog.text


def test_serve_refuses_stripped_token_trust_off_cloud_run(google: GoogleCertsServer) -> None:
    env = {"IMAGEGEN_AUTH": "iam", "IMAGEGEN_PUBLIC_URL": SERVICE_URL, "IMAGEGEN_IAM_CLOUD_RUN_ENFORCED": "true"}
    with pytest.raises(RuntimeError) as info, start_server({**env, "IMAGEGEN_IAM_CERTS_URL": google.url}, "cli"):
        pass
    assert "exited with 2" in str(info.value) and "K_SERVICE" in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "header", ["x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host", "x-forwarded-proto"]
)
async def test_none_mode_refuses_requests_a_proxy_relayed(header: str) -> None:
    # A proxy on this machine relays remote clients over loopback: peer and server are both 127.0.0.1.
    auth = build_authenticator(Settings(), EnvSecretSource({}))
    with pytest.raises(ImageGenError) as info:
        await auth.authenticate({header: "203.0.113.9"}, client_host="127.0.0.1", server_host="127.0.0.1")
    assert info.value.code is ErrorCode.MISCONFIGURED and "IMAGEGEN_ALLOW_UNAUTHENTICATED" in info.value.message
    relaxed = build_authenticator(Settings(allow_unauthenticated=True), EnvSecretSource({}))
    assert (await relaxed.authenticate({header: "x"}, client_host="127.0.0.1", server_host="127.0.0.1")).id == (
        "anonymous"
    )


def test_serve_on_cloud_run_does_not_take_forwarded_headers_from_the_peer() -> None:
    # uvicorn's proxy-headers middleware would make the scheme (and client address) whatever the peer claims.
    env = {"K_SERVICE": "imagegen", "IMAGEGEN_ALLOW_UNAUTHENTICATED": "true"}
    with start_server(env, "cli") as handle:
        response = httpx2.get(
            f"{handle.base_url}/healthz/",
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"},
            follow_redirects=False,
        )
    assert response.status_code in (307, 308)
    assert response.headers["location"] == f"{handle.base_url}/healthz"


def test_dockerfile_command_does_not_trust_forwarded_headers() -> None:
    command = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    shell = json.loads(command.removeprefix("CMD "))[-1]
    assert "--no-proxy-headers" in shell.split() and "forwarded-allow-ips" not in shell


GOOD_HEADER = _b64url(json.dumps({"alg": "RS256", "kid": "k", "typ": "JWT"}).encode())
BAD_PAYLOADS = [
    pytest.param("not*base64", id="not-base64"),
    pytest.param(_b64url(b"\xff\xfe\x00"), id="not-utf8"),
    pytest.param(_b64url(b"{not json"), id="not-json"),
    pytest.param(_b64url(b"[1, 2]"), id="json-list"),
    pytest.param(_b64url(b'"a string"'), id="json-string"),
    pytest.param(_b64url(b"[" * 5000), id="deeply-nested"),
    pytest.param("", id="empty"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("payload", BAD_PAYLOADS)
async def test_a_readable_header_with_an_unreadable_payload_is_unauthenticated(
    google: GoogleCertsServer, payload: str
) -> None:
    """Stripped (Cloud Run verified) and unverified (verification off) tokens are decoded without a signature check:
    a garbled claims segment must be a plain 401, not an exception."""
    trusting = settings_for(google, **ON_CLOUD_RUN)
    unverified = settings_for(google, iam_verify_token=False)
    assert await outcome(trusting, f"{GOOD_HEADER}.{payload}.SIGNATURE_REMOVED_BY_GOOGLE") is ErrorCode.UNAUTHENTICATED
    assert await outcome(unverified, f"{GOOD_HEADER}.{payload}.{_b64url(b'sig')}") is ErrorCode.UNAUTHENTICATED
