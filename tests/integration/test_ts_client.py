"""The official TypeScript SDK client accepts every tool's results, error results included (issue 11: it used to
reject list_models' errors as a protocol error, their shape being the image result's)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.node_tools import npm_available, ts_client_command
from tests.support.previews import check_one_preview
from tests.support.servers import ServerHandle, start_server

pytestmark = [pytest.mark.npm, pytest.mark.skipif(not npm_available(), reason="needs npm for the TypeScript SDK")]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ServerHandle]:
    with start_server({}) as handle:
        yield handle


def _calls(endpoint: ServerHandle, calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    completed = subprocess.run(
        [*ts_client_command(), endpoint.mcp_url, json.dumps(calls)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]


def test_error_results_of_every_tool_pass_the_ts_clients_output_schema_check(endpoint: ServerHandle) -> None:
    calls = [
        ("list_models", {"verbose": True}),
        ("generate_image", {"prompt": "x", "n": 99}),
        ("edit_image", {"prompt": "x", "images": ["not-an-id"]}),
        ("generate_image", {"prompt": "x", "model": "nope/nothing"}),
    ]
    answers = _calls(endpoint, calls)
    assert [a["name"] for a in answers] == [name for name, _ in calls]
    for answer in answers:
        assert "thrown" not in answer, answer
        assert answer["result"]["isError"] is True, answer
        assert answer["result"]["structuredContent"]["error"]["code"] in ("invalid_argument", "not_found")


def test_successful_results_pass_the_ts_clients_output_schema_check(endpoint: ServerHandle) -> None:
    answers = _calls(endpoint, [("list_models", {}), ("generate_image", {"prompt": "a ts client", "n": 2})])
    for answer in answers:
        assert "thrown" not in answer, answer
        assert not answer["result"].get("isError"), answer
    generated = answers[1]["result"]
    preview = check_one_preview(generated["content"])  # what the TS client hands its host: one small image
    assert preview.size == (384, 384)
    assert [block["type"] for block in generated["content"]] == ["text", "resource_link", "resource_link", "image"]
    names = [item["download"]["filename"] for item in generated["structuredContent"]["images"]]
    assert names == ["a-ts-client-1.png", "a-ts-client-2.png"]
