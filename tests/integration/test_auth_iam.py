"""iam mode against real RS256 ID tokens whose certs come from a loopback Google-certs endpoint."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from imagegen_mcp.access.auth import build_authenticator, check_startup
from imagegen_mcp.access.google_certs import GoogleCerts
from imagegen_mcp.access.iam import SIGNATURE_REMOVED, IamAuthenticator
from imagegen_mcp.config import Settings
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.secrets.base import EnvSecretSource
from tests.fakes.google_certs_server import GoogleCertsServer, SigningKey, id_token_claims
from tests.integration.iam_support import HOSTS, SERVICE_URL, google_certs_fixture, settings_for, signing_key_fixture  # noqa: F401 (fixtures)


async def authenticate(auth: IamAuthenticator, token: str, header: str = "authorization") -> Any:
    try:
        return await auth.authenticate({header: f"Bearer {token}"}, **HOSTS)
    finally:
        await auth.aclose()


async def rejected(auth: IamAuthenticator, token: str, header: str = "authorization") -> ImageGenError:
    with pytest.raises(ImageGenError) as info:
        await authenticate(auth, token, header)
    assert info.value.code is ErrorCode.UNAUTHENTICATED
    assert info.value.message == "invalid or expired credentials"  # never which part was wrong
    return info.value


@pytest.mark.anyio
@pytest.mark.parametrize("header", ["authorization", "x-serverless-authorization"])
async def test_valid_token_in_either_header(google: GoogleCertsServer, key: SigningKey, header: str) -> None:
    auth = IamAuthenticator(settings_for(google))
    caller = await authenticate(
        auth, key.sign(id_token_claims(SERVICE_URL, email="ci@proj.iam.gserviceaccount.com")), header
    )
    assert (caller.id, caller.kind) == ("ci@proj.iam.gserviceaccount.com", "iam")
    assert caller.may_use("google/gemini-3-pro-image-preview")


@pytest.mark.anyio
async def test_serverless_header_wins_over_authorization(google: GoogleCertsServer, key: SigningKey) -> None:
    # Cloud Run IAM + an app-level credential: the ID token is in X-Serverless-Authorization, Authorization is other.
    auth = IamAuthenticator(settings_for(google))
    headers = {
        "authorization": "Bearer igm_k_0123456789ab_something-else-entirely-not-a-jwt-000000",
        "x-serverless-authorization": f"Bearer {key.sign(id_token_claims(SERVICE_URL, email='dev@example.com'))}",
    }
    try:
        caller = await auth.authenticate(headers, **HOSTS)
    finally:
        await auth.aclose()
    assert caller.id == "dev@example.com"


@pytest.mark.anyio
async def test_configured_audience_replaces_public_url(google: GoogleCertsServer, key: SigningKey) -> None:
    auth = IamAuthenticator(settings_for(google, iam_audience="https://imagegen.example.com,other"))
    assert (await authenticate(auth, key.sign(id_token_claims("https://imagegen.example.com")))).kind == "iam"
    await rejected(IamAuthenticator(settings_for(google, iam_audience="other")), key.sign(id_token_claims(SERVICE_URL)))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(id_token_claims("https://someone-else.a.run.app"), id="wrong-audience"),
        pytest.param(id_token_claims(SERVICE_URL, exp=int(time.time()) - 120), id="expired"),
        pytest.param(id_token_claims(SERVICE_URL, iat=int(time.time()) + 600), id="issued-in-future"),
        pytest.param(id_token_claims(SERVICE_URL, iss="https://evil.example.com"), id="wrong-issuer"),
        pytest.param(id_token_claims(SERVICE_URL, email_verified=False), id="email-not-verified"),
        pytest.param(id_token_claims(SERVICE_URL, email=None), id="no-email"),
        pytest.param(id_token_claims(SERVICE_URL, exp=None), id="no-expiry"),
    ],
)
async def test_bad_claims_rejected(google: GoogleCertsServer, key: SigningKey, claims: dict[str, Any]) -> None:
    await rejected(IamAuthenticator(settings_for(google)), key.sign(claims))


@pytest.mark.anyio
async def test_small_clock_skew_tolerated(google: GoogleCertsServer, key: SigningKey) -> None:
    token = key.sign(id_token_claims(SERVICE_URL, exp=int(time.time()) - 20))
    assert (await authenticate(IamAuthenticator(settings_for(google)), token)).kind == "iam"


@pytest.mark.anyio
async def test_bad_signature_rejected(google: GoogleCertsServer, key: SigningKey) -> None:
    forger = SigningKey("kid-current")  # same kid, different private key
    await rejected(IamAuthenticator(settings_for(google)), forger.sign(id_token_claims(SERVICE_URL)))
    good = key.sign(id_token_claims(SERVICE_URL))
    head, _, signature = good.split(".")
    tampered_claims = key.sign(id_token_claims(SERVICE_URL, email="admin@example.com")).split(".")[1]
    await rejected(IamAuthenticator(settings_for(google)), f"{head}.{tampered_claims}.{signature}")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImFAYi5jIn0.",  # alg none
    ],
)
async def test_malformed_tokens_rejected(google: GoogleCertsServer, token: str) -> None:
    await rejected(IamAuthenticator(settings_for(google)), token)


@pytest.mark.anyio
async def test_hs256_with_public_key_rejected(google: GoogleCertsServer, key: SigningKey) -> None:
    token = key.sign(id_token_claims(SERVICE_URL), header={"alg": "HS256"})
    await rejected(IamAuthenticator(settings_for(google)), token)


@pytest.mark.anyio
async def test_unknown_kid_refreshes_once_then_rejects(google: GoogleCertsServer, key: SigningKey) -> None:
    now = [1000.0]
    certs = GoogleCerts(google.url, clock=lambda: now[0], min_refresh_seconds=30)
    auth = IamAuthenticator(settings_for(google), certs=certs)
    before = google.requests  # counted at the fake certs endpoint (module-scoped: other tests use it too)
    try:
        assert await auth.authenticate({"authorization": f"Bearer {key.sign(id_token_claims(SERVICE_URL))}"}, **HOSTS)
        assert google.requests - before == 1
        stranger = SigningKey("kid-unpublished")
        for _ in range(3):  # an attacker spraying unknown kids cannot make us hammer the endpoint
            with pytest.raises(ImageGenError) as info:
                await auth.authenticate(
                    {"authorization": f"Bearer {stranger.sign(id_token_claims(SERVICE_URL))}"}, **HOSTS
                )
            assert info.value.code is ErrorCode.UNAUTHENTICATED
        assert google.requests - before == 1

        # Google rotates: a new kid appears; after the pacing interval an unknown kid triggers one refresh.
        rotated = google.publish(SigningKey("kid-rotated"))
        now[0] += 31
        caller = await auth.authenticate(
            {"authorization": f"Bearer {rotated.sign(id_token_claims(SERVICE_URL, email='new@example.com'))}"},
            **HOSTS,
        )
        assert caller.id == "new@example.com"
        assert google.requests - before == 2
    finally:
        google.unpublish("kid-rotated")
        await auth.aclose()


@pytest.mark.anyio
async def test_certs_cached_by_max_age() -> None:
    server = GoogleCertsServer(max_age=100)
    with server.running():
        key = server.publish(SigningKey("k1"))
        now = [0.0]
        certs = GoogleCerts(server.url, clock=lambda: now[0])
        auth = IamAuthenticator(settings_for(server), certs=certs)
        headers = {"authorization": f"Bearer {key.sign(id_token_claims(SERVICE_URL))}"}
        try:
            for _ in range(5):
                await auth.authenticate(headers, **HOSTS)
            assert server.requests == 1
            now[0] = 99.0
            await auth.authenticate(headers, **HOSTS)
            assert server.requests == 1
            now[0] = 100.0
            await auth.authenticate(headers, **HOSTS)
            assert server.requests == 2

            # The endpoint fails: the cached set keeps working rather than locking everybody out.
            server.fail = True
            now[0] = 250.0
            await auth.authenticate(headers, **HOSTS)
            assert server.requests == 3
        finally:
            await auth.aclose()


@pytest.mark.anyio
async def test_certs_unreachable_without_cache_is_upstream_error(key: SigningKey) -> None:
    server = GoogleCertsServer()
    with server.running():
        server.fail = True
        auth = IamAuthenticator(settings_for(server))
        with pytest.raises(ImageGenError) as info:
            await authenticate(auth, key.sign(id_token_claims(SERVICE_URL)))
    assert info.value.code is ErrorCode.UPSTREAM_ERROR


@pytest.mark.anyio
async def test_principal_allowlist(google: GoogleCertsServer, key: SigningKey) -> None:
    settings = settings_for(google, iam_allowed_principals="ci@proj.iam.gserviceaccount.com, Dev@Example.com")
    assert await authenticate(
        IamAuthenticator(settings), key.sign(id_token_claims(SERVICE_URL, email="dev@example.com"))
    )
    await rejected(IamAuthenticator(settings), key.sign(id_token_claims(SERVICE_URL, email="intruder@example.com")))


@pytest.mark.anyio
async def test_domain_allowlist_by_email_domain_or_hd(google: GoogleCertsServer, key: SigningKey) -> None:
    settings = settings_for(google, iam_allowed_domains="corp.example")
    ok = key.sign(id_token_claims(SERVICE_URL, email="ana@corp.example"))
    assert (await authenticate(IamAuthenticator(settings), ok)).id == "ana@corp.example"
    hd = key.sign(id_token_claims(SERVICE_URL, email="ana@alias.example", hd="corp.example"))
    assert (await authenticate(IamAuthenticator(settings), hd)).id == "ana@alias.example"
    await rejected(IamAuthenticator(settings), key.sign(id_token_claims(SERVICE_URL, email="ana@corp.example.evil.io")))
    await rejected(IamAuthenticator(settings), key.sign(id_token_claims(SERVICE_URL, email="x@gmail.com")))


@pytest.mark.anyio
async def test_missing_or_foreign_scheme(google: GoogleCertsServer) -> None:
    auth = IamAuthenticator(settings_for(google))
    with pytest.raises(ImageGenError) as none:
        await auth.authenticate({}, **HOSTS)
    assert none.value.code is ErrorCode.UNAUTHENTICATED
    assert 'error="invalid_token"' not in auth.www_authenticate(
        "https://x/.well-known/oauth-protected-resource", none.value
    )
    with pytest.raises(ImageGenError) as basic:
        await auth.authenticate({"authorization": "Basic dXNlcjpwYXNz"}, **HOSTS)
    assert 'error="invalid_token"' in auth.www_authenticate(
        "https://x/.well-known/oauth-protected-resource", basic.value
    )


def stripped(token: str) -> str:
    head, claims, _ = token.split(".")
    return f"{head}.{claims}.{SIGNATURE_REMOVED}"


@pytest.mark.anyio
async def test_token_stripped_by_cloud_run(google: GoogleCertsServer, key: SigningKey) -> None:
    token = stripped(key.sign(id_token_claims(SERVICE_URL, email="dev@example.com")))
    # Not declared to be behind Cloud Run IAM: the app cannot verify it, and says how to fix the deployment.
    with pytest.raises(ImageGenError) as info:
        await authenticate(IamAuthenticator(settings_for(google)), token, "x-serverless-authorization")
    assert info.value.code is ErrorCode.MISCONFIGURED
    assert "IMAGEGEN_IAM_CLOUD_RUN_ENFORCED" in info.value.message
    # Declared: Cloud Run checked the signature; the claims are still checked here.
    trusted = settings_for(
        google, iam_cloud_run_enforced=True, iam_allowed_domains="example.com", cloud_run_service="imagegen"
    )
    assert (await authenticate(IamAuthenticator(trusted), token, "x-serverless-authorization")).id == "dev@example.com"
    other = stripped(key.sign(id_token_claims("https://someone-else.a.run.app", email="dev@example.com")))
    await rejected(IamAuthenticator(trusted), other)
    outsider = stripped(key.sign(id_token_claims(SERVICE_URL, email="dev@elsewhere.org")))
    await rejected(IamAuthenticator(trusted), outsider)


@pytest.mark.anyio
async def test_logs_never_carry_the_token(
    google: GoogleCertsServer, key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = key.sign(id_token_claims("https://someone-else.a.run.app"))
    await rejected(IamAuthenticator(settings_for(google)), token)
    text = caplog.text + repr([r.__dict__ for r in caplog.records])
    assert "ID token rejected" in caplog.text
    assert token.split(".")[2] not in text and token.split(".")[1] not in text


def test_audience_required_at_startup(google: GoogleCertsServer) -> None:
    settings = Settings(auth="iam", iam_certs_url=google.url)
    with pytest.raises(ImageGenError) as info:
        build_authenticator(settings, EnvSecretSource({}))
    assert info.value.code is ErrorCode.MISCONFIGURED and "IMAGEGEN_PUBLIC_URL" in info.value.message
    with pytest.raises(ImageGenError):
        check_startup(settings, "0.0.0.0")
    check_startup(Settings(auth="iam", public_url=SERVICE_URL), "0.0.0.0")
    relaxed = Settings(auth="iam", iam_verify_token=False)
    assert build_authenticator(relaxed, EnvSecretSource({})).mode == "iam"


@pytest.mark.anyio
async def test_metadata_document_and_challenge(google: GoogleCertsServer) -> None:
    auth = build_authenticator(settings_for(google), EnvSecretSource({}))
    document = auth.protected_resource_metadata(f"{SERVICE_URL}/mcp")
    # No authorization server: no OAuth flow yields the ID tokens iam takes, so naming Google would lead an
    # OAuth-capable client into a sign-in whose access token this mode then refuses (issue 15).
    assert document == {
        "resource": f"{SERVICE_URL}/mcp",
        "bearer_methods_supported": ["header"],
        "resource_name": "imagegen-mcp",
    }
    challenge = auth.www_authenticate(f"{SERVICE_URL}/.well-known/oauth-protected-resource")
    assert challenge == (
        f'Bearer realm="imagegen-mcp", resource_metadata="{SERVICE_URL}/.well-known/oauth-protected-resource"'
    )
    await auth.aclose()
