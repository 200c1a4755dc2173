"""Unit tests of the shared third-party HTTP error mapping (status table, Retry-After, redaction, decoding)."""

from __future__ import annotations

import email.utils

import pytest

from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.providers import upstream_http
from imagegen_mcp.providers.upstream_http import UpstreamFailure, parse_retry_after, status_error, trim

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds_or_http_date(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, ErrorCode.INVALID_ARGUMENT, False),
        (401, ErrorCode.MISCONFIGURED, False),
        (402, ErrorCode.MISCONFIGURED, False),
        (403, ErrorCode.MISCONFIGURED, False),
        (404, ErrorCode.MISCONFIGURED, False),
        (408, ErrorCode.UPSTREAM_TIMEOUT, True),
        (422, ErrorCode.INVALID_ARGUMENT, False),
        (429, ErrorCode.RATE_LIMITED, True),
        (500, ErrorCode.UPSTREAM_ERROR, True),
        (503, ErrorCode.UPSTREAM_ERROR, True),
        (504, ErrorCode.UPSTREAM_TIMEOUT, True),
        (418, ErrorCode.UPSTREAM_ERROR, False),
    ],
)
def test_status_table(status: int, code: ErrorCode, retryable: bool) -> None:
    err = status_error("Acme", status, UpstreamFailure(message="said something"), None, secret="k")
    assert err.code is code
    assert err.retryable is retryable
    assert err.details["upstream_status"] == status


def test_content_policy_wins_over_status_and_carries_the_reason() -> None:
    failure = UpstreamFailure(message="rejected", code="moderation_blocked", blocked_reason="violence")
    err = status_error("Acme", 403, failure, None, secret="k")
    assert err.code is ErrorCode.CONTENT_BLOCKED
    assert err.details["reason"] == "violence"
    assert not err.retryable


def test_auth_failure_never_echoes_upstream_text() -> None:
    failure = UpstreamFailure(message="Incorrect API key provided: sk-abc***xyz")
    err = status_error("Acme", 401, failure, None, secret="sk-abcdefxyz")
    assert "sk-abc" not in err.message
    assert err.message == (
        "the Acme key configured for this deployment was rejected (HTTP 401); an operator must fix it"
    )


def test_rate_limit_carries_retry_after() -> None:
    err = status_error("Acme", 429, UpstreamFailure(), 12.0, secret="k")
    assert err.retry_after_seconds == 12.0
    assert err.to_dict()["retry_after_seconds"] == 12.0


def test_trim_redacts_the_key_and_shortens() -> None:
    text = trim("bad key sk-SECRET in\nrequest " + "x" * 500, "sk-SECRET")
    assert "sk-SECRET" not in text and "[redacted]" in text
    assert "\n" not in text and len(text) == upstream_http.MAX_UPSTREAM_MESSAGE


def test_error_fields_reads_the_common_envelopes() -> None:
    assert upstream_http.error_fields({"error": {"message": "m", "code": 403, "metadata": {"reasons": ["x"]}}}) == (
        "m",
        "403",
        {"reasons": ["x"]},
    )
    assert upstream_http.error_fields({"detail": "d"}) == ("d", None, {})
    assert upstream_http.error_fields("plain text") == ("plain text", None, {})
    assert upstream_http.error_fields(None) == (None, None, {})


def test_base64_and_image_checks() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
    assert upstream_http.decode_base64("X", "iVBORw0KGgoAAAAAAAAAAA==\n") == png
    with pytest.raises(ImageGenError) as bad:
        upstream_http.decode_base64("X", "not base64!")
    assert bad.value.code is ErrorCode.UPSTREAM_ERROR
    assert upstream_http.produced("X", png).mime_type == "image/png"
    with pytest.raises(ImageGenError):
        upstream_http.produced("X", b"GIF? no")
