"""The `imagegen-mcp` command: one-shot generate, models, and the refusal to serve unauthenticated publicly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

BIN = Path(sys.executable).parent / "imagegen-mcp"


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")}
    base.update({"IMAGEGEN_LOCAL_DIR": str(tmp_path / "out"), **env})
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=base, timeout=120, check=False)


def test_generate_prints_where_the_image_went(tmp_path: Path) -> None:
    done = _run(["generate", "a tiny robot", "--aspect-ratio", "2:3", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    path = Path(result["images"][0]["uri"].removeprefix("file://"))
    assert path.parent == tmp_path / "out"
    with Image.open(path) as img:
        assert img.size == (680, 1024)


def test_generate_reports_typed_errors(tmp_path: Path) -> None:
    done = _run(["generate", "x", "--model", "openai/gpt-image-1"], tmp_path)
    assert done.returncode == 1
    assert "misconfigured" in done.stderr and "Traceback" not in done.stderr


def test_models_lists_availability(tmp_path: Path) -> None:
    done = _run(["models"], tmp_path)
    assert done.returncode == 0
    assert "local/placeholder" in done.stdout and "unavailable" in done.stdout


def test_serve_refuses_public_interface_without_auth(tmp_path: Path) -> None:
    done = _run(["serve", "--host", "0.0.0.0", "--port", "0"], tmp_path)
    assert done.returncode == 2
    assert "refusing to start" in done.stderr and "IMAGEGEN_AUTH" in done.stderr


def test_bad_configuration_is_one_clear_message(tmp_path: Path) -> None:
    done = _run(["models"], tmp_path, IMAGEGEN_STORAGE="gcs")
    assert done.returncode == 2
    assert "IMAGEGEN_BUCKET" in done.stderr and "Traceback" not in done.stderr


def test_provider_key_in_the_config_file_is_used(tmp_path: Path) -> None:
    config = tmp_path / "imagegen.env"
    config.write_text("OPENAI_API_KEY=sk-from-config-file\n")
    plain = _run(["models", "--json"], tmp_path)
    configured = _run(["models", "--json", "--config", str(config)], tmp_path)
    assert plain.returncode == 0 and configured.returncode == 0, configured.stderr

    def openai_available(listing: str) -> bool:
        models = json.loads(listing)["models"]
        return any(m["available"] and m["provider"] == "openai" for m in models)

    assert not openai_available(plain.stdout) and openai_available(configured.stdout)


def test_serve_on_a_busy_port_fails_before_announcing(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = _run(["serve", "--port", str(port)], tmp_path)
    assert done.returncode == 1
    assert "listening" not in done.stderr and "cannot listen on 127.0.0.1" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_dockerfile_cmd_sets_the_uvicorn_limits_serve_uses() -> None:
    import re
    import shlex

    from imagegen_mcp.cli import UVICORN_LIMITS

    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    words = shlex.split(cmd[-1])
    flags = {words[i].removeprefix("--").replace("-", "_"): words[i + 1] for i in range(len(words) - 1)}
    assert {name: int(flags[name]) for name in UVICORN_LIMITS} == UVICORN_LIMITS


def test_generate_edits_a_local_file_and_writes_a_preview(tmp_path: Path) -> None:
    """--image takes a path on this machine; the placeholder edit inverts it, as catalog and README say."""
    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (10, 20, 30)).save(photo)
    preview = tmp_path / "preview.png"
    done = _run(["generate", "make it pop", "--image", str(photo), "--preview", str(preview), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    with Image.open(result["images"][0]["uri"].removeprefix("file://")) as out:
        assert out.size == (64, 48) and out.convert("RGB").getpixel((0, 0)) == (245, 235, 225)
    assert result["preview"] == str(preview)
    with Image.open(preview) as small:
        assert max(small.size) <= 512
    relative = subprocess.run(
        [str(BIN), "generate", "x", "--image", "./photo.png", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "IMAGEGEN_LOCAL_DIR": str(tmp_path / "out")},
        timeout=120,
        check=False,
    )
    assert relative.returncode == 0, relative.stderr
    missing = _run(["generate", "x", "--image", str(tmp_path / "nope.png")], tmp_path)
    assert missing.returncode != 0 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr


def test_generate_help_explains_every_option() -> None:
    import argparse

    from imagegen_mcp.cli import build_parser

    done = subprocess.run([str(BIN), "generate", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert "--negative-prompt" in done.stdout and "--preview" in done.stdout
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    undocumented = [a.dest for a in subparsers.choices["generate"]._actions if not a.help]
    assert undocumented == []


def test_catalog_says_what_the_placeholder_edit_does() -> None:
    from imagegen_mcp.catalog import load_catalog

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    description = load_catalog().get("local/placeholder").description
    assert "invert" in description and "recolour" not in description and "visibly inverts" in readme
