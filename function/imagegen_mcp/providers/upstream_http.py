"""Shared plumbing of the third-party HTTP adapters: one upstream attempt, status → ImageGenError, image payloads."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .. import base64_codec
from ..errors import ErrorCode, ImageGenError
from ..images import inputs
from ..images.budget import MIB
from ..images.fetcher import sniff_image_type
from .base import Availability, ProducedImage
from .json_blobs import Base64Blob, BlobJsonParser

if TYPE_CHECKING:
    import httpx2

    from ..deadline import Deadline
    from .base import ProviderContext

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_UPSTREAM_MESSAGE = 300  # characters of an upstream error message we pass on to the caller
ANSWER_MAX_IMAGES = 4  # the most images one answer holds (n ≤ 4): bounds the streamed body with the image cap


@dataclass(frozen=True)
class UpstreamFailure:
    """What a vendor's error body says, as the adapter's parser understood it."""

    message: str | None = None
    code: str | None = None
    blocked_reason: str | None = None  # set when the vendor says its content policy refused the request


ParseFailure = Callable[[int, Any], UpstreamFailure]


def trim(text: str, secret: str | None = None, limit: int = MAX_UPSTREAM_MESSAGE) -> str:
    """One line of upstream text, shortened, with the key cut out should the vendor have echoed it."""
    if secret:
        text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_retry_after(headers: httpx2.Headers | dict[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from `Retry-After` (delta-seconds or HTTP-date) or `retry-after-ms`; None if absent/garbled."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = (headers.get("retry-after") or "").strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def status_error(
    vendor: str, status: int, failure: UpstreamFailure, retry_after: float | None, *, secret: str | None
) -> ImageGenError:
    """Map an upstream HTTP status (and what its body said) to our public error codes."""
    details: dict[str, Any] = {"upstream": vendor, "upstream_status": status}
    if failure.code:
        details["upstream_code"] = failure.code
    said = trim(failure.message, secret) if failure.message else None
    if failure.blocked_reason is not None:
        reason = trim(failure.blocked_reason, secret) or "content policy"
        details["reason"] = reason
        return ImageGenError(ErrorCode.CONTENT_BLOCKED, f"{vendor} refused the request: {reason}", details=details)
    if status in (401, 403):
        # Our key, not the caller's fault; never echo the upstream text (it may quote part of the key).
        return ImageGenError(
            ErrorCode.MISCONFIGURED,
            f"the {vendor} key configured for this deployment was rejected (HTTP {status}); an operator must fix it",
            details=details,
        )
    if status == 402:
        return ImageGenError(
            ErrorCode.MISCONFIGURED,
            f"the {vendor} account of this deployment cannot pay for this request (HTTP 402)",
            details=details,
        )
    if status == 404:
        return ImageGenError(
            ErrorCode.MISCONFIGURED,
            f"{vendor} does not know the requested model or endpoint (HTTP 404)" + (f": {said}" if said else ""),
            details=details,
        )
    if status == 429:
        return ImageGenError(
            ErrorCode.RATE_LIMITED,
            f"{vendor} is rate limiting this deployment" + (f": {said}" if said else ""),
            details=details,
            retry_after_seconds=retry_after,
        )
    if status in (408, 504, 524):
        return ImageGenError(ErrorCode.UPSTREAM_TIMEOUT, f"{vendor} timed out (HTTP {status})", details=details)
    if status >= 500:
        return ImageGenError(
            ErrorCode.UPSTREAM_ERROR,
            f"{vendor} failed (HTTP {status})" + (f": {said}" if said else ""),
            details=details,
            retry_after_seconds=retry_after,
        )
    if status in (400, 409, 413, 415, 422):
        return ImageGenError(
            ErrorCode.INVALID_ARGUMENT,
            f"{vendor} rejected the request" + (f": {said}" if said else f" (HTTP {status})"),
            details=details,
        )
    return ImageGenError(
        ErrorCode.UPSTREAM_ERROR,
        f"unexpected answer from {vendor} (HTTP {status})",
        retryable=False,
        details=details,
    )


def transport_error(vendor: str, exc: Exception) -> ImageGenError:
    """A connection-level failure (timeout, reset, refused) as a retryable error."""
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return ImageGenError(
            ErrorCode.UPSTREAM_TIMEOUT, f"{vendor} did not answer in time", details={"upstream": vendor}
        )
    return ImageGenError(
        ErrorCode.UPSTREAM_ERROR,
        f"could not talk to {vendor} ({type(exc).__name__})",
        details={"upstream": vendor},
    )


def _body(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return response.text


def _request_options(
    ctx: ProviderContext, deadline: Deadline, secret: str, headers: dict[str, str] | None, timeout_cap: float | None
) -> dict[str, Any]:
    import httpx2

    cap = ctx.settings.upstream_timeout_seconds if timeout_cap is None else timeout_cap
    seconds = deadline.timeout(cap=cap)
    return {
        "headers": {"Authorization": f"Bearer {secret}", **(headers or {})},
        "timeout": httpx2.Timeout(seconds, connect=min(seconds, 10.0)),
    }


def _failed(vendor: str, exc: Exception) -> ImageGenError:
    log.warning("upstream transport failure", extra={"fields": {"upstream": vendor, "error": type(exc).__name__}})
    return transport_error(vendor, exc)


def _refused(vendor: str, response: httpx2.Response, parse_failure: ParseFailure, secret: str) -> ImageGenError:
    """The error a non-2xx answer (already read) stands for."""
    failure = parse_failure(response.status_code, _body(response))
    err = status_error(vendor, response.status_code, failure, parse_retry_after(response.headers), secret=secret)
    log.warning(
        "upstream error",
        extra={"fields": {"upstream": vendor, "status": response.status_code, "code": err.code.value}},
    )
    return err


async def request_json(
    ctx: ProviderContext,
    vendor: str,
    method: str,
    url: str,
    *,
    deadline: Deadline,
    secret: str,
    parse_failure: ParseFailure,
    headers: dict[str, str] | None = None,
    timeout_cap: float | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """One upstream request through the shared client, bounded by the deadline; non-2xx becomes ImageGenError.

    A 2xx answer must be a JSON object; it is parsed while it streams in: long base64 strings (the images) arrive
    decoded, as `Base64Blob`s, and the body is never held whole.
    """
    import httpx2

    client = ctx.http.upstream()
    request = client.build_request(
        method, url, **_request_options(ctx, deadline, secret, headers, timeout_cap), **kwargs
    )
    image_cap = ctx.settings.upstream_max_image_bytes
    parser = BlobJsonParser(
        vendor, max_body_bytes=ANSWER_MAX_IMAGES * (image_cap * 4 // 3 + 4) + MIB, max_blob_bytes=image_cap
    )
    try:
        response = await client.send(request, stream=True)
        try:
            if not response.is_success:
                await response.aread()
                raise _refused(vendor, response, parse_failure, secret)
            async for chunk in response.aiter_bytes():
                parser.feed(chunk)
        finally:
            await response.aclose()
    except httpx2.HTTPError as exc:
        raise _failed(vendor, exc) from exc
    body = parser.result()
    if not isinstance(body, dict):
        raise ImageGenError(ErrorCode.UPSTREAM_ERROR, f"{vendor} answered with an unexpected JSON shape")
    return body


def error_fields(body: Any) -> tuple[str | None, str | None, dict[str, Any]]:
    """`(message, code, metadata)` of the common `{"error": {"message", "code", ...}}` envelope (or `{"detail"}`)."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            code = err.get("code")
            meta = err.get("metadata")
            return (
                str(err.get("message")) if err.get("message") is not None else None,
                str(code) if code is not None else None,
                meta if isinstance(meta, dict) else {},
            )
        if isinstance(err, str):
            return err, None, {}
        for key in ("detail", "message", "title"):
            if isinstance(body.get(key), str):
                return body[key], None, {}
    if isinstance(body, str) and body.strip():
        return body, None, {}
    return None, None, {}


def decode_base64(vendor: str, data: str | Base64Blob) -> bytes:
    """Strict base64 (whitespace tolerated), or a blob decoded as it streamed in; garbage is the upstream's fault."""
    if isinstance(data, Base64Blob):
        if not data.prefix:
            return data.data
        raise ImageGenError(ErrorCode.UPSTREAM_ERROR, f"{vendor} returned an image that is not valid base64")
    try:
        return inputs.decode_base64(data, lenient=False)
    except ImageGenError as exc:
        raise ImageGenError(ErrorCode.UPSTREAM_ERROR, f"{vendor} returned an image that is not valid base64") from exc


_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*;base64,(?P<data>.*)$", re.DOTALL)


def data_url(image_bytes: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{base64_codec.encode_text(image_bytes)}"


def produced(vendor: str, data: bytes) -> ProducedImage:
    """Bytes that really are an image (type from magic bytes), or `upstream_error`."""
    mime = sniff_image_type(data)
    if mime is None:
        raise ImageGenError(ErrorCode.UPSTREAM_ERROR, f"{vendor} returned data that is not an image")
    return ProducedImage(data=data, mime_type=mime)


async def image_from_reference(
    ctx: ProviderContext, vendor: str, ref: str | Base64Blob, deadline: Deadline | None = None
) -> ProducedImage:
    """An upstream image given as a base64 data URL or as an http(s) URL (downloaded via the guarded fetcher)."""
    if isinstance(ref, Base64Blob):
        if ref.prefix and _DATA_URL.match(ref.prefix):
            return produced(vendor, ref.data)
        raise ImageGenError(ErrorCode.UPSTREAM_ERROR, f"{vendor} returned an image reference we cannot read")
    match = _DATA_URL.match(ref)
    if match:
        return produced(vendor, decode_base64(vendor, match.group("data")))
    if ref.startswith(("https://", "http://")):
        fetched = await ctx.fetcher.fetch(
            ref,
            max_bytes=ctx.settings.upstream_max_image_bytes,
            require_image=True,
            within_seconds=deadline.timeout() if deadline is not None else None,
        )
        return produced(vendor, fetched.data)
    raise ImageGenError(ErrorCode.UPSTREAM_ERROR, f"{vendor} returned an image reference we cannot read")


async def gather_all(factories: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the calls concurrently; the first failure cancels the rest and is raised as itself."""
    tasks = [asyncio.ensure_future(factory()) for factory in factories]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def no_image_error(vendor: str, text: str | None = None, *, secret: str | None = None) -> ImageGenError:
    """The upstream answered successfully but returned no image (its text, if any, says why)."""
    message = f"{vendor} returned no image"
    if text:
        message += f"; it said: {trim(text, secret)}"
    # Not retried: the call succeeded and was billed; the same prompt would most likely fail the same way.
    return ImageGenError(ErrorCode.UPSTREAM_ERROR, message, retryable=False, details={"upstream": vendor})


class KeyedProvider:
    """Base of the adapters whose only configuration is an API key from the SecretSource."""

    name: str = ""
    secret_name: str = ""  # logical name in secrets.base (OPENAI, OPENROUTER, REPLICATE)
    key_label: str = ""  # e.g. "OpenAI API key", for operator-facing messages
    base_url_setting: str = ""  # the Settings field holding the API's base URL, e.g. "openai_base_url"

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        self._base = str(getattr(ctx.settings, self.base_url_setting)).rstrip("/")

    def _missing(self) -> str:
        return f"no {self.key_label} configured (set {self._ctx.secrets.describe(self.secret_name)})"

    async def availability(self) -> Availability:
        if await self._ctx.secrets.get(self.secret_name):
            return Availability(True)
        return Availability(False, self._missing())

    async def _key(self) -> str:
        key = await self._ctx.secrets.get(self.secret_name)
        if not key:
            raise ImageGenError(ErrorCode.MISCONFIGURED, self._missing())
        return key

    async def aclose(self) -> None:
        return None
