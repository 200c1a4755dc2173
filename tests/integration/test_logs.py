"""Structured logs of the server process: the tool-call line's fields, and what must never appear in any line."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import httpx2
import pytest

from imagegen_mcp.access.keys import create_api_key
from tests.fakes.http_fake import error_reply, make_image
from tests.fakes.openai_server import DEFAULT_KEY, FakeOpenAI, start_fake_openai
from tests.integration.reliability_support import (
    HttpRecord,
    assert_success,
    error_code,
    generate,
    log_records,
    mcp_client,
    openai_env,
    tool_call_lines,
)
from tests.support.servers import ServerHandle, start_server

PROMPT_CHARS = 12
TRACE_ID = "105445aa7843bc8bf206b12000100000"
SPAN_ID = "4711"
PROMPT_TAIL = "ZEBRA-TAIL-MARKER-91"
LONG_PROMPT = f"a quiet harbour at dawn with fishing boats {PROMPT_TAIL}"
INPUT_IMAGE = make_image(40, 24, "PNG", (10, 200, 30))


@dataclass
class LoggedRun:
    handle: ServerHandle
    fake: FakeOpenAI
    bearer_key: str
    key_id: str
    record: HttpRecord
    response_texts: list[str]


def b64_fragments(data: bytes) -> list[str]:
    """Distinctive pieces of the base64 forms of `data` (any offset alignment)."""
    pieces = []
    for shift in range(3):
        encoded = base64.b64encode(data[shift:]).decode()
        pieces.append(encoded[8:72])
    return pieces


@pytest.fixture(scope="module")
def run() -> Iterator[LoggedRun]:
    bearer_key, key_record = create_api_key("logs-test")
    env = openai_env(
        "",
        IMAGEGEN_AUTH="bearer",
        IMAGEGEN_API_KEYS=json.dumps({"keys": [key_record.to_json()]}),
        IMAGEGEN_LOG_PROMPT_CHARS=str(PROMPT_CHARS),
        IMAGEGEN_LOG_LEVEL="DEBUG",
        GOOGLE_CLOUD_PROJECT="test-project",
        NO_GCE_CHECK="True",
    )
    record = HttpRecord()
    texts: list[str] = []
    with start_fake_openai() as (base_url, fake):
        env["IMAGEGEN_OPENAI_BASE_URL"] = base_url
        with start_server(env) as handle:
            anyio.run(_exercise, handle, fake, bearer_key, record, texts)
            yield LoggedRun(handle, fake, bearer_key, key_record.id, record, texts)


async def _exercise(
    handle: ServerHandle, fake: FakeOpenAI, bearer_key: str, record: HttpRecord, texts: list[str]
) -> None:
    headers = {
        "Authorization": f"Bearer {bearer_key}",
        "X-Cloud-Trace-Context": f"{TRACE_ID}/{SPAN_ID};o=1",
    }
    async with mcp_client(handle.mcp_url, headers=headers, record=record) as client:
        ok = await generate(client, LONG_PROMPT, preview=True)
        assert_success(ok)
        texts.append(ok.model_dump_json())
        # An upstream that echoes our key back in its error text.
        fake.script(*(error_reply(500, f"internal failure for key {DEFAULT_KEY}", None) for _ in range(3)))
        failed = await generate(client, LONG_PROMPT)
        assert error_code(failed) == "upstream_error"
        texts.append(failed.model_dump_json())
        data_url = "data:image/png;base64," + base64.b64encode(INPUT_IMAGE).decode()
        edited = await client.call_tool("edit_image", {"prompt": LONG_PROMPT, "images": [data_url]})
        assert_success(edited)
        texts.append(edited.model_dump_json())
    # A wrong bearer token: refused, and the token must not be logged either.
    wrong = bearer_key[:-6] + "XXXXXX"
    response = httpx2.post(
        handle.mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": f"Bearer {wrong}", "Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 401
    texts.append(response.text)


def test_tool_call_lines_carry_the_request_context(run: LoggedRun) -> None:
    lines = tool_call_lines(run.handle)
    assert [(line["tool"], line["outcome"]) for line in lines] == [
        ("generate_image", "ok"),
        ("generate_image", "upstream_error"),
        ("edit_image", "ok"),
    ]
    for line in lines:
        assert line["severity"] == "INFO"
        assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
        assert line["request_id"] in run.record.request_ids, "the log's request id is the X-Request-Id answered"
        assert line["logging.googleapis.com/trace"] == f"projects/test-project/traces/{TRACE_ID}"
        assert line["logging.googleapis.com/spanId"] == SPAN_ID
        assert line["caller"] == run.key_id
        assert line["model"] == "openai/gpt-image-1"
        assert line["provider"] == "openai"
        assert isinstance(line["latency_ms"], int) and line["latency_ms"] >= 0
        assert line["prompt"] == LONG_PROMPT[:PROMPT_CHARS]
        assert line["prompt_chars"] == len(LONG_PROMPT)
    assert len({line["request_id"] for line in lines}) == len(lines)


def test_every_line_is_json_with_cloud_logging_fields(run: LoggedRun) -> None:
    raw = [line for line in run.handle.logs().splitlines() if line.strip()]
    records = log_records(run.handle)
    assert len(records) == len(raw), [line for line in raw if not line.startswith("{")][:3]
    for entry in records:
        assert entry["severity"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert isinstance(entry["message"], str)
    # Lines logged inside a request carry its context too (e.g. the upstream failure warnings).
    warnings = [r for r in records if r.get("message") == "upstream error"]
    assert warnings and all(w.get("logging.googleapis.com/trace") for w in warnings)


def test_logs_never_carry_keys_tokens_long_prompts_or_image_bytes(run: LoggedRun) -> None:
    text = run.handle.logs()
    assert DEFAULT_KEY not in text, "the upstream API key leaked into the logs"
    assert run.bearer_key not in text
    # igm_k_<id>_<secret>; the secret itself may hold "_" (URL-safe base64), so it is what follows the third one.
    secret = run.bearer_key.split("_", 3)[3]
    assert len(secret) == 43 and secret not in text, "the secret part of the bearer key leaked"
    assert run.bearer_key[:-6] not in text, "the refused bearer token leaked"
    assert PROMPT_TAIL not in text, "prompt text beyond IMAGEGEN_LOG_PROMPT_CHARS leaked"
    secrets_and_images = [
        *b64_fragments(INPUT_IMAGE),
        *b64_fragments(make_image(64, 64)),  # what the fake upstream returned
    ]
    for response_text in run.response_texts:  # the inline preview the client received
        secrets_and_images += re.findall(r'"data":"([A-Za-z0-9+/=]{64})', response_text)
    assert any(re.search(r'"data":"', t) for t in run.response_texts), "no preview was returned to look for"
    for fragment in secrets_and_images:
        assert fragment not in text, "image bytes (base64) leaked into the logs"


def test_responses_never_carry_the_upstream_key(run: LoggedRun) -> None:
    for response_text in run.response_texts:
        assert DEFAULT_KEY not in response_text
    assert "[redacted]" in run.response_texts[1], "the echoed key is cut out of the upstream message"
