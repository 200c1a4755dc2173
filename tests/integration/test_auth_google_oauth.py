"""google-oauth against a loopback fake of Google's OAuth endpoints: access and ID tokens, refusals, combinations."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from imagegen_mcp.access.auth import build_authenticator, check_startup
from imagegen_mcp.access.base import Authenticator
from imagegen_mcp.access.caller import Caller
from imagegen_mcp.access.google_oauth import GoogleOAuthAuthenticator
from imagegen_mcp.access.keys import create_api_key
from imagegen_mcp.config import Settings
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.secrets.base import EnvSecretSource
from tests.fakes.google_oauth_server import FakeGoogleOAuth

CLIENT_ID = "123456789-imagegen.apps.googleusercontent.com"
OTHER_CLIENT = "987654321-someone-else.apps.googleusercontent.com"
HOSTS: dict[str, Any] = {"client_host": "10.0.0.7", "server_host": "10.0.0.8"}
pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogleOAuth]:
    fake = FakeGoogleOAuth()
    with fake.running():
        yield fake


def settings_for(google: FakeGoogleOAuth, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "auth": "google-oauth",
        "oauth_client_id": CLIENT_ID,
        "oauth_authorization_server": google.issuer,
        "oauth_tokeninfo_url": f"{google.issuer}/tokeninfo",
        "iam_certs_url": f"{google.issuer}/oauth2/v1/certs",
        "iam_issuers": [google.issuer],
        "iam_allowed_domains": ["corp.example"],
    }
    values.update(overrides)
    return Settings(**values)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def refused(auth: Authenticator, token: str) -> ImageGenError:
    with pytest.raises(ImageGenError) as info:
        await auth.authenticate(bearer(token), **HOSTS)
    assert info.value.code is ErrorCode.UNAUTHENTICATED
    assert info.value.message == "invalid or expired credentials"
    return info.value


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_access_token_accepted_once_asked_then_cached(
    google: FakeGoogleOAuth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = GoogleOAuthAuthenticator(settings_for(google))
    token = google.mint_access_token(CLIENT_ID, "ana@corp.example")
    before = google.tokeninfo_calls
    try:
        assert await auth.authenticate(bearer(token), **HOSTS) == Caller("ana@corp.example", "google")
        assert await auth.authenticate(bearer(token), **HOSTS) == Caller("ana@corp.example", "google")
    finally:
        await auth.aclose()
    assert google.tokeninfo_calls == before + 1
    assert token not in caplog.text


async def test_concurrent_first_uses_share_one_tokeninfo_call(google: FakeGoogleOAuth) -> None:
    auth = GoogleOAuthAuthenticator(settings_for(google))
    token = google.mint_access_token(CLIENT_ID, "ben@corp.example")
    before = google.tokeninfo_calls
    try:
        callers = await asyncio.gather(*(auth.authenticate(bearer(token), **HOSTS) for _ in range(12)))
    finally:
        await auth.aclose()
    assert {c.id for c in callers} == {"ben@corp.example"}
    assert google.tokeninfo_calls == before + 1


async def test_refusals(google: FakeGoogleOAuth, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    auth = GoogleOAuthAuthenticator(settings_for(google))
    tokens = {
        "another client": google.mint_access_token(OTHER_CLIENT, "ana@corp.example"),
        "expired": google.mint_access_token(CLIENT_ID, "ana@corp.example", expires_in=-5),
        "disallowed domain": google.mint_access_token(CLIENT_ID, "eve@gmail.com"),
        "unverified email": google.mint_access_token(CLIENT_ID, "ana@corp.example", email_verified=False),
        "garbage": "ya29.not-a-token-google-issued",
        "id token for another client": google.id_token(OTHER_CLIENT, "ana@corp.example"),
        "expired id token": google.id_token(CLIENT_ID, "ana@corp.example", lifetime=-600),
        "id token for a disallowed domain": google.id_token(CLIENT_ID, "eve@gmail.com"),
        "id token of an unknown issuer": google.id_token(CLIENT_ID, "ana@corp.example", iss="https://evil.example"),
    }
    try:
        for what, token in tokens.items():
            await refused(auth, token)
            assert token not in caplog.text, what
        # Our own API keys are never shown to Google.
        before = google.tokeninfo_calls
        key, _ = create_api_key("x")
        await refused(auth, key)
        assert google.tokeninfo_calls == before
        with pytest.raises(ImageGenError) as missing:
            await auth.authenticate({}, **HOSTS)
        assert missing.value.code is ErrorCode.UNAUTHENTICATED
    finally:
        await auth.aclose()
    # The refused principal is what the log names.
    assert any(getattr(r, "fields", {}).get("caller") == "eve@gmail.com" for r in caplog.records)


async def test_id_token_for_the_client_accepted(google: FakeGoogleOAuth) -> None:
    auth = GoogleOAuthAuthenticator(settings_for(google))
    before = google.tokeninfo_calls
    try:
        caller = await auth.authenticate(bearer(google.id_token(CLIENT_ID, "ana@corp.example")), **HOSTS)
    finally:
        await auth.aclose()
    assert caller == Caller("ana@corp.example", "google")
    assert google.tokeninfo_calls == before  # verified by signature, no token-info call


async def test_verdict_lasts_the_token_lifetime_then_google_is_asked_again(google: FakeGoogleOAuth) -> None:
    clock = Clock()
    auth = GoogleOAuthAuthenticator(settings_for(google, oauth_verdict_seconds=3600), clock=clock)
    token = google.mint_access_token(CLIENT_ID, "ana@corp.example", expires_in=600)
    before = google.tokeninfo_calls
    try:
        await auth.authenticate(bearer(token), **HOSTS)
        google.expire(token)  # Google no longer vouches for it (expired / revoked) ...
        clock.now += 590
        await auth.authenticate(bearer(token), **HOSTS)  # ... but its verdict stands until the token's exp
        assert google.tokeninfo_calls == before + 1
        clock.now += 20
        await refused(auth, token)
        assert google.tokeninfo_calls == before + 2
    finally:
        await auth.aclose()


async def test_a_revoked_token_stops_working_within_the_verdict_time(google: FakeGoogleOAuth) -> None:
    """By default a verdict is kept 5 minutes, not the token's hour: revoking a token at Google takes effect."""
    clock = Clock()
    auth = GoogleOAuthAuthenticator(settings_for(google), clock=clock)
    token = google.mint_access_token(CLIENT_ID, "ana@corp.example", expires_in=3600)
    before = google.tokeninfo_calls
    try:
        assert (await auth.authenticate(bearer(token), **HOSTS)).id == "ana@corp.example"
        google.expire(token)  # revoked at Google
        clock.now += 290
        await auth.authenticate(bearer(token), **HOSTS)  # still inside the verdict's 300 s
        assert google.tokeninfo_calls == before + 1
        clock.now += 20
        await refused(auth, token)  # asked again: Google no longer vouches for it
        assert google.tokeninfo_calls == before + 2
        # A live token is asked about again after the verdict time, and stays accepted.
        live = google.mint_access_token(CLIENT_ID, "ben@corp.example", expires_in=3600)
        await auth.authenticate(bearer(live), **HOSTS)
        clock.now += 301
        assert (await auth.authenticate(bearer(live), **HOSTS)).id == "ben@corp.example"
        assert google.tokeninfo_calls == before + 4
    finally:
        await auth.aclose()


def test_verdict_time_is_bounded() -> None:
    from pydantic import ValidationError

    for bad in (0, 3601):
        with pytest.raises(ValidationError, match="oauth_verdict_seconds"):
            Settings(oauth_verdict_seconds=bad)


async def test_tokeninfo_unreachable_is_an_upstream_error_without_the_token(google: FakeGoogleOAuth) -> None:
    from tests.support.servers import free_port

    auth = GoogleOAuthAuthenticator(
        settings_for(google, oauth_tokeninfo_url=f"http://127.0.0.1:{free_port()}/tokeninfo")
    )
    token = google.mint_access_token(CLIENT_ID, "ana@corp.example")
    try:
        with pytest.raises(ImageGenError) as info:
            await auth.authenticate(bearer(token), **HOSTS)
    finally:
        await auth.aclose()
    assert info.value.code is ErrorCode.UPSTREAM_ERROR
    assert token not in str(info.value) and info.value.__cause__ is None


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_tokeninfo_pacing_or_failing_is_an_upstream_error_not_a_refusal(
    google: FakeGoogleOAuth, status: int
) -> None:
    auth = GoogleOAuthAuthenticator(settings_for(google))
    token = google.mint_access_token(CLIENT_ID, "ana@corp.example")
    google.tokeninfo_status = status
    try:
        with pytest.raises(ImageGenError) as info:
            await auth.authenticate(bearer(token), **HOSTS)
        assert info.value.code is ErrorCode.UPSTREAM_ERROR
        google.tokeninfo_status = None
        # Nothing was cached: once Google answers again, the token works.
        assert (await auth.authenticate(bearer(token), **HOSTS)).id == "ana@corp.example"
    finally:
        google.tokeninfo_status = None
        await auth.aclose()


async def test_metadata_and_challenge(google: FakeGoogleOAuth) -> None:
    auth = build_authenticator(settings_for(google), EnvSecretSource({}))
    try:
        assert auth.protected_resource_metadata("https://svc.example/mcp") == {
            "resource": "https://svc.example/mcp",
            "authorization_servers": [google.issuer],
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["openid", "email"],
            "resource_name": "imagegen-mcp",
        }
        metadata_url = "https://svc.example/.well-known/oauth-protected-resource"
        assert auth.www_authenticate(metadata_url) == (
            f'Bearer realm="imagegen-mcp", resource_metadata="{metadata_url}", scope="openid email"'
        )
        failure = await refused(auth, "ya29.garbage")
        assert 'error="invalid_token"' in auth.www_authenticate(metadata_url, failure)
    finally:
        await auth.aclose()
    # The real default names Google itself.
    default = Settings(auth="google-oauth", oauth_client_id=CLIENT_ID)
    assert default.oauth_authorization_server == "https://accounts.google.com"
    assert default.oauth_tokeninfo_url == "https://oauth2.googleapis.com/tokeninfo"
    check_startup(default, "0.0.0.0")


async def test_google_oauth_and_bearer_either_credential(google: FakeGoogleOAuth) -> None:
    key, record = create_api_key("ci")
    secrets = EnvSecretSource({"IMAGEGEN_API_KEYS": json.dumps({"keys": [record.to_json()]})})
    auth = build_authenticator(settings_for(google, auth="google-oauth,bearer"), secrets)
    before = google.tokeninfo_calls
    try:
        assert auth.mode == "google-oauth,bearer"
        assert await auth.authenticate(bearer(key), **HOSTS) == Caller(record.id, "bearer", "ci", None)
        assert google.tokeninfo_calls == before  # the key never went to Google
        token = google.mint_access_token(CLIENT_ID, "ana@corp.example")
        assert (await auth.authenticate(bearer(token), **HOSTS)).kind == "google"
        await refused(auth, "igm_k_000000000000_" + "x" * 43)
        await refused(auth, "ya29.garbage")
        with pytest.raises(ImageGenError) as missing:
            await auth.authenticate({}, **HOSTS)
        assert 'error="invalid_token"' not in auth.www_authenticate("https://m", missing.value)
        assert auth.protected_resource_metadata("https://svc.example/mcp")["authorization_servers"] == [google.issuer]
    finally:
        await auth.aclose()


async def test_iam_and_bearer_by_the_same_mechanism(google: FakeGoogleOAuth) -> None:
    key, record = create_api_key("ci")
    secrets = EnvSecretSource({"IMAGEGEN_API_KEYS": json.dumps({"keys": [record.to_json()]})})
    settings = settings_for(google, auth="iam,bearer", iam_audience=["https://svc.example"])
    auth = build_authenticator(settings, secrets)
    try:
        assert (await auth.authenticate(bearer(key), **HOSTS)).kind == "bearer"
        id_token = google.id_token("https://svc.example", "sa@corp.example")
        assert await auth.authenticate(bearer(id_token), **HOSTS) == Caller("sa@corp.example", "iam")
        await refused(auth, google.id_token(CLIENT_ID, "sa@corp.example"))  # iam: the audience is the service
        document = auth.protected_resource_metadata("https://svc.example/mcp")
        assert "authorization_servers" not in document and "scopes_supported" not in document
    finally:
        await auth.aclose()


async def test_google_callers_draw_on_iam_principal_and_domain_budgets(google: FakeGoogleOAuth) -> None:
    from imagegen_mcp.deps import build_deps
    from imagegen_mcp.usage.quotas import Quotas

    _, record = create_api_key("ci", daily_images=7)
    settings = settings_for(
        google,
        auth="google-oauth,bearer",
        api_keys=json.dumps({"keys": [record.to_json()]}),
        quota_daily_images=10,
        quotas={"ana@corp.example": {"daily_images": 50}, "corp.example": {"monthly_usd": 100}},
    )
    deps = build_deps(settings)
    try:
        quotas = Quotas(deps.state, settings, deps.auth)
        budgets = await quotas.budgets(Caller("ana@corp.example", "google"))
        assert [(b.scope, b.daily_images, b.monthly_usd) for b in budgets] == [
            ("principal:ana@corp.example", 50, None),
            ("domain:corp.example", None, 100),
        ]
        # In a combination the bearer keys' own quotas still apply.
        keyed = await quotas.budgets(Caller(record.id, "bearer"))
        assert [(b.scope, b.daily_images) for b in keyed] == [(f"key:{record.id}", 7)]
    finally:
        await deps.aclose()
