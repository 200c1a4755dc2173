"""Structured JSON logging with Cloud Logging field names and per-request context fields."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

_request_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "imagegen_log_fields", default=None
)

# Field names that must never reach a log line, whatever a caller passes in `extra`.
_FORBIDDEN_KEYS = {"authorization", "api_key", "key", "token", "password", "secret", "image", "data", "b64_json"}


def bind_request(**fields: Any) -> contextvars.Token[dict[str, Any] | None]:
    """Start a request's log context (request id, trace, ...); returns a token for `reset_request`."""
    return _request_fields.set({k: v for k, v in fields.items() if v is not None})


def reset_request(token: contextvars.Token[dict[str, Any] | None]) -> None:
    _request_fields.reset(token)


def log_fields(**fields: Any) -> None:
    """Add fields (model, provider, caller, ...) to the current request's log context."""
    current = _request_fields.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def current_fields() -> dict[str, Any]:
    return dict(_request_fields.get() or {})


def trace_field(header: str | None, project: str | None) -> dict[str, str]:
    """`logging.googleapis.com/trace` (and spanId) from an `X-Cloud-Trace-Context: TRACE/SPAN;o=1` header."""
    if not header:
        return {}
    trace_id, _, rest = header.partition("/")
    if not trace_id or not all(c in "0123456789abcdefABCDEF" for c in trace_id) or len(trace_id) > 64:
        return {}
    out = {"logging.googleapis.com/trace": f"projects/{project}/traces/{trace_id}" if project else trace_id}
    span = rest.split(";", 1)[0]
    if span.isdigit():
        out["logging.googleapis.com/spanId"] = span
    return out


# json.dumps escapes C0 controls but writes NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR raw; line-based readers
# (str.splitlines, many log shippers) split on them, so one record would become several lines.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: severity, message, time, logger, request context, extra `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        entry.update(current_fields())
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update({k: v for k, v in extra.items() if k.lower() not in _FORBIDDEN_KEYS})
        if record.exc_info:
            entry["stack_trace"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False).translate(_LINE_BREAKS)


def configure_logging(level: str = "INFO") -> None:
    """Route the root logger to stdout as JSON (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_imagegen", False) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler._imagegen = True  # type: ignore[attr-defined]
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "urllib3", "google", "mcp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
