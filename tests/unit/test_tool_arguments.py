"""Tool arguments as an agent meets them: schema true to the catalog, readable errors, bounds, protocol errors."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import jsonschema
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from imagegen_mcp.access.caller import Caller
from imagegen_mcp.catalog import load_catalog
from imagegen_mcp.deps import build_deps
from imagegen_mcp.server import build_server

pytestmark = pytest.mark.anyio
IMAGE_TOOLS = ("generate_image", "edit_image")


@pytest.fixture
def server(make_settings):  # type: ignore[no-untyped-def]
    return build_server(build_deps(make_settings()), in_process_caller=Caller(id="arguments-test", kind="none"))


async def _tools(server: Any) -> dict[str, Any]:
    async with Client(server) as client:
        return {t.name: t for t in (await client.list_tools()).tools}


def _enum(schema: dict[str, Any]) -> set[str]:
    options = schema.get("anyOf", [schema])
    return {value for option in options for value in option.get("enum", [])}


def _catalog_values(field: str) -> set[str]:
    return {value for spec in load_catalog() for value in getattr(spec.capabilities, field)}


async def test_schema_accepts_every_value_some_catalog_model_supports(server) -> None:  # type: ignore[no-untyped-def]
    tools = await _tools(server)
    for name in IMAGE_TOOLS:
        props = tools[name].input_schema["properties"]
        assert _enum(props["aspect_ratio"]) == _catalog_values("aspect_ratios"), name
        assert _enum(props["image_size"]) == _catalog_values("image_sizes"), name
        assert _enum(props["quality"]) == _catalog_values("qualities"), name
        assert _enum(props["output_format"]) == _catalog_values("output_formats"), name
        assert props["n"]["maximum"] == max(spec.capabilities.max_n for spec in load_catalog())
    assert {"1:4", "4:1", "1:8", "8:1"} <= _catalog_values("aspect_ratios") and "512" in _catalog_values("image_sizes")


@pytest.mark.parametrize("args", [{"aspect_ratio": "1:8"}, {"aspect_ratio": "4:1"}, {"image_size": "512"}])
async def test_catalog_values_reach_the_per_model_capability_check(server, args: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "x", "model": "local/placeholder", **args})
    error = result.structured_content["error"]
    assert error["code"] == "unsupported", error  # the placeholder lacks them; the schema does not refuse them
    assert "local/placeholder" in error["message"] and "supported" in error["message"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"prompt": "x", "n": 99}, "n must be at most 4 (got 99)"),
        ({"prompt": "x", "n": 0}, "n must be at least 1 (got 0)"),
        ({"prompt": "x", "aspect_ratio": "7:3"}, "aspect_ratio must be one of"),
        ({}, "prompt is required"),
        ({"prompt": "x", "seed": "soon"}, "seed"),
    ],
)
async def test_validation_errors_read_like_capability_errors(server, args: dict[str, Any], expected: str) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        result = await client.call_tool("generate_image", args)
    error = result.structured_content["error"]
    assert error["code"] == "invalid_argument"
    assert expected in error["message"], error["message"]
    for noise in ("type=", "input_value", "pydantic", "validation error", "For further information"):
        assert noise not in result.content[0].text


async def test_unknown_arguments_are_refused_naming_the_accepted_ones(server) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        generate = await client.call_tool("generate_image", {"prompt": "x", "style": "cartoon"})
        listing = await client.call_tool("list_models", {"verbose": True})
    error = generate.structured_content["error"]
    assert generate.is_error and error["code"] == "invalid_argument"
    assert "'style'" in error["message"] and "aspect_ratio" in error["message"] and "prompt" in error["message"]
    assert "aspect_ratio" in error["details"]["accepted_arguments"]
    assert listing.is_error and listing.structured_content["error"]["code"] == "invalid_argument"


async def test_arguments_sent_as_json_strings_are_still_accepted(server) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        first = await client.call_tool("generate_image", {"prompt": "base"})
        item_id = first.structured_content["images"][0]["id"]
        edited = await client.call_tool("edit_image", {"prompt": "again", "images": json.dumps([item_id])})
    assert not edited.is_error, edited.structured_content


async def test_every_error_result_validates_against_its_tools_output_schema(server) -> None:  # type: ignore[no-untyped-def]
    tools = await _tools(server)
    failing = {
        "generate_image": {"prompt": "x", "n": 9},
        "edit_image": {"prompt": "x", "images": ["not-an-id"]},
        "list_models": {"unexpected": 1},
        "get_job": {"job_id": "no-such-job", "wait_seconds": 0},
        "cancel_job": {"job_id": "no-such-job"},
        "get_usage": {"unexpected": 1},
        "create_upload": {"mime_type": "image/gif", "size_bytes": 10},
    }
    assert set(failing) == set(tools)
    async with Client(server) as client:
        for name, args in failing.items():
            result = await client.call_tool(name, args)
            assert result.is_error, name
            jsonschema.validate(result.structured_content, tools[name].output_schema)


async def test_unknown_tool_and_resource_are_jsonrpc_errors(server) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        with pytest.raises(MCPError) as tool:
            await client.call_tool("no_such_tool", {})
        with pytest.raises(MCPError) as resource:
            await client.read_resource("imagegen://nothing-here")
    assert tool.value.error.code == -32602 and "no_such_tool" in tool.value.error.message
    assert resource.value.error.code == -32002


async def test_every_string_argument_is_bounded(server) -> None:  # type: ignore[no-untyped-def]
    def strings(schema: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
        found = [(path, schema)] if schema.get("type") == "string" else []
        for option in schema.get("anyOf", []):
            found += strings(option, path)
        if "items" in schema:
            found += strings(schema["items"], f"{path}[]")
        return found

    tools = await _tools(server)
    for tool in tools.values():
        for name, prop in tool.input_schema.get("properties", {}).items():
            for where, schema in strings(prop, f"{tool.name}.{name}"):
                assert "maxLength" in schema or "enum" in schema, f"{where} has no length limit"


async def test_a_huge_model_id_is_refused_without_being_echoed(server, caplog) -> None:  # type: ignore[no-untyped-def]
    huge = "m" * (5 * 1024 * 1024)
    with caplog.at_level(logging.DEBUG):
        async with Client(server) as client:
            result = await client.call_tool("generate_image", {"prompt": "x", "model": huge})
    error = result.structured_content["error"]
    assert error["code"] == "invalid_argument" and "model" in error["message"]
    assert len(result.content[0].text) < 2000
    assert max((len(r.getMessage()) + len(str(getattr(r, "fields", ""))) for r in caplog.records), default=0) < 5000


async def test_a_call_without_a_caller_is_refused(make_settings) -> None:  # type: ignore[no-untyped-def]
    deps = build_deps(make_settings())
    with pytest.raises(TypeError):
        build_server(deps)  # type: ignore[call-arg]  # the caller is a required keyword: no silent default
    async with Client(build_server(deps, in_process_caller=None)) as client:
        result = await client.call_tool("generate_image", {"prompt": "x"})
    assert result.is_error and result.structured_content["error"]["code"] == "unauthenticated"


async def test_a_failed_secret_prefetch_is_logged_with_its_trace(make_settings, caplog) -> None:  # type: ignore[no-untyped-def]
    from imagegen_mcp.app import _startup

    class FailingSecrets:
        async def warm(self) -> None:
            raise RuntimeError("secret backend down")

    deps = dataclasses.replace(build_deps(make_settings()), secrets=FailingSecrets())  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        await _startup(deps)
    [record] = [r for r in caplog.records if "prefetch secrets" in r.getMessage()]
    assert record.exc_info is not None and "secret backend down" in str(record.exc_info[1])
