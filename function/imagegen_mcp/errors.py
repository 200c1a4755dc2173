"""The one error type of the service, with stable, public error codes, and the policy for handling failures.

Policy (every module follows it):
1. An expected failure is an `ImageGenError` with a public code, raised `from` its cause at the boundary where
   it is understood (adapters translate vendor exceptions; parsers translate their own).
2. Handlers catch `Exception`, never `BaseException`: cancellation, timeouts of an enclosing scope and exits
   always propagate (clean-up that must run on them uses `try/finally` or re-raises).
3. An `ImageGenError` is an answer: it goes back to the caller as it is. Any other exception is a defect: the
   boundary that must keep serving (a tool call, an HTTP request, a background loop, a probe of a provider's
   availability) logs it with its trace (`exc_info`) and answers a masked `internal` error or "unavailable".
4. Nothing turns a defect into a normal answer silently, and no handler drops the exception info it logs.
5. Caller-supplied text is never echoed whole into errors or logs: `clip` it.
"""

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


ECHO_CHARS = 64


def clip(value: object, limit: int = ECHO_CHARS) -> str:
    """`value` as text cut to `limit` characters (marked with …), for echoing caller input into errors and logs."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


def invalid(message: str, **details: Any) -> ImageGenError:
    """Shorthand for an `invalid_argument` error."""
    return ImageGenError(ErrorCode.INVALID_ARGUMENT, message, details=details or None)
