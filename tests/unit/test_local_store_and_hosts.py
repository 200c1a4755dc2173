"""Local store links and retention; Host/Origin policy; settings parsing."""

from __future__ import annotations

import os
import time

import pytest
from pydantic import ValidationError

from imagegen_mcp.access.hosts import HostPolicy, format_authority, parse_authority
from imagegen_mcp.config import Settings
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.storage.local import LocalStore

pytestmark = pytest.mark.anyio


async def test_put_sign_verify_read_delete(make_settings) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore(make_settings())
    await store.startup_check()
    stored = await store.put(b"\x89PNG\r\n\x1a\nfake", mime_type="image/png", metadata={"model": "m"})
    link = await store.sign(stored.id, ttl_seconds=60, base_url="https://img.example.com")
    assert link.url.startswith(f"https://img.example.com/files/{stored.id}?expires=")
    query = dict(p.split("=", 1) for p in link.url.split("?", 1)[1].split("&"))
    assert store.verify(stored.id, query["expires"], query["sig"]).read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ImageGenError) as info:
        store.verify(stored.id, query["expires"], "f" * 64)
    assert info.value.code == ErrorCode.FORBIDDEN
    with pytest.raises(ImageGenError):
        store.verify(stored.id, str(int(query["expires"]) + 1), query["sig"])
    assert store.resolve_reference(link.url) == stored.id
    assert store.resolve_reference(stored.uri) == stored.id
    assert store.resolve_reference("file:///etc/passwd") is None
    found = await store.read(stored.id, max_bytes=100)
    assert found.mime_type == "image/png" and found.data.endswith(b"fake")
    assert found.metadata["model"] == "m"
    with pytest.raises(ImageGenError):
        await store.read(stored.id, max_bytes=3)
    await store.delete(stored.id)
    with pytest.raises(ImageGenError) as gone:
        await store.read(stored.id, max_bytes=100)
    assert gone.value.code == ErrorCode.NOT_FOUND


async def test_small_outputs_are_written_on_the_loop_and_large_ones_in_a_thread(  # type: ignore[no-untyped-def]
    make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from imagegen_mcp.storage import local

    store = LocalStore(make_settings())
    await store.startup_check()
    written_in: list[threading.Thread] = []
    write = store._write

    def recording_write(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        written_in.append(threading.current_thread())
        write(*args, **kwargs)

    monkeypatch.setattr(store, "_write", recording_write)
    small = b"\x89PNG\r\n\x1a\n" + b"s" * (local.INLINE_WRITE_BYTES - 8)
    large = small + b"l"
    stored = [await store.put(data, mime_type="image/png", metadata={}) for data in (small, large)]
    assert written_in[0] is threading.main_thread() and written_in[1] is not threading.main_thread()
    for item, data in zip(stored, (small, large), strict=True):
        assert (await store.read(item.id, max_bytes=len(data))).data == data


async def test_a_write_makes_the_folder_again_when_it_was_removed(make_settings) -> None:  # type: ignore[no-untyped-def]
    import shutil

    store = LocalStore(make_settings())
    await store.startup_check()
    first = await store.put(b"\x89PNG\r\n\x1a\none", mime_type="image/png", metadata={"model": "m"})
    shutil.rmtree(store.root)
    small = await store.put(b"\x89PNG\r\n\x1a\ntwo", mime_type="image/png", metadata={"model": "m"})
    assert (await store.read(small.id, max_bytes=100)).data.endswith(b"two")
    shutil.rmtree(store.root)
    large = b"\x89PNG\r\n\x1a\n" + b"x" * (512 * 1024)
    big = await store.put(large, mime_type="image/png", metadata={"model": "m"})
    assert (await store.read(big.id, max_bytes=len(large))).data == large
    assert sorted(p.name for p in store.root.iterdir() if not p.name.startswith(".")) == sorted(
        [big.id, f"{big.id}.json"]
    )
    with pytest.raises(ImageGenError) as gone:
        await store.read(first.id, max_bytes=100)
    assert gone.value.code == ErrorCode.NOT_FOUND


async def test_read_refused_by_metadata_is_the_missing_answer(make_settings) -> None:  # type: ignore[no-untyped-def]
    """`allow` reads the sidecar first: a refused output is reported exactly like a missing one, size unchecked."""
    store = LocalStore(make_settings())
    stored = await store.put(b"\x89PNG\r\n\x1a\nfake", mime_type="image/png", metadata={"owner": "bearer:a"})
    assert (await store.metadata(stored.id))["owner"] == "bearer:a"
    with pytest.raises(ImageGenError) as refused:
        await store.read(stored.id, max_bytes=1, allow=lambda meta: meta.get("owner") == "bearer:b")
    await store.delete(stored.id)
    with pytest.raises(ImageGenError) as gone:
        await store.read(stored.id, max_bytes=1, allow=lambda meta: True)
    assert refused.value.to_dict() == gone.value.to_dict() and gone.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(ImageGenError) as no_meta:
        await store.metadata(stored.id)
    assert no_meta.value.to_dict() == gone.value.to_dict()


async def test_every_spelling_of_a_files_link_resolves_to_the_output(make_settings) -> None:  # type: ignore[no-untyped-def]
    """Paths the router would serve the same file for must not slip past as foreign URLs (and be fetched)."""
    store = LocalStore(make_settings())
    image_id = "20260101-000000-" + "a" * 32 + ".png"
    encoded = image_id.replace("2", "%32", 1)
    for url in (
        f"https://img.example.com/files/{image_id}?expires=1&sig=x",
        f"https://img.example.com/files/{encoded}",
        f"https://img.example.com//files//{image_id}/",
        f"https://img.example.com/prefix/files/{image_id}",
        f"https://img.example.com/%66iles/{image_id}",
    ):
        assert store.resolve_reference(url) == image_id, url
    assert store.resolve_reference(f"https://img.example.com/other/{image_id}") is None
    assert store.resolve_reference(f"https://img.example.com/files/{image_id}/more") is None


async def test_expired_link_is_refused(make_settings) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore(make_settings())
    stored = await store.put(b"x", mime_type="image/png", metadata={})
    past = int(time.time()) - 5
    with pytest.raises(ImageGenError, match="expired"):
        store.verify(stored.id, str(past), store._signature(stored.id, past))


async def test_signing_key_survives_restarts(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings()
    first = LocalStore(settings)
    stored = await first.put(b"x", mime_type="image/png", metadata={})
    link = await first.sign(stored.id, ttl_seconds=60, base_url=None)
    query = dict(p.split("=", 1) for p in link.url.split("?", 1)[1].split("&"))
    assert LocalStore(settings).verify(stored.id, query["expires"], query["sig"])
    assert oct((first.root / ".signing-key").stat().st_mode)[-3:] == "600"


async def test_sweep_deletes_only_old_outputs(make_settings) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore(make_settings(retention_days=1))
    old = await store.put(b"old", mime_type="image/png", metadata={})
    new = await store.put(b"new", mime_type="image/png", metadata={})
    two_days_ago = time.time() - 2 * 86400
    os.utime(store.root / old.id, (two_days_ago, two_days_ago))
    assert await store.sweep() == 1
    assert not (store.root / old.id).exists() and (store.root / new.id).exists()
    assert not (store.root / f"{old.id}.json").exists() and (store.root / f"{new.id}.json").exists()


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8080", True),
        ("localhost", True),
        ("[::1]:9000", True),
        ("imagegen-abc123-uc.a.run.app", True),
        ("imagegen-123456789.europe-west1.run.app", True),
        ("other-service-1.europe-west1.run.app", False),
        ("images.example.com", True),
        ("evil.com", False),
        ("localhost.evil.com", False),
        (None, False),
        ("localhost:@evil.com", False),
        ("localhost:18900.evil.com", False),
        ("[::1].evil.com", False),
        ("[::1]:80.evil.com", False),
        ("127.0.0.1:8080:9090", False),
        ("localhost:", False),
        ("localhost:999999", False),
        ("user@localhost", False),
        ("local%68ost", False),
        ("\u212aocalhost", False),  # KELVIN SIGN lower-cases to "k"
        ("[::1%lo]", False),
        ("[127.0.0.1]", False),
        (" localhost", False),
        ("LOCALHOST:8080", True),
        ("[::1]", True),
    ],
)
def test_host_policy(host: str | None, ok: bool) -> None:
    settings = Settings(_env_file=None, cloud_run_service="imagegen", allowed_hosts="images.example.com")  # type: ignore[call-arg]
    assert HostPolicy.from_settings(settings).host_allowed(host) is ok


def test_origin_policy() -> None:
    settings = Settings(_env_file=None, public_url="https://img.example.com", allowed_origins="https://app.example.com")  # type: ignore[call-arg]
    policy = HostPolicy.from_settings(settings)
    assert policy.origin_allowed(None, "img.example.com")
    assert policy.origin_allowed("https://app.example.com", "img.example.com")
    assert policy.origin_allowed("https://img.example.com", "img.example.com")
    assert not policy.origin_allowed("https://evil.example.com", "img.example.com")
    assert policy.origin_allowed("http://localhost:6274", "127.0.0.1:8080")
    assert not policy.origin_allowed("http://localhost:6274", "img.example.com")
    assert not policy.origin_allowed("http://localhost:@evil.com", "127.0.0.1:8080")
    assert not policy.origin_allowed("http://[::1].evil.com", "[::1]:8080")
    assert policy.origin_allowed("http://[::1]:8080", "[::1]:8080")


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("Example.COM:443", ("example.com", 443)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::FFFF:127.0.0.1]", ("::ffff:127.0.0.1", None)),
        ("10.0.0.1", ("10.0.0.1", None)),
        ("a:b:c", None),
        ("[::1", None),
        ("[zz]", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_authority(value: str | None, parsed: tuple[str, int | None] | None) -> None:
    assert parse_authority(value) == parsed
    if parsed is not None:
        assert parse_authority(format_authority(*parsed)) == parsed


def test_settings_parse_and_validate() -> None:
    s = Settings(_env_file=None, allowed_hosts="a.com, b.com", providers='["openai","vertex"]')  # type: ignore[call-arg]
    assert s.allowed_hosts == ["a.com", "b.com"] and s.providers == ["openai", "vertex"]
    assert s.placeholder_enabled is True
    with pytest.raises(ValidationError, match="IMAGEGEN_BUCKET"):
        Settings(_env_file=None, storage="gcs")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(_env_file=None, url_ttl_seconds=8 * 86400)  # type: ignore[call-arg]
    cloud = Settings(_env_file=None, storage="gcs", bucket="b")  # type: ignore[call-arg]
    assert cloud.placeholder_enabled is False


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGEN_URL_TTL_SECONDS", "120")
    monkeypatch.setenv("PORT", "9999")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "proj")
    monkeypatch.setenv("K_SERVICE", "svc")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.url_ttl_seconds, s.port, s.google_cloud_project, s.cloud_run_service) == (120, 9999, "proj", "svc")


async def test_link_lifetime_is_the_ttl(make_settings) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore(make_settings())
    stored = await store.put(b"x", mime_type="image/png", metadata={})
    before = time.time()
    link = await store.sign(stored.id, ttl_seconds=600, base_url=None)
    expires = int(link.url.split("expires=", 1)[1].split("&", 1)[0])
    assert before + 599 <= expires <= time.time() + 600
    assert link.expires_at.timestamp() == expires


async def test_secrets_in_a_config_file_are_used(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """config.py reads the provider keys and bearer hashes (environment or --config file); the env source uses them."""
    from imagegen_mcp.secrets.base import EnvSecretSource

    config = tmp_path / "imagegen.env"
    config.write_text('OPENAI_API_KEY=sk-from-file\nIMAGEGEN_API_KEYS=[{"sha256": "ab"}]\nGOOGLE_API_KEY=g-file\n')
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r-from-env")
    source = EnvSecretSource.from_settings(Settings(_env_file=config))  # type: ignore[call-arg]
    assert await source.get("openai") == "sk-from-file"
    assert await source.get("api_keys") == '[{"sha256": "ab"}]'
    assert await source.get("gemini") == "g-file"
    assert await source.get("replicate") == "r-from-env"
    assert await source.get("openrouter") is None
    monkeypatch.setenv("GEMINI_API_KEY", "g-env")
    assert await EnvSecretSource.from_settings(Settings(_env_file=config)).get("gemini") == "g-env"  # type: ignore[call-arg]
    assert "sk-from-file" not in repr(Settings(_env_file=config))  # type: ignore[call-arg]
