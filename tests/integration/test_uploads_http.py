"""Uploads end to end: create_upload over real HTTP, its curl line run by a real curl, edit_image with the id.

Against the local store (the app's signed PUT route) and against fake-gcs-server (a V4 signed PUT URL).
"""

from __future__ import annotations

import binascii
import hashlib
import io
import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from imagegen_mcp.access.keys import create_api_key
from tests.fakes.gcs_server import start_fake_gcs
from tests.fakes.google_token_server import start_fake_token_server, write_service_account_file
from tests.fakes.iam_credentials_server import verify_signature
from tests.integration.test_auth_http import keys_document
from tests.support.mcp_http import mcp_client
from tests.support.servers import ServerHandle, start_server

pytestmark = pytest.mark.anyio
PLACEHOLDER = "local/placeholder"
BUCKET = "imagegen-upload-tests"
COLOUR = (200, 40, 90)
SIZE = (300, 200)


def photo(path: Path, colour: tuple[int, int, int] = COLOUR, fmt: str = "PNG") -> Path:
    from PIL import Image

    Image.new("RGB", SIZE, colour).save(path, format=fmt)
    return path


def bearer_env() -> tuple[dict[str, str], dict[str, str]]:
    """Keys a, b and c; a and c share (IMAGEGEN_SHARED_OWNERS), b is on its own."""
    keys: dict[str, str] = {}
    records = []
    for name in ("a", "b", "c"):
        secret, record = create_api_key(f"upload test {name}")
        keys[name] = secret
        keys[f"{name}_id"] = record.id
        records.append(record)
    env = {
        "IMAGEGEN_AUTH": "bearer",
        "IMAGEGEN_API_KEYS": keys_document(*records),
        "IMAGEGEN_DEFAULT_MODEL": PLACEHOLDER,
        "IMAGEGEN_SHARED_OWNERS": f"{keys['a_id']},{keys['c_id']}",
        "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
    }
    return env, keys


@pytest.fixture(scope="module")
def local() -> Iterator[tuple[ServerHandle, dict[str, str]]]:
    env, keys = bearer_env()
    with start_server(env) as handle:
        yield handle, keys


async def call(handle: ServerHandle, key: str, tool: str, arguments: dict[str, Any]) -> Any:
    async with mcp_client(handle.mcp_url, headers={"Authorization": f"Bearer {key}"}) as client:
        return await client.call_tool(tool, arguments)


def run_curl(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The curl line as an agent's shell runs it (bash -c), loopback only; `-w` adds the status for the test."""
    return subprocess.run(
        ["bash", "-c", f"{command} -w '%{{http_code}}' -o /dev/null"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "NO_PROXY": "*"},
    )


async def create(handle: ServerHandle, key: str, path: Path, mime: str = "image/png", **extra: Any) -> dict[str, Any]:
    arguments = {"mime_type": mime, "size_bytes": path.stat().st_size, "filename": path.name, **extra}
    result = await call(handle, key, "create_upload", arguments)
    assert not result.is_error, result.content
    answer: dict[str, Any] = result.structured_content
    assert answer["method"] == "PUT" and answer["curl"] in result.content[0].text
    return answer


def edit_pixels(url: str) -> tuple[tuple[int, int], tuple[int, ...]]:
    from PIL import Image

    response = httpx2.get(url, timeout=30)
    assert response.status_code == 200
    with Image.open(io.BytesIO(response.content)) as img:
        return img.size, img.convert("RGB").getpixel((img.width - 5, img.height - 5))


def inverted(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return (255 - colour[0], 255 - colour[1], 255 - colour[2])


async def assert_edit_of_the_file(handle: ServerHandle, key: str, upload_id: str) -> None:
    """local/placeholder inverts the first input's colours: the output shows the uploaded file, edited."""
    result = await call(handle, key, "edit_image", {"prompt": "invert it", "images": [upload_id]})
    assert not result.is_error, result.structured_content
    size, pixel = edit_pixels(result.structured_content["images"][0]["url"])
    assert size == SIZE and pixel == inverted(COLOUR)


async def test_local_upload_with_the_curl_line_then_edit(local: tuple[ServerHandle, dict[str, str]], tmp_path: Path):
    handle, keys = local
    path = photo(tmp_path / "my photo (1).png")  # spaces and brackets: the line must quote them
    answer = await create(handle, keys["a"], path)
    assert answer["id"].startswith("up-") and answer["id"].endswith(".png")
    assert answer["upload_url"].startswith(f"{handle.base_url}/uploads/{answer['id']}?")
    assert answer["headers"] == {"Content-Type": "image/png"}
    assert answer["curl"].startswith("curl -fsS -X PUT -H 'Content-Type: image/png' --upload-file ")
    assert "'./my photo (1).png'" in answer["curl"]
    done = run_curl(answer["curl"], tmp_path)
    assert done.returncode == 0 and done.stdout == "200", done
    await assert_edit_of_the_file(handle, keys["a"], answer["id"])
    again = run_curl(answer["curl"], tmp_path)  # write-once
    assert again.returncode == 22 and again.stdout == "409", again


async def test_local_puts_outside_the_limits_are_refused(local: tuple[ServerHandle, dict[str, str]], tmp_path: Path):
    handle, keys = local
    path = photo(tmp_path / "p.png")
    answer = await create(handle, keys["a"], path)
    wrong_type = answer["curl"].replace("Content-Type: image/png", "Content-Type: image/jpeg")
    done = run_curl(wrong_type, tmp_path)
    assert done.returncode == 22 and done.stdout == "415", done
    small = await create(handle, keys["a"], path, size_bytes=path.stat().st_size - 1)
    done = run_curl(small["curl"], tmp_path)
    assert done.returncode == 22 and done.stdout == "413", done
    not_uploaded = await call(handle, keys["a"], "edit_image", {"prompt": "x", "images": [small["id"]]})
    assert not_uploaded.structured_content["error"]["code"] == "not_found"
    assert "never uploaded" in not_uploaded.structured_content["error"]["message"]


async def test_bad_create_upload_arguments_are_invalid_argument(local: tuple[ServerHandle, dict[str, str]]) -> None:
    handle, keys = local
    for arguments in (
        {"mime_type": "image/gif", "size_bytes": 10},
        {"mime_type": "text/html", "size_bytes": 10},
        {"mime_type": "image/png", "size_bytes": 0},
        {"mime_type": "image/png", "size_bytes": 21 * 1024 * 1024},
        {"mime_type": "image/png", "size_bytes": 10, "filename": "a\nrm -rf ~"},
    ):
        result = await call(handle, keys["a"], "create_upload", arguments)
        assert result.is_error and result.structured_content["error"]["code"] == "invalid_argument", arguments


async def test_not_an_image_upload_is_invalid_argument(local: tuple[ServerHandle, dict[str, str]], tmp_path: Path):
    handle, keys = local
    path = tmp_path / "notes.png"
    path.write_text("<html>not an image</html>")
    answer = await create(handle, keys["a"], path)
    assert run_curl(answer["curl"], tmp_path).stdout == "200"
    result = await call(handle, keys["a"], "edit_image", {"prompt": "x", "images": [answer["id"]]})
    assert result.structured_content["error"]["code"] == "invalid_argument"


async def test_other_key_gets_not_found_and_a_shared_key_can(local: tuple[ServerHandle, dict[str, str]], tmp_path):
    handle, keys = local
    path = photo(tmp_path / "mine.png")
    answer = await create(handle, keys["a"], path)
    assert run_curl(answer["curl"], tmp_path).stdout == "200"
    foreign = await call(handle, keys["b"], "edit_image", {"prompt": "x", "images": [answer["id"]]})
    missing_id = "up-" + answer["id"][3:-36] + "0" * 32 + ".png"
    missing = await call(handle, keys["b"], "edit_image", {"prompt": "x", "images": [missing_id]})
    assert foreign.structured_content["error"]["code"] == missing.structured_content["error"]["code"] == "not_found"
    assert foreign.structured_content["error"]["message"].replace(answer["id"], "<id>") == missing.structured_content[
        "error"
    ]["message"].replace(missing_id, "<id>")
    as_mask = await call(
        handle, keys["b"], "edit_image", {"prompt": "x", "images": [answer["id"]], "mask": answer["id"]}
    )
    assert as_mask.structured_content["error"]["code"] == "not_found"
    await assert_edit_of_the_file(handle, keys["c"], answer["id"])  # a and c are a shared pair


async def test_upload_route_behind_functions_framework(tmp_path: Path) -> None:
    env, keys = bearer_env()
    with start_server(env, entry="functions-framework") as handle:
        answer = await create(handle, keys["a"], photo(tmp_path / "ff.png"))
        done = run_curl(answer["curl"], tmp_path)
        assert done.returncode == 0 and done.stdout == "200", done
        await assert_edit_of_the_file(handle, keys["a"], answer["id"])


async def test_expired_upload_url_is_refused(tmp_path: Path) -> None:
    env, keys = bearer_env()
    with start_server({**env, "IMAGEGEN_UPLOAD_TTL_SECONDS": "1"}) as handle:
        path = photo(tmp_path / "late.png")
        answer = await create(handle, keys["a"], path)
        time.sleep(2.1)
        done = run_curl(answer["curl"], tmp_path)
        assert done.returncode == 22 and done.stdout == "403", done


# --- against fake-gcs-server: a real V4 signed PUT -----------------------------------------------------------------


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("gcs-uploads")
    env, keys = bearer_env()
    with start_fake_token_server() as (token_uri, _tokens), start_fake_gcs((BUCKET,)) as gcs_url:
        key_file = write_service_account_file(Path(tmp) / "sa.json", token_uri)
        env.update(
            {
                "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),  # a key file: URLs are signed locally with it
                "GOOGLE_CLOUD_PROJECT": "test-project",
                "NO_GCE_CHECK": "True",
                "IMAGEGEN_STORAGE": "gcs",
                "IMAGEGEN_BUCKET": BUCKET,
                "STORAGE_EMULATOR_HOST": gcs_url,
                "IMAGEGEN_ENABLE_PLACEHOLDER": "true",  # the offline model, so edits need no upstream fake
            }
        )
        with start_server(env) as handle:
            yield {"server": handle, "keys": keys, "gcs": gcs_url, "key_file": key_file}


def v4_string_to_sign(url: str, method: str, headers: dict[str, str]) -> tuple[bytes, bytes]:
    """The V4 string-to-sign of a signed URL rebuilt per Google's spec (signed headers included), and its signature."""
    parts = urllib.parse.urlsplit(url)
    params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = dict(params)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(p for p in params if p[0] != "X-Goog-Signature")
    )
    signed = {k.lower(): " ".join(v.split()) for k, v in {**headers, "host": parts.netloc}.items()}
    names = sorted(signed)
    assert query["X-Goog-SignedHeaders"] == ";".join(names)
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in names)
    canonical_request = "\n".join(
        [method, parts.path, canonical_query, canonical_headers, ";".join(names), "UNSIGNED-PAYLOAD"]
    )
    scope = query["X-Goog-Credential"].split("/", 1)[1]
    message = "\n".join(
        ["GOOG4-RSA-SHA256", query["X-Goog-Date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    return message.encode(), binascii.unhexlify(query["X-Goog-Signature"])


def gcs_object(gcs_url: str, name: str) -> dict[str, Any]:
    quoted = urllib.parse.quote(name, safe="")
    response = httpx2.get(f"{gcs_url}/storage/v1/b/{BUCKET}/o/{quoted}", timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def test_gcs_signed_put_with_the_curl_line_then_edit(gcs: dict[str, Any], tmp_path: Path) -> None:
    handle, keys = gcs["server"], gcs["keys"]
    path = photo(tmp_path / "beach.jpg", fmt="JPEG")
    answer = await create(handle, keys["a"], path, mime="image/jpeg")
    size = path.stat().st_size
    owner = f"bearer:{keys['a_id']}"
    assert answer["id"].startswith("up-") and answer["id"].endswith(".jpg")
    assert answer["headers"] == {
        "Content-Type": "image/jpeg",
        "x-goog-content-length-range": f"0,{size}",
        "x-goog-if-generation-match": "0",
        "x-goog-meta-owner": owner,
    }
    parts = urllib.parse.urlsplit(answer["upload_url"])
    assert parts.path == f"/{BUCKET}/uploads/{answer['id']}"
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert int(query["X-Goog-Expires"]) == 900  # IMAGEGEN_UPLOAD_TTL_SECONDS' default
    for name, value in answer["headers"].items():
        assert f"-H '{name}: {value}'" in answer["curl"]
    # The signature covers exactly those headers (and the host): checked with the service account's public key.
    info = json.loads(gcs["key_file"].read_text())
    private_key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    message, signature = v4_string_to_sign(answer["upload_url"], "PUT", answer["headers"])
    verify_signature(private_key, signature, message)
    tampered, _ = v4_string_to_sign(answer["upload_url"], "PUT", {**answer["headers"], "x-goog-meta-owner": "x"})
    with pytest.raises(InvalidSignature):
        verify_signature(private_key, signature, tampered)

    done = run_curl(answer["curl"], tmp_path)
    assert done.returncode == 0 and done.stdout == "200", done
    stored = gcs_object(gcs["gcs"], f"uploads/{answer['id']}")
    assert stored["contentType"] == "image/jpeg" and int(stored["size"]) == size
    assert stored["metadata"] == {"owner": owner}  # recorded by the PUT itself (the signed x-goog-meta-owner)

    result = await call(handle, keys["a"], "edit_image", {"prompt": "invert it", "images": [answer["id"]]})
    assert not result.is_error, result.structured_content
    out_size, pixel = edit_pixels(result.structured_content["images"][0]["url"])
    assert out_size == SIZE
    assert all(abs(a - b) <= 6 for a, b in zip(pixel, inverted(COLOUR), strict=True)), pixel  # JPEG in, near enough

    foreign = await call(handle, keys["b"], "edit_image", {"prompt": "x", "images": [answer["id"]]})
    assert foreign.structured_content["error"]["code"] == "not_found"
    by_uri = await call(
        handle, keys["a"], "edit_image", {"prompt": "x", "images": [f"gs://{BUCKET}/uploads/{answer['id']}"]}
    )
    assert by_uri.structured_content["error"]["code"] == "not_found"  # uploads are read by id (owner-checked) only
    shared = await call(handle, keys["c"], "edit_image", {"prompt": "invert it", "images": [answer["id"]]})
    assert not shared.is_error, shared.structured_content


async def test_gcs_upload_not_yet_put_is_not_found(gcs: dict[str, Any], tmp_path: Path) -> None:
    handle, keys = gcs["server"], gcs["keys"]
    answer = await create(handle, keys["a"], photo(tmp_path / "never.png"))
    result = await call(handle, keys["a"], "edit_image", {"prompt": "x", "images": [answer["id"]]})
    assert result.structured_content["error"]["code"] == "not_found"
    assert "never uploaded" in result.structured_content["error"]["message"]
