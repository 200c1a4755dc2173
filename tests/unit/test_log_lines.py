"""One log record is one line for every line-based reader, whatever characters a caller put in it."""

from __future__ import annotations

import json
import logging

import pytest

from imagegen_mcp.logs import JsonFormatter

BREAKERS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("breaker", BREAKERS)
def test_line_breaking_characters_are_escaped(breaker: str) -> None:
    text = f'prompt{breaker}{{"severity": "CRITICAL"}}'
    record = logging.LogRecord("imagegen", logging.INFO, __file__, 1, "model %s", (text,), None)
    record.fields = {"prompt": text}
    line = JsonFormatter().format(record)
    assert line.splitlines() == [line]
    entry = json.loads(line)
    assert entry["message"] == f"model {text}" and entry["prompt"] == text
    assert "é" in JsonFormatter().format(logging.LogRecord("x", logging.INFO, __file__, 1, "é", (), None))
