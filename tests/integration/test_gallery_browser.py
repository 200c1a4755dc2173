"""The gallery in a real browser: Debian's Chromium (Playwright, playwright-core) on a minimal ext-apps host.

tests/ui/driver.cjs reads the `ui://` resource over MCP from the running server, serves it on its own origin with
the CSP built from its declared `_meta.ui.csp`, renders it in a sandboxed iframe through the ext-apps host bridge
(tests/ui/host.ts), delivers a real generate_image result and clicks through the actions; tool calls the app makes
go to the server as real tools/call requests. Screenshots land in the test's tmp dir and .cache/artifacts/gallery.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import dev
from tests.support.servers import start_server

ROOT = Path(__file__).resolve().parents[2]
UI_TEST = ROOT / "tests" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / ".cache" / "artifacts" / "gallery"

pytestmark = pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None, reason="needs npm")


def ensure_chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing (idempotent; no browser download of Playwright's)."""
    if not CHROMIUM.exists():
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            check=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    chromium = ensure_chromium()
    node_path = os.pathsep.join(
        str(p) for p in (dev.npm_ci(dev.UI_SRC, "ui-node"), dev.npm_ci(UI_TEST, "ui-test-node"))
    )
    artifacts = tmp_path_factory.mktemp("gallery-browser")
    with start_server({"IMAGEGEN_URL_TTL_SECONDS": "600"}) as server:
        run = subprocess.run(
            ["node", str(UI_TEST / "driver.cjs"), server.mcp_url, str(artifacts), chromium],
            env={**os.environ, "NODE_PATH": node_path},
            capture_output=True,
            text=True,
            timeout=240,
        )
        logs = server.logs()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for item in artifacts.iterdir():
        shutil.copy(item, ARTIFACTS / item.name)
    data = json.loads((artifacts / "report.json").read_text())
    assert run.returncode == 0, f"{data.get('error')}\n{run.stderr[-3000:]}\nconsole: {data.get('console')}"
    data["server_logs"] = logs
    data["artifacts"] = artifacts
    return data


def _ids(images: list[dict[str, Any]]) -> list[str]:
    return [image["id"] for image in images]


def test_every_image_of_the_result_is_shown_large_with_its_details(report: dict[str, Any]) -> None:
    assert report["resource"]["mimeType"] == "text/html;profile=mcp-app"
    shown = report["steps"]["initial"]
    assert _ids(shown) == _ids(report["initial"]["images"]) and len(shown) == 2
    assert all(image["naturalWidth"] > 0 for image in shown)
    meta = report["steps"]["meta"]
    for text in ("a lighthouse at dusk, two takes", "local/placeholder", "placeholder", "1024×576"):
        assert text in meta
    assert (report["artifacts"] / "gallery.png").stat().st_size > 10_000


def test_variations_make_a_real_tools_call_and_show_its_images(report: dict[str, Any]) -> None:
    calls = [c for c in report["calls"] if c["name"] == "generate_image"]
    assert len(calls) == 1
    args = calls[0]["arguments"]
    assert args["prompt"] == "a lighthouse at dusk, two takes" and args["n"] == 2 and args["aspect_ratio"] == "16:9"
    assert isinstance(args["seed"], int)  # local/placeholder supports seeds (from list_models)
    results = dict(zip([c["name"] for c in report["calls"]], report["callResults"], strict=True))
    shown = report["steps"]["variations"]
    assert _ids(shown) == _ids(results["generate_image"]["images"])
    assert not set(_ids(shown)) & set(_ids(report["steps"]["initial"]))
    assert all(image["naturalWidth"] > 0 for image in shown)
    # The server really served it: its log has the driver's own call and the app's.
    assert report["server_logs"].count('"tool": "generate_image"') == 2


def test_edit_calls_edit_image_on_the_shown_image(report: dict[str, Any]) -> None:
    (call,) = [c for c in report["calls"] if c["name"] == "edit_image"]
    assert call["arguments"]["images"] == [report["steps"]["variations"][0]["id"]]
    assert call["arguments"]["prompt"] == "invert the colours"
    assert all(image["naturalWidth"] > 0 for image in report["steps"]["edit"])


def test_pick_tells_the_model_and_download_hands_over_the_signed_url(report: dict[str, Any]) -> None:
    picked = report["steps"]["edit"][0]
    events = {e["kind"]: e.get("params") for e in report["hostEvents"]}
    message = events["ui/message"]
    assert message["role"] == "user" and picked["id"] in message["content"][0]["text"]
    (link,) = events["ui/download-file"]["contents"]
    assert link["type"] == "resource_link" and link["uri"] == picked["src"]


def test_the_declared_csp_blocks_an_image_from_an_undeclared_origin(report: dict[str, Any]) -> None:
    assert report["steps"]["decoyOnHost"] > 0  # the same image loads where no CSP applies
    csp = report["steps"]["csp"]
    assert csp["outcome"] == "blocked" and csp["naturalWidth"] == 0
    assert {"blockedURI": report["decoyUrl"], "directive": "img-src"} in csp["violations"]
    link = urlsplit(report["initial"]["images"][0]["url"])
    assert report["resource"]["meta"]["ui"]["csp"] == {"resourceDomains": [f"{link.scheme}://{link.netloc}"]}


def test_a_link_that_no_longer_verifies_is_re_signed_through_the_app_only_tool(report: dict[str, Any]) -> None:
    (call,) = [c for c in report["calls"] if c["name"] == "gallery_links"]
    first = report["initial"]["images"][0]["id"]
    assert call["arguments"] == {"ids": [first]}
    shown = report["steps"]["refreshed"]
    assert _ids(shown) == _ids(report["initial"]["images"]) and all(i["naturalWidth"] > 0 for i in shown)
    assert shown[0]["src"] != report["staleUrl"]
