"""The one error type of the service, with stable, public error codes."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Public error codes: a contract with clients, never renamed."""

    INVALID_ARGUMENT = "invalid_argument"
    UNSUPPORTED = "unsupported"
    NOT_FOUND = "not_found"
    CONTENT_BLOCKED = "content_blocked"
    RATE_LIMITED = "rate_limited"
    UPSTREAM_ERROR = "upstream_error"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    STORAGE_ERROR = "storage_error"
    MISCONFIGURED = "misconfigured"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    QUOTA_EXCEEDED = "quota_exceeded"
    INTERNAL = "internal"


# Codes a client may retry as-is (possibly after `retry_after_seconds`).
_RETRYABLE = {ErrorCode.RATE_LIMITED, ErrorCode.UPSTREAM_ERROR, ErrorCode.UPSTREAM_TIMEOUT, ErrorCode.STORAGE_ERROR}


class ImageGenError(Exception):
    """A failure with a stable `code`, a message safe to show the caller, and optional details."""

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        retryable: bool | None = None,
        details: dict[str, Any] | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.retryable = self.code in _RETRYABLE if retryable is None else retryable
        self.details = dict(details or {})
        self.retry_after_seconds = retry_after_seconds

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape clients see under `structuredContent.error`."""
        body: dict[str, Any] = {"code": self.code.value, "message": self.message, "retryable": self.retryable}
        if self.retry_after_seconds is not None:
            body["retry_after_seconds"] = round(self.retry_after_seconds, 3)
        if self.details:
            body["details"] = self.details
        return body

    def __repr__(self) -> str:
        return f"ImageGenError({self.code.value!r}, {self.message!r})"


def invalid(message: str, **details: Any) -> ImageGenError:
    """Shorthand for an `invalid_argument` error."""
    return ImageGenError(ErrorCode.INVALID_ARGUMENT, message, details=details or None)
