"""bearer mode: API keys checked against SHA-256 records from the secrets seam; key creation and record format."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import imagegen_mcp.access.keys as keys_module
from imagegen_mcp.access.auth import build_authenticator
from imagegen_mcp.access.bearer import BearerAuthenticator
from imagegen_mcp.access.caller import Caller
from imagegen_mcp.access.keys import (
    KeyRecord,
    KeyRing,
    add_record,
    create_api_key,
    describe_new_key,
    hash_key,
    key_id_of,
    parse_key_file,
)
from imagegen_mcp.config import Settings
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.secrets.base import API_KEYS, EnvSecretSource

HOSTS: dict[str, Any] = {"client_host": "203.0.113.9", "server_host": "10.0.0.2"}
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class RotatingSecrets:
    """The SecretSource seam with a value the test changes, as a new secret version would."""

    def __init__(self, value: str | None) -> None:
        self.value = value
        self.reads = 0

    async def get(self, name: str) -> str | None:
        assert name == API_KEYS
        self.reads += 1
        return self.value

    def describe(self, name: str) -> str:
        return "secret imagegen-api-keys"

    async def aclose(self) -> None:
        return None


def document(*records: KeyRecord) -> str:
    return json.dumps({"keys": [r.to_json() for r in records]})


def bearer(secrets: Any) -> BearerAuthenticator:
    return BearerAuthenticator(secrets, now=lambda: NOW)


async def call(auth: BearerAuthenticator, key: str | None) -> Caller:
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    return await auth.authenticate(headers, **HOSTS)


async def refused(auth: BearerAuthenticator, key: str) -> ImageGenError:
    with pytest.raises(ImageGenError) as info:
        await call(auth, key)
    assert info.value.code is ErrorCode.UNAUTHENTICATED
    assert info.value.message == "invalid or expired credentials"
    return info.value


@pytest.mark.anyio
async def test_valid_key_through_env_source() -> None:
    key, record = create_api_key("ci pipeline", now=NOW)
    secrets = EnvSecretSource({"IMAGEGEN_API_KEYS": document(record)})
    auth = build_authenticator(Settings(auth="bearer"), secrets)
    caller = await auth.authenticate({"authorization": f"Bearer {key}"}, **HOSTS)
    assert caller == Caller(record.id, "bearer", "ci pipeline", None)
    assert caller.id.startswith("k_") and caller.id in key and caller.id != key
    assert caller.may_use("openai/gpt-image-1")
    # The scheme is case-insensitive (RFC 7235).
    assert (await auth.authenticate({"authorization": f"bearer {key}"}, **HOSTS)).id == record.id


@pytest.mark.anyio
async def test_unknown_and_malformed_keys() -> None:
    key, record = create_api_key("a", now=NOW)
    auth = bearer(RotatingSecrets(document(record)))
    other, _ = create_api_key("never stored", now=NOW)
    await refused(auth, other)
    await refused(auth, key[:-1] + ("A" if key[-1] != "A" else "B"))
    await refused(auth, "x")
    with pytest.raises(ImageGenError) as missing:
        await call(auth, None)
    assert missing.value.code is ErrorCode.UNAUTHENTICATED
    assert "invalid" not in missing.value.message
    with pytest.raises(ImageGenError) as basic:
        await auth.authenticate({"authorization": f"Basic {key}"}, **HOSTS)
    assert basic.value.code is ErrorCode.UNAUTHENTICATED
    challenge = auth.www_authenticate("https://svc/.well-known/oauth-protected-resource", basic.value)
    assert 'error="invalid_token"' in challenge


@pytest.mark.anyio
async def test_disabled_and_expired_keys_rejected() -> None:
    revoked_key, revoked = create_api_key("revoked", now=NOW)
    expired_key, expired = create_api_key("old", expires_days=1, now=NOW - timedelta(days=2))
    live_key, live = create_api_key("soon expiring but live", expires_days=1, now=NOW - timedelta(hours=23))
    revoked = KeyRecord(**{**revoked.__dict__, "disabled": True})
    auth = bearer(RotatingSecrets(document(revoked, expired, live)))
    await refused(auth, revoked_key)
    await refused(auth, expired_key)
    assert (await call(auth, live_key)).id == live.id


@pytest.mark.anyio
async def test_model_restriction() -> None:
    key, record = create_api_key("restricted", models=["openai/gpt-image-1", "google/*"], now=NOW)
    caller = await call(bearer(RotatingSecrets(document(record))), key)
    assert caller.allowed_models == frozenset({"openai/gpt-image-1", "google/*"})
    assert caller.may_use("openai/gpt-image-1")
    assert caller.may_use("google/gemini-3-pro-image-preview")
    assert not caller.may_use("openai/dall-e-3")
    assert not caller.may_use("googlex/model")
    assert not caller.may_use("local/placeholder")


@pytest.mark.anyio
async def test_rotation_two_live_keys_then_revoke_old_without_restart() -> None:
    old_key, old = create_api_key("v1", now=NOW)
    new_key, new = create_api_key("v2", now=NOW)
    secrets = RotatingSecrets(document(old))
    auth = bearer(secrets)
    assert (await call(auth, old_key)).id == old.id
    await refused(auth, new_key)

    secrets.value = document(old, new)  # new secret version: both live while clients move over
    assert (await call(auth, old_key)).id == old.id
    assert (await call(auth, new_key)).id == new.id

    secrets.value = document(new)  # old key retired
    await refused(auth, old_key)
    assert (await call(auth, new_key)).id == new.id
    assert secrets.reads == 6  # every request consults the (caching) secret source


@pytest.mark.anyio
async def test_missing_or_broken_secret_is_misconfigured() -> None:
    key, record = create_api_key("a", now=NOW)
    with pytest.raises(ImageGenError) as missing:
        await call(bearer(RotatingSecrets(None)), key)
    assert missing.value.code is ErrorCode.MISCONFIGURED
    assert "imagegen-api-keys" in missing.value.message
    broken = document(record).replace(record.sha256, record.sha256[:10])
    with pytest.raises(ImageGenError) as bad:
        await call(bearer(RotatingSecrets(broken)), key)
    assert bad.value.code is ErrorCode.MISCONFIGURED
    assert record.sha256[:10] not in bad.value.message


def test_every_record_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [create_api_key(str(i), now=NOW) for i in range(5)]
    ring = KeyRing(r for _, r in records)
    compared: list[bytes] = []
    real = keys_module.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", counting)
    for key, record in [records[0], records[4]]:
        compared.clear()
        assert ring.match(key) == record
        assert len(compared) == 5  # no early exit on the first slot
    compared.clear()
    assert ring.match("igm_k_000000000000_" + "A" * 43) is None
    assert len(compared) == 5


@pytest.mark.anyio
async def test_key_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key, record = create_api_key("a", now=NOW)
    revoked_key, revoked = create_api_key("b", now=NOW)
    revoked = KeyRecord(**{**revoked.__dict__, "disabled": True})
    auth = bearer(RotatingSecrets(document(record, revoked)))
    await call(auth, key)
    await refused(auth, revoked_key)
    stranger, _ = create_api_key("c", now=NOW)
    await refused(auth, stranger)
    logged = caplog.text + repr([r.__dict__ for r in caplog.records])
    assert "bearer key rejected" in caplog.text
    assert revoked.id in logged  # operators see which key id was refused ...
    for secret in (key, revoked_key, stranger):
        # ... never the key itself, nor its secret part (43 url-safe characters that may themselves hold "_")
        assert secret not in logged and secret[len("igm_k_") + 12 + 1 :] not in logged


def test_create_api_key_format_and_record() -> None:
    key, record = create_api_key("team-a", expires_days=30, models=["openai/gpt-image-1"], now=NOW)
    assert key.startswith("igm_k_") and len(key) == len("igm_k_") + 12 + 1 + 43
    assert key_id_of(key) == record.id
    assert record.sha256 == hash_key(key) and len(record.sha256) == 64
    assert record.to_json() == {
        "id": record.id,
        "sha256": record.sha256,
        "label": "team-a",
        "expires_at": "2026-12-21T12:00:00Z",
        "models": ["openai/gpt-image-1"],
        "disabled": False,
    }
    assert parse_key_file(document(record)) == [record]
    assert create_api_key("x")[0] != create_api_key("x")[0]
    with pytest.raises(ImageGenError):
        create_api_key("x", expires_days=0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "not valid JSON"),
        ("[]", '{"keys"'),
        ('{"keys": [{"id": "k_1"}]}', "sha256"),
        ('{"keys": [{"id": "k 1", "sha256": "' + "a" * 64 + '"}]}', "id"),
        ('{"keys": [{"id": "k_1", "sha256": "' + "a" * 64 + '", "expires_at": "soon"}]}', "expires_at"),
        ('{"keys": [{"id": "k_1", "sha256": "' + "a" * 64 + '", "models": "all"}]}', "models"),
        ('{"keys": [{"id": "k_1", "sha256": "' + "a" * 64 + '", "disabled": "no"}]}', "disabled"),
        (
            '{"keys": [{"id": "k_1", "sha256": "' + "a" * 64 + '"}, {"id": "k_1", "sha256": "' + "b" * 64 + '"}]}',
            "twice",
        ),
    ],
)
def test_parse_key_file_rejects_bad_documents(text: str, fragment: str) -> None:
    with pytest.raises(ImageGenError) as info:
        parse_key_file(text)
    assert info.value.code is ErrorCode.MISCONFIGURED and fragment in info.value.message


def test_hand_written_record_accepts_offsets_and_naive_times() -> None:
    digest = "A" * 64
    records = parse_key_file(
        json.dumps(
            {
                "keys": [
                    {"id": "ops", "sha256": digest, "expires_at": "2027-01-01T00:00:00+01:00"},
                    {"id": "k_2", "sha256": "b" * 64, "expires_at": "2027-01-01T00:00:00"},
                ]
            }
        )
    )
    assert records[0].sha256 == "a" * 64 and records[0].models is None and not records[0].disabled
    assert records[0].expires_at == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    assert records[1].expires_at == datetime(2027, 1, 1, tzinfo=UTC)


def test_add_record_and_cli_text() -> None:
    key, first = create_api_key("one", now=NOW)
    _, second = create_api_key("two", now=NOW)
    doc = add_record(None, first)
    doc = add_record(doc, second)
    assert [r.id for r in parse_key_file(doc)] == [first.id, second.id]
    with pytest.raises(ImageGenError):
        add_record(doc, first)
    text = describe_new_key(key, first)
    assert text.count(key) == 1
    assert first.sha256 in text
    assert "gcloud secrets versions add imagegen-api-keys --data-file=keys.json" in text


def test_metadata_document_without_authorization_server() -> None:
    auth = bearer(RotatingSecrets(None))
    assert auth.protected_resource_metadata("https://svc.example/mcp") == {
        "resource": "https://svc.example/mcp",
        "bearer_methods_supported": ["header"],
        "resource_name": "imagegen-mcp",
    }
    assert auth.www_authenticate("https://svc.example/.well-known/oauth-protected-resource") == (
        'Bearer realm="imagegen-mcp", resource_metadata="https://svc.example/.well-known/oauth-protected-resource"'
    )
