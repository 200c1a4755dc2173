"""The shipped gallery.html is built from the current ui/src (and its lockfile), self-contained, and in the wheel."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

from imagegen_mcp.ui.app import gallery_html

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "function" / "imagegen_mcp" / "ui" / "src"
STAMP = re.compile(r"source-sha256: ([0-9a-f]{64})")


def source_digest(root: Path) -> str:
    """The same digest build.mjs records: every file under ui/src except node_modules, by sorted relative path."""
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "node_modules" not in p.relative_to(root).parts
    )
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()


def test_shipped_gallery_is_built_from_the_current_sources() -> None:
    found = STAMP.search(gallery_html().splitlines()[0])
    assert found, "gallery.html carries no source digest: rebuild it with `python3 dev.py ui`"
    assert found.group(1) == source_digest(SRC), "gallery.html is stale: run `python3 dev.py ui` and commit it"


def test_the_digest_sees_every_source_and_the_lockfile() -> None:
    assert {"package-lock.json", "package.json", "gallery.ts", "gallery.css", "index.html", "build.mjs"} <= {
        p.name for p in SRC.iterdir()
    }


def test_gallery_is_one_self_contained_document() -> None:
    html = gallery_html()
    assert html.count("<script") == 1 and "<script>" in html  # one inline script, no src=
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|@import|https?://[^\s\"')]+\.(js|css)\b", html)


def test_gallery_ships_as_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "ui/gallery.html" in config["tool"]["setuptools"]["package-data"]["imagegen_mcp"]
