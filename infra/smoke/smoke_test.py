#!/usr/bin/env python3
"""Smoke test of one deployed imagegen-mcp revision over MCP (streamable HTTP).

Runs in Cloud Build right after `gcloud run deploy --no-traffic --tag c-$SHORT_SHA`
and before any traffic moves: initialize -> notifications/initialized ->
tools/list -> tools/call generate_image (optional) -> GET the returned signed URL.
Exits 0 when everything answered as expected, 1 otherwise (which stops the build).

Standard library only, so it runs in any image that has python3 (the Cloud SDK
image included).

    SMOKE_ID_TOKEN=$(gcloud auth print-identity-token --audiences="$AUDIENCE") \
      python3 infra/smoke/smoke_test.py --url https://c-abc1234---svc-xyz.a.run.app \
      --model local/placeholder

The revision URL can also be read from `gcloud run services describe --format=json`
output with --service-json FILE --tag TAG.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

PROTOCOL_VERSION = "2025-11-25"
USER_AGENT = "imagegen-mcp-smoke/1"


class SmokeError(Exception):
    """A check failed; the message says which and why."""


def tagged_url(service: dict[str, Any], tag: str) -> str:
    """URL of the traffic target with `tag` in a Cloud Run service description (v1 or v2 JSON)."""
    status = service.get("status") or {}
    targets = status.get("traffic") or service.get("trafficStatuses") or []
    for target in targets:
        url = target.get("url") or target.get("uri")
        if target.get("tag") == tag and url:
            return str(url).rstrip("/")
    raise SmokeError(f"no traffic target tagged {tag!r} in the service description")


def parse_body(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """JSON-RPC messages of a response, whether plain JSON or an SSE stream."""
    text = body.decode("utf-8", errors="replace")
    if not text.strip():
        return []
    if content_type.startswith("text/event-stream"):
        messages: list[dict[str, Any]] = []
        data: list[str] = []
        for line in [*text.splitlines(), ""]:
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line == "" and data:
                messages.append(json.loads("\n".join(data)))
                data = []
        return messages
    parsed = json.loads(text)
    return parsed if isinstance(parsed, list) else [parsed]


class McpClient:
    def __init__(self, base_url: str, token: str | None, timeout: float) -> None:
        _require_http(base_url)
        self.endpoint = base_url.rstrip("/") + "/mcp"
        self.token = token
        self.timeout = timeout
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._next_id = 0

    def _headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "User-Agent": USER_AGENT,
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    def _post(self, payload: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.endpoint, data=json.dumps(payload).encode(), headers=self._headers(), method="POST"
        )
        try:
            # Scheme checked in __init__ (http/https only).
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                session = response.headers.get("Mcp-Session-Id")
                if session:
                    self.session_id = session
                return response.status, parse_body(response.headers.get("Content-Type", ""), response.read())
        except urllib.error.HTTPError as e:
            detail = e.read()[:500].decode("utf-8", errors="replace")
            raise SmokeError(f"{payload.get('method')}: HTTP {e.code}: {detail}") from e
        except (urllib.error.URLError, TimeoutError) as e:
            raise SmokeError(f"{payload.get('method')}: {e}") from e

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        _, messages = self._post({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        for message in messages:
            if message.get("id") == request_id:
                if "error" in message:
                    raise SmokeError(f"{method}: JSON-RPC error {message['error']}")
                result = message.get("result")
                if not isinstance(result, dict):
                    raise SmokeError(f"{method}: result is not an object: {result!r}")
                return result
        raise SmokeError(f"{method}: no response with id {request_id} in {messages!r}")

    def notify(self, method: str) -> None:
        status, _ = self._post({"jsonrpc": "2.0", "method": method})
        if status not in (200, 202, 204):
            raise SmokeError(f"{method}: unexpected HTTP {status}")


def _require_http(url: str) -> None:
    if not url.startswith(("https://", "http://")):
        raise SmokeError(f"only http(s) URLs are allowed: {url!r}")


def fetch_image(url: str, timeout: float) -> tuple[str, int]:
    _require_http(url)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310 - http(s) only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
            return response.headers.get("Content-Type", ""), len(response.read())
    except (urllib.error.URLError, TimeoutError) as e:
        raise SmokeError(f"GET output URL: {e}") from e


def run(base_url: str, token: str | None, model: str, timeout: float, log=print) -> None:
    client = McpClient(base_url, token, timeout)

    init = client.request(
        "initialize",
        {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "imagegen-mcp-smoke", "version": "1"},
        },
    )
    server = init.get("serverInfo", {})
    client.protocol_version = str(init.get("protocolVersion") or PROTOCOL_VERSION)
    log(f"ok initialize: {server.get('name')} {server.get('version')} protocol {client.protocol_version}")
    client.notify("notifications/initialized")

    tools = client.request("tools/list", {}).get("tools", [])
    names = {tool.get("name") for tool in tools}
    if "generate_image" not in names:
        raise SmokeError(f"tools/list: generate_image missing (got {sorted(n for n in names if n)})")
    log(f"ok tools/list: {len(tools)} tools")

    if not model:
        log("skip tools/call: no smoke model configured")
        return

    result = client.request(
        "tools/call",
        {"name": "generate_image", "arguments": {"prompt": "smoke test: a red square", "model": model}},
    )
    if result.get("isError"):
        raise SmokeError(f"generate_image returned an error: {json.dumps(result)[:500]}")
    links = [c for c in result.get("content", []) if c.get("type") == "resource_link" and c.get("uri")]
    if not links:
        raise SmokeError(f"generate_image returned no resource_link: {json.dumps(result)[:500]}")
    log(f"ok tools/call generate_image ({model}): {len(links)} image(s)")

    uri = str(links[0]["uri"])
    if uri.startswith(("https://", "http://")):
        content_type, size = fetch_image(uri, timeout)
        if not content_type.startswith("image/") or size == 0:
            raise SmokeError(f"output URL answered {content_type!r} with {size} bytes")
        log(f"ok GET output: {content_type}, {size} bytes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="base URL of the revision (tagged URL)")
    parser.add_argument("--service-json", help="file with `gcloud run services describe --format=json` output")
    parser.add_argument("--tag", help="traffic tag whose URL to test (with --service-json)")
    parser.add_argument(
        "--model",
        default=os.environ.get("SMOKE_MODEL", "local/placeholder"),
        help="model for the generate_image call; empty string skips it",
    )
    parser.add_argument("--token-env", default="SMOKE_ID_TOKEN", help="environment variable holding the ID token")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP call")
    parser.add_argument("--retries", type=int, default=3, help="attempts before giving up (cold starts)")
    args = parser.parse_args(argv)

    try:
        if args.url:
            base_url = args.url
        elif args.service_json and args.tag:
            with open(args.service_json, encoding="utf-8") as f:
                base_url = tagged_url(json.load(f), args.tag)
        else:
            parser.error("give --url, or --service-json with --tag")
        token = os.environ.get(args.token_env) or None
        print(f"smoke test of {base_url}")
        for attempt in range(1, max(1, args.retries) + 1):
            try:
                run(base_url, token, args.model, args.timeout)
                break
            except SmokeError as e:
                if attempt >= args.retries:
                    raise
                print(f"attempt {attempt} failed ({e}); retrying", file=sys.stderr)
                time.sleep(min(2**attempt, 10))
    except SmokeError as e:
        print(f"SMOKE TEST FAILED: {e}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
