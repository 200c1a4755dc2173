"""GcsStore against the real fake-gcs-server binary, with local-key and IAM signBlob (local fake) signing."""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from imagegen_mcp.config import MAX_SIGNED_URL_TTL, Settings
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.storage.base import ImageStore, StoredBytes, is_image_id
from imagegen_mcp.storage.gcs import GcsStore
from tests.fakes.fixtures_gcs import FAKE_GCS_BUCKET, fake_gcs, fake_gcs_server  # noqa: F401
from tests.fakes.gcs_server import create_bucket
from tests.fakes.iam_credentials_server import (
    FakeIamCredentials,
    generate_rsa_key,
    service_account_info,
    start_fake_iam_credentials,
    verify_signature,
)

BUCKET = FAKE_GCS_BUCKET
INPUT_BUCKET = "imagegen-test-inputs"
SA_EMAIL = "imagegen-runtime@test-project.iam.gserviceaccount.com"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
pytestmark = pytest.mark.anyio

META = {"model": "google/gemini-3-pro-image-preview", "provider": "vertex", "prompt_sha256": "ab" * 32}


@pytest.fixture(scope="module")
def sa_key() -> Any:
    return generate_rsa_key()


@pytest.fixture
def emulator_client(fake_gcs: str) -> Iterator[storage.Client]:  # noqa: F811
    client = storage.Client(project="test-project", credentials=AnonymousCredentials())
    yield client
    client.close()


@pytest.fixture(scope="module")
def iam_fake() -> Iterator[tuple[str, FakeIamCredentials]]:
    with start_fake_iam_credentials() as served:
        yield served


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "storage": "gcs",
        "bucket": BUCKET,
        "google_cloud_project": "test-project",
        "url_ttl_seconds": 900,
        "iam_credentials_endpoint": "http://127.0.0.1:9",  # nothing listens: must not be used unless a test says so
    }
    values.update(overrides)
    return Settings(**values)


def local_key_store(client: storage.Client, key: Any, **overrides: Any) -> GcsStore:
    creds = service_account.Credentials.from_service_account_info(service_account_info(SA_EMAIL, key))
    return GcsStore(make_settings(**overrides), client=client, credentials=creds)


def iam_store(client: storage.Client, endpoint: str, token: str = "t", **overrides: Any) -> GcsStore:
    """A store whose credentials hold only an access token (like Cloud Run's), signing as SA_EMAIL via IAM."""
    settings = make_settings(**{"iam_credentials_endpoint": endpoint, "signing_service_account": SA_EMAIL, **overrides})
    return GcsStore(settings, client=client, credentials=user_credentials.Credentials(token=token))


def string_to_sign_of(url: str) -> tuple[bytes, bytes]:
    """Rebuild the V4 string-to-sign from a signed URL (per Google's spec) and return it with the signature."""
    parts = urllib.parse.urlsplit(url)
    params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    signature = binascii.unhexlify(dict(params)["X-Goog-Signature"])
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(p for p in params if p[0] != "X-Goog-Signature")
    )
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    query = dict(params)
    scope = query["X-Goog-Credential"].split("/", 1)[1]
    message = "\n".join(
        ["GOOG4-RSA-SHA256", query["X-Goog-Date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    return message.encode(), signature


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


async def test_put_stores_private_object_with_headers_and_metadata(
    emulator_client: storage.Client, sa_key: Any
) -> None:
    store = local_key_store(emulator_client, sa_key)
    assert isinstance(store, ImageStore) and store.name == "gcs"
    stored = await store.put(PNG, mime_type="image/png", metadata=META)

    assert is_image_id(stored.id) and stored.id.endswith(".png")
    assert stored.uri == f"gs://{BUCKET}/outputs/{stored.id}"
    assert stored.size_bytes == len(PNG) and stored.mime_type == "image/png"
    blob = emulator_client.bucket(BUCKET).get_blob(f"outputs/{stored.id}")
    assert blob is not None
    assert blob.content_type == "image/png"
    assert blob.cache_control == "private, max-age=900"
    assert blob.metadata == META
    assert blob.download_as_bytes() == PNG


async def test_locally_signed_url_fetches_bytes_and_verifies(emulator_client: storage.Client, sa_key: Any) -> None:
    store = local_key_store(emulator_client, sa_key)
    stored = await store.put(PNG, mime_type="image/png", metadata=META)
    signed = await store.sign(stored.id, ttl_seconds=600, base_url=None)

    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(signed.url).query))
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Expires"] == "600"
    assert query["X-Goog-Credential"].startswith(f"{SA_EMAIL}/")
    message, signature = string_to_sign_of(signed.url)
    verify_signature(sa_key, signature, message)
    with pytest.raises(InvalidSignature):
        verify_signature(generate_rsa_key(), signature, message)
    assert fetch(signed.url) == PNG


async def test_sign_caps_ttl_at_seven_days(emulator_client: storage.Client, sa_key: Any) -> None:
    store = local_key_store(emulator_client, sa_key)
    stored = await store.put(PNG, mime_type="image/png", metadata={})
    signed = await store.sign(stored.id, ttl_seconds=MAX_SIGNED_URL_TTL * 3, base_url=None)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(signed.url).query))
    assert query["X-Goog-Expires"] == str(MAX_SIGNED_URL_TTL)


async def test_read_not_found_and_max_bytes(emulator_client: storage.Client, sa_key: Any) -> None:
    store = local_key_store(emulator_client, sa_key)
    stored = await store.put(PNG, mime_type="image/png", metadata={})
    found = await store.read(stored.id, max_bytes=len(PNG))
    assert (found.data, found.mime_type) == (PNG, "image/png")

    with pytest.raises(ImageGenError) as too_big:
        await store.read(stored.id, max_bytes=len(PNG) - 1)
    assert too_big.value.code is ErrorCode.INVALID_ARGUMENT
    assert too_big.value.details["size_bytes"] == len(PNG)

    missing = "20260101-000000-" + "0" * 32 + ".png"
    with pytest.raises(ImageGenError) as gone:
        await store.read(missing, max_bytes=10_000)
    assert gone.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(ImageGenError) as bad_id:
        await store.read("../secrets.png", max_bytes=10_000)
    assert bad_id.value.code is ErrorCode.NOT_FOUND


async def test_read_returns_metadata_and_a_refused_read_is_the_missing_answer(
    emulator_client: storage.Client, sa_key: Any
) -> None:
    """`allow` sees the blob's metadata from the same lookup; refused reads the same as missing, size unchecked."""
    store = local_key_store(emulator_client, sa_key)
    stored = await store.put(PNG, mime_type="image/png", metadata={"owner": "bearer:key-a"})
    seen: list[dict[str, str]] = []

    def only_key_b(meta: Any) -> bool:
        seen.append(dict(meta))
        return meta.get("owner") == "bearer:key-b"

    with pytest.raises(ImageGenError) as refused:
        await store.read(stored.id, max_bytes=1, allow=only_key_b)  # over the size too: refusal comes first
    assert seen == [{"owner": "bearer:key-a"}]
    assert (await store.metadata(stored.id)) == {"owner": "bearer:key-a"}
    await store.delete(stored.id)
    with pytest.raises(ImageGenError) as gone:
        await store.read(stored.id, max_bytes=1, allow=only_key_b)
    assert refused.value.to_dict() == gone.value.to_dict()
    assert gone.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(ImageGenError) as no_meta:
        await store.metadata(stored.id)
    assert no_meta.value.to_dict() == gone.value.to_dict()


async def test_delete_then_read_is_not_found(emulator_client: storage.Client, sa_key: Any) -> None:
    store = local_key_store(emulator_client, sa_key)
    stored = await store.put(PNG, mime_type="image/webp", metadata={})
    await store.delete(stored.id)
    with pytest.raises(ImageGenError) as gone:
        await store.read(stored.id, max_bytes=10_000)
    assert gone.value.code is ErrorCode.NOT_FOUND
    await store.delete(stored.id)  # idempotent


async def test_unsupported_mime_type_is_refused(emulator_client: storage.Client, sa_key: Any) -> None:
    store = local_key_store(emulator_client, sa_key)
    with pytest.raises(ImageGenError) as refused:
        await store.put(b"GIF89a", mime_type="image/gif", metadata={})
    assert refused.value.code is ErrorCode.UNSUPPORTED


async def test_resolve_reference_variants(emulator_client: storage.Client, sa_key: Any) -> None:
    store = local_key_store(emulator_client, sa_key)
    stored = await store.put(PNG, mime_type="image/png", metadata={})
    image_id = stored.id
    signed = await store.sign(image_id, ttl_seconds=60, base_url=None)

    assert store.resolve_reference(image_id) == image_id
    assert store.resolve_reference(f"  {stored.uri} ") == image_id
    assert store.resolve_reference(signed.url) == image_id
    assert store.resolve_reference(f"https://storage.googleapis.com/{BUCKET}/outputs/{image_id}") == image_id
    assert store.resolve_reference(f"https://{BUCKET}.storage.googleapis.com/outputs/{image_id}?x=1") == image_id
    assert store.resolve_reference(f"https://storage.googleapis.com/{BUCKET}/outputs%2F{image_id}") == image_id

    assert store.resolve_reference(f"gs://other-bucket/outputs/{image_id}") is None
    assert store.resolve_reference(f"gs://{BUCKET}/elsewhere/{image_id}") is None
    assert store.resolve_reference(f"gs://{BUCKET}/outputs/not-an-id.png") is None
    assert store.resolve_reference(f"https://example.com/{BUCKET}/outputs/{image_id}") is None
    assert store.resolve_reference(f"https://storage.googleapis.com/other/outputs/{image_id}") is None
    assert store.resolve_reference(f"ftp://storage.googleapis.com/{BUCKET}/outputs/{image_id}") is None
    assert store.resolve_reference("a cat") is None


async def test_read_uri_allowlist(emulator_client: storage.Client, sa_key: Any, fake_gcs: str) -> None:  # noqa: F811
    create_bucket(fake_gcs, INPUT_BUCKET)
    photo = emulator_client.bucket(INPUT_BUCKET).blob("in/photo.jpg")
    photo.upload_from_string(b"jpegbytes", content_type="image/jpeg")
    emulator_client.bucket(BUCKET).blob("private/notes.png").upload_from_string(b"x", content_type="image/png")
    store = local_key_store(emulator_client, sa_key, input_buckets=[INPUT_BUCKET])
    stored = await store.put(PNG, mime_type="image/png", metadata={})

    assert await store.read_uri(stored.uri, max_bytes=10_000) == StoredBytes(PNG, "image/png", {})
    assert await store.read_uri(f"gs://{INPUT_BUCKET}/in/photo.jpg", max_bytes=100) == StoredBytes(
        b"jpegbytes", "image/jpeg", {}
    )

    for uri, code in [
        (f"gs://{BUCKET}/private/notes.png", ErrorCode.FORBIDDEN),  # own bucket, outside the outputs prefix
        ("gs://someone-elses-bucket/cat.png", ErrorCode.FORBIDDEN),
        (f"gs://{INPUT_BUCKET}/in/missing.jpg", ErrorCode.NOT_FOUND),
        (f"gs://{INPUT_BUCKET}/in/photo.jpg#", ErrorCode.NOT_FOUND),
        ("https://example.com/cat.png", ErrorCode.INVALID_ARGUMENT),
        (f"gs://{BUCKET}", ErrorCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(ImageGenError) as err:
            await store.read_uri(uri, max_bytes=10_000)
        assert err.value.code is code, uri
    with pytest.raises(ImageGenError) as too_big:
        await store.read_uri(f"gs://{INPUT_BUCKET}/in/photo.jpg", max_bytes=3)
    assert too_big.value.code is ErrorCode.INVALID_ARGUMENT

    # Listing the output bucket as an input bucket opens all of it.
    wide = local_key_store(emulator_client, sa_key, input_buckets=[BUCKET])
    assert await wide.read_uri(f"gs://{BUCKET}/private/notes.png", max_bytes=10) == StoredBytes(b"x", "image/png", {})


async def test_client_built_lazily_from_emulator_env(fake_gcs: str) -> None:  # noqa: F811
    store = GcsStore(make_settings())  # no client, no credentials: the library's emulator defaults
    stored = await store.put(PNG, mime_type="image/jpeg", metadata={"caller": "alice@example.com"})
    found = await store.read(stored.id, max_bytes=len(PNG))
    assert (found.data, found.mime_type, found.metadata) == (PNG, "image/jpeg", {"caller": "alice@example.com"})
    await store.aclose()


async def test_concurrent_puts_get_distinct_objects(emulator_client: storage.Client, sa_key: Any) -> None:
    store = local_key_store(emulator_client, sa_key)
    payloads = [PNG + bytes([i]) for i in range(16)]
    stored = await asyncio.gather(*(store.put(p, mime_type="image/png", metadata={}) for p in payloads))
    assert len({s.id for s in stored}) == len(payloads)
    for item, payload in zip(stored, payloads, strict=True):
        assert (await store.read(item.id, max_bytes=10_000)).data == payload


async def test_iam_signblob_signing(emulator_client: storage.Client, iam_fake: tuple[str, FakeIamCredentials]) -> None:
    endpoint, fake = iam_fake
    signer_email = "url-signer@test-project.iam.gserviceaccount.com"
    # No private key: must go through IAM.
    store = iam_store(emulator_client, endpoint, "runtime-token", signing_service_account=signer_email)
    stored = await store.put(PNG, mime_type="image/png", metadata={})
    before = len(fake.signed)
    signed = await store.sign(stored.id, ttl_seconds=300, base_url=None)

    assert len(fake.signed) == before + 1
    email, payload = fake.signed[-1]
    assert email == signer_email
    assert fake.authorizations[-1] == "Bearer runtime-token"
    message, signature = string_to_sign_of(signed.url)
    assert payload == message  # the fake was asked to sign exactly the V4 string-to-sign of this URL
    assert payload.startswith(b"GOOG4-RSA-SHA256\n")
    verify_signature(fake.rsa_key, signature, message)
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(signed.url).query))["X-Goog-Credential"].startswith(
        f"{signer_email}/"
    )
    assert fetch(signed.url) == PNG


async def test_startup_check_signs_once_via_iam(
    emulator_client: storage.Client, iam_fake: tuple[str, FakeIamCredentials]
) -> None:
    endpoint, fake = iam_fake
    store = iam_store(emulator_client, endpoint, "t")
    before = len(fake.signed)
    await store.startup_check()
    assert len(fake.signed) == before + 1
    assert fake.signed[-1][0] == SA_EMAIL


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (403, "roles/iam.serviceAccountTokenCreator"),  # denied: the operator hint, no retry
        (401, "could not be refreshed"),  # the session refreshes the token first; these credentials cannot
    ],
)
async def test_startup_check_reports_signblob_refusal(
    emulator_client: storage.Client, status: int, expected: str
) -> None:
    with start_fake_iam_credentials(FakeIamCredentials(deny_status=status)) as (endpoint, fake):
        store = iam_store(emulator_client, endpoint, "runtime-token")
        with pytest.raises(ImageGenError) as err:
            await store.startup_check()
    assert err.value.code is ErrorCode.MISCONFIGURED
    assert expected in err.value.message
    assert SA_EMAIL in err.value.message
    assert "runtime-token" not in str(err.value.to_dict())
    assert fake.authorizations == ["Bearer runtime-token"]


async def test_signblob_server_errors_are_retried_then_storage_error(emulator_client: storage.Client) -> None:
    with start_fake_iam_credentials(FakeIamCredentials(deny_status=503)) as (endpoint, fake):
        store = iam_store(emulator_client, endpoint, "t")
        with pytest.raises(ImageGenError) as err:
            await store.sign("20260101-000000-" + "1" * 32 + ".png", ttl_seconds=60, base_url=None)
    assert err.value.code is ErrorCode.STORAGE_ERROR and err.value.retryable
    assert len(fake.authorizations) == 3


async def test_user_credentials_without_signing_account_are_misconfigured(emulator_client: storage.Client) -> None:
    store = GcsStore(make_settings(), client=emulator_client, credentials=user_credentials.Credentials(token="t"))
    with pytest.raises(ImageGenError) as err:
        await store.startup_check()
    assert err.value.code is ErrorCode.MISCONFIGURED
    assert "IMAGEGEN_SIGNING_SERVICE_ACCOUNT" in err.value.message


async def test_startup_check_missing_bucket(emulator_client: storage.Client, sa_key: Any) -> None:
    store = local_key_store(emulator_client, sa_key, bucket="no-such-bucket")
    with pytest.raises(ImageGenError) as err:
        await store.startup_check()
    assert err.value.code is ErrorCode.MISCONFIGURED
    assert "no-such-bucket" in err.value.message


async def test_startup_check_passes_with_local_key(emulator_client: storage.Client, sa_key: Any) -> None:
    await local_key_store(emulator_client, sa_key).startup_check()


def test_constructor_does_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    store = GcsStore(make_settings())
    assert store.resolve_reference(f"gs://{BUCKET}/outputs/20260101-000000-{'a' * 32}.png") is not None
    with pytest.raises(ImageGenError):
        GcsStore(make_settings(storage="local", bucket=None))
