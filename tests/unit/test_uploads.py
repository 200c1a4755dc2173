"""Uploads without HTTP: the curl line's shell quoting (checked by a real shell), ids, limits at use."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest

from imagegen_mcp.access.caller import Caller
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.images.uploads import curl_command, local_path_argument, open_upload, read_upload
from imagegen_mcp.storage.base import UploadTicket, is_image_id, is_upload_id, new_upload_id
from imagegen_mcp.storage.local import LocalStore

ALICE = Caller("alice", "bearer")


def shell_words(command_tail: str) -> list[str]:
    """How bash splits `command_tail` (one word per line), with HOME pinned so `~` is predictable."""
    script = f"for w in {command_tail}; do printf '%s\\n' \"$w\"; done"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={"HOME": "/home/agent"})
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    ("filename", "seen"),
    [
        (None, "./photo.png"),
        ("photo.png", "./photo.png"),
        ("my photo (1).png", "./my photo (1).png"),
        ("it's $HOME `id`.png", "./it's $HOME `id`.png"),
        ("'; rm -rf ~; '.png", "./'; rm -rf ~; '.png"),
        ("-o evil.png", "./-o evil.png"),  # never an option
        ("/abs/dir/x.png", "/abs/dir/x.png"),
        ("../up/x.png", "../up/x.png"),
        ("~/Pictures/a b.png", "/home/agent/Pictures/a b.png"),  # the tilde still expands
    ],
)
def test_the_path_reaches_curl_as_one_word(filename: str | None, seen: str) -> None:
    assert shell_words(local_path_argument(filename, "image/png")) == [seen]


@pytest.mark.parametrize("filename", ["a\nb.png", "a\x00b", "x" * 1025])
def test_unprintable_or_long_filenames_are_refused(filename: str) -> None:
    with pytest.raises(ImageGenError) as refused:
        local_path_argument(filename, "image/png")
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT


def test_curl_line_carries_every_header_and_the_url_as_single_words() -> None:
    url = "https://storage.googleapis.com/b/uploads/up-x.png?X-Goog-Signature=ab&X-Goog-SignedHeaders=a%3Bb"
    ticket = UploadTicket(
        "up-x.png",
        url,
        {"Content-Type": "image/png", "x-goog-meta-owner": "iam:o'brien@example.com"},
        datetime.now(UTC),
    )
    line = curl_command(ticket, local_path_argument("p.png", "image/png"))
    assert line.startswith("curl -fsS -X PUT -H 'Content-Type: image/png' ")
    assert shell_words(line.removeprefix("curl ")) == [
        "-fsS",
        "-X",
        "PUT",
        "-H",
        "Content-Type: image/png",
        "-H",
        "x-goog-meta-owner: iam:o'brien@example.com",
        "--upload-file",
        "./p.png",
        url,
    ]


def test_upload_ids_are_not_output_ids_and_unguessable() -> None:
    ids = {new_upload_id("image/webp") for _ in range(100)}
    assert len(ids) == 100
    for upload_id in ids:
        assert is_upload_id(upload_id) and not is_image_id(upload_id) and upload_id.endswith(".webp")
        assert len(upload_id.split("-")[-1].split(".")[0]) == 32  # 128 random bits
    for hostile in (
        "up-../../x.png",
        "up-20261201-000000-" + "g" * 32 + ".png",
        "UP-20261201-000000-" + "a" * 32 + ".png",
    ):
        assert not is_upload_id(hostile)


@pytest.mark.anyio
async def test_an_upload_over_the_input_limit_is_invalid_argument_when_used(make_settings: Any) -> None:
    settings = make_settings(max_input_image_bytes=1024)
    store = LocalStore(settings)
    answer = await open_upload(
        settings, store, ALICE, mime_type="image/png", size_bytes=1024, filename=None, base_url=None
    )
    (store.uploads.dir / answer["id"]).write_bytes(b"\x89PNG" + b"0" * 2000)  # e.g. the limit was lowered since
    with pytest.raises(ImageGenError) as refused:
        await read_upload(settings, store, answer["id"], ALICE)
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT
