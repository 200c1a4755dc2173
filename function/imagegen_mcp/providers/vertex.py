"""Gemini image models through google-genai: Vertex AI (ADC) and the Gemini Developer API (API key), one adapter.

Longer than our ~400-line norm on purpose: both providers share one request/response/error mapping (about 250
lines of _GeminiImageAdapter) and differ only in credentials; splitting them would put that mapping in a third
module that neither could be read without.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ImageGenError
from ..retry import call_with_retries
from ..secrets import base as secret_names
from .base import Availability, ImageRequest, ProducedImage, ProviderContext, ProviderResult

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.genai import Client, errors, types

log = logging.getLogger(__name__)

# Finish reasons (candidate) and block reasons (prompt) that mean Google's safety or policy filters refused.
_BLOCKED_FINISH = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
}
_MAX_MESSAGE = 500
_ADC_FAILURE_TTL = 60.0  # a missing ADC is re-checked after this long (metadata server hiccups at boot)
_RETRY_DELAY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _enum_name(value: object) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _short(text: str | None, limit: int = _MAX_MESSAGE) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(err: errors.APIError) -> float | None:
    """Seconds Google asked us to wait: the Retry-After header, else a google.rpc.RetryInfo detail."""
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    for detail in _error_details(err):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _RETRY_DELAY_RE.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _error_details(err: errors.APIError) -> list[dict[str, Any]]:
    """The `error.details` list of Google's error body (`err.details` is the whole JSON body)."""
    body = err.details if isinstance(err.details, dict) else {}
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _error_reasons(err: errors.APIError) -> set[str]:
    return {str(d.get("reason")) for d in _error_details(err) if d.get("reason")}


class _GeminiImageAdapter:
    """Shared generate_content adapter; subclasses say how the client is built and who to blame on 401/403/404."""

    name: str

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        self._settings = ctx.settings
        self._client: Client | None = None
        self._client_lock = asyncio.Lock()

    # --- per-backend hooks ------------------------------------------------------------------------------------------
    async def _get_client(self) -> Client:
        raise NotImplementedError

    def _auth_problem(self, status: str, message: str) -> str:
        raise NotImplementedError

    def _model_missing(self, model: str) -> str:
        raise NotImplementedError

    def _scrub(self, text: str) -> str:
        return text

    # --- the call ---------------------------------------------------------------------------------------------------
    async def generate(self, request: ImageRequest) -> ProviderResult:
        client = await self._get_client()
        from google.genai import types

        contents = [
            types.Content(
                role="user",
                parts=[
                    types.Part.from_text(text=request.prompt),
                    *(types.Part.from_bytes(data=img.data, mime_type=img.mime_type) for img in request.images),
                ],
            )
        ]
        n = request.options.n
        await request.report(f"asking {request.upstream_id} for {n} image{'s' if n > 1 else ''}")
        # Gemini image models return one image per call: n calls run in parallel; the first failure cancels the rest.
        tasks = [asyncio.create_task(self._one(client, request, contents, index)) for index in range(n)]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        images = [image for result in results for image in result.images][:n]
        texts = [result.text for result in results if result.text]
        return ProviderResult(
            images=images,
            text="\n\n".join(texts) or None,
            details={
                "provider": self.name,
                "upstream_model": request.upstream_id,
                "finish_reasons": [result.details.get("finish_reason") for result in results],
                "model_version": results[0].details.get("model_version") if results else None,
            },
        )

    async def _one(
        self, client: Client, request: ImageRequest, contents: list[types.Content], index: int
    ) -> ProviderResult:
        seed = request.options.seed
        # The same seed on parallel calls would give n identical images; offset it per call instead.
        call_seed = None if seed is None else (seed + index) % 2**31

        async def attempt(number: int) -> ProviderResult:
            return await self._attempt(client, request, contents, call_seed, number)

        return await call_with_retries(
            attempt,
            deadline=request.deadline,
            max_attempts=self._settings.upstream_max_attempts,
            what=f"{self.name}:{request.upstream_id}",
        )

    def _config(self, request: ImageRequest, seed: int | None, timeout: float) -> types.GenerateContentConfig:
        from google.genai import types

        options = request.options
        image_config = None
        if options.aspect_ratio or options.image_size:
            image_config = types.ImageConfig(aspect_ratio=options.aspect_ratio, image_size=options.image_size)
        return types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=image_config,
            seed=seed,
            # Milliseconds; also sent to Google as X-Server-Timeout so it stops working when we stop waiting.
            http_options=types.HttpOptions(timeout=max(1, int(timeout * 1000))),
        )

    async def _attempt(
        self, client: Client, request: ImageRequest, contents: list[types.Content], seed: int | None, number: int
    ) -> ProviderResult:
        import httpx2
        from google.auth import exceptions as auth_exceptions
        from google.genai import errors

        timeout = request.deadline.timeout(cap=self._settings.upstream_timeout_seconds)
        config = self._config(request, seed, timeout)
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                response = await client.aio.models.generate_content(
                    model=request.upstream_id, contents=contents, config=config
                )
        except errors.APIError as e:
            raise self._map_api_error(e, request) from e
        except (TimeoutError, httpx2.TimeoutException) as e:
            raise ImageGenError(
                ErrorCode.UPSTREAM_TIMEOUT,
                f"{request.upstream_id} did not answer within {timeout:.0f}s ({self.name})",
                details={"provider": self.name, "model": request.upstream_id, "attempt": number},
            ) from e
        except (httpx2.TransportError, auth_exceptions.TransportError) as e:
            # Connection failures to the API or to the token endpoint: transient, retried.
            raise ImageGenError(
                ErrorCode.UPSTREAM_ERROR,
                f"could not reach the {self._api_name()} or Google's token endpoint: {type(e).__name__}",
                details={"provider": self.name, "attempt": number},
            ) from e
        except (auth_exceptions.DefaultCredentialsError, auth_exceptions.RefreshError) as e:
            raise ImageGenError(
                ErrorCode.MISCONFIGURED,
                f"cannot get Google credentials for Vertex AI: {_short(str(e), 200)}",
                details={"provider": self.name},
            ) from e
        log.info(
            "upstream call done",
            extra={
                "fields": {
                    "provider": self.name,
                    "model": request.upstream_id,
                    "attempt": number,
                    "duration_ms": round((time.monotonic() - started) * 1000),
                }
            },
        )
        return self._parse(response, request)

    def _api_name(self) -> str:
        return "Vertex AI API" if self.name == "vertex" else "Gemini API"

    # --- answers and errors -----------------------------------------------------------------------------------------
    def _parse(self, response: types.GenerateContentResponse, request: ImageRequest) -> ProviderResult:
        model = request.upstream_id
        feedback = response.prompt_feedback
        block_reason = _enum_name(feedback.block_reason) if feedback is not None else None
        if block_reason and block_reason != "BLOCKED_REASON_UNSPECIFIED":
            google_message = _short(feedback.block_reason_message) if feedback is not None else ""
            raise ImageGenError(
                ErrorCode.CONTENT_BLOCKED,
                f"{model} blocked the prompt ({block_reason})" + (f": {google_message}" if google_message else ""),
                retryable=False,
                details={"provider": self.name, "block_reason": block_reason, "google_message": google_message or None},
            )
        candidates = response.candidates or []
        if not candidates:
            raise ImageGenError(
                ErrorCode.UPSTREAM_ERROR,
                f"{model} returned no candidates and no image",
                details={"provider": self.name, "model": model},
            )
        candidate = candidates[0]
        finish = _enum_name(candidate.finish_reason)
        parts = candidate.content.parts if candidate.content is not None and candidate.content.parts else []
        images: list[ProducedImage] = []
        texts: list[str] = []
        for part in parts:
            if part.thought:  # interim "thinking" images and thought summaries are not results
                continue
            blob = part.inline_data
            if blob is not None and blob.data and (blob.mime_type or "").startswith("image/"):
                images.append(ProducedImage(data=blob.data, mime_type=blob.mime_type or "image/png"))
            elif part.text:
                texts.append(part.text)
        text = "\n".join(texts).strip() or None
        if finish in _BLOCKED_FINISH:
            google_message = _short(candidate.finish_message)
            raise ImageGenError(
                ErrorCode.CONTENT_BLOCKED,
                f"{model} blocked the output ({finish})" + (f": {google_message}" if google_message else ""),
                retryable=False,
                details={"provider": self.name, "finish_reason": finish, "google_message": google_message or None},
            )
        if not images:
            snippet = _short(text or candidate.finish_message, 300)
            raise ImageGenError(
                ErrorCode.UPSTREAM_ERROR,
                f"{model} finished ({finish or 'no finish reason'}) without returning an image"
                + (f"; it said: {snippet}" if snippet else ""),
                # Repeating the same prompt rarely changes this; the caller may rephrase and retry.
                retryable=False,
                details={"provider": self.name, "finish_reason": finish, "text": snippet or None},
            )
        return ProviderResult(
            images=images,
            text=text,
            details={"finish_reason": finish, "model_version": response.model_version},
        )

    def _map_api_error(self, err: errors.APIError, request: ImageRequest) -> ImageGenError:
        code = int(err.code or 0)
        status = str(err.status or "")
        message = self._scrub(_short(err.message or str(err)))
        details: dict[str, Any] = {"provider": self.name, "http_status": code, "google_status": status or None}
        reasons = _error_reasons(err)
        if code == 429 or status == "RESOURCE_EXHAUSTED":
            retry_after = _retry_after(err)
            return ImageGenError(
                ErrorCode.RATE_LIMITED,
                f"{self._api_name()} quota or rate limit reached for {request.upstream_id}: {message}",
                details=details,
                retry_after_seconds=retry_after,
            )
        if code in (401, 403) or status in ("UNAUTHENTICATED", "PERMISSION_DENIED") or "API_KEY_INVALID" in reasons:
            problem = self._auth_problem(status or str(code), message)
            return ImageGenError(ErrorCode.MISCONFIGURED, problem, details=details)
        if code == 404 or status == "NOT_FOUND":
            return ImageGenError(
                ErrorCode.MISCONFIGURED, f"{self._model_missing(request.upstream_id)}: {message}", details=details
            )
        if code == 400 and status == "FAILED_PRECONDITION":
            return ImageGenError(
                ErrorCode.MISCONFIGURED, f"the {self._api_name()} refused the call: {message}", details=details
            )
        if code == 400 or status == "INVALID_ARGUMENT":
            return ImageGenError(
                ErrorCode.INVALID_ARGUMENT, f"{request.upstream_id} rejected the request: {message}", details=details
            )
        if code == 504 or status == "DEADLINE_EXCEEDED":
            return ImageGenError(
                ErrorCode.UPSTREAM_TIMEOUT, f"{self._api_name()} timed out: {message}", details=details
            )
        if code >= 500 or code == 408:
            return ImageGenError(
                ErrorCode.UPSTREAM_ERROR, f"{self._api_name()} failed ({code} {status}): {message}", details=details
            )
        return ImageGenError(
            ErrorCode.UPSTREAM_ERROR,
            f"{self._api_name()} answered {code} {status}: {message}",
            retryable=False,
            details=details,
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _close_client(client)


class VertexProvider(_GeminiImageAdapter):
    """Gemini image models on Vertex AI with the runtime's Application Default Credentials."""

    name = "vertex"

    def __init__(self, ctx: ProviderContext, *, credentials: Credentials | None = None) -> None:
        super().__init__(ctx)
        self._credentials = credentials
        self._adc_error: str | None = None
        self._adc_checked_at: float | None = None
        self._adc_lock = asyncio.Lock()

    async def _ensure_credentials(self) -> str | None:
        """Find ADC once (off the event loop); returns why it cannot be found, else None. Failures expire."""
        if self._credentials is not None:
            return None
        async with self._adc_lock:
            if self._credentials is not None:
                return None
            if self._adc_checked_at is not None and time.monotonic() - self._adc_checked_at < _ADC_FAILURE_TTL:
                return self._adc_error
            try:
                self._credentials = await asyncio.to_thread(_load_adc)
                self._adc_error = None
            except Exception as e:  # google.auth raises several types; all mean "no usable ADC here"
                self._adc_error = f"no Application Default Credentials ({type(e).__name__}: {_short(str(e), 200)})"
                log.warning("Vertex AI unavailable: %s", self._adc_error)
            self._adc_checked_at = time.monotonic()
            return self._adc_error

    async def availability(self) -> Availability:
        if not self._settings.vertex_enabled:
            return Availability(False, "Vertex AI is disabled (IMAGEGEN_VERTEX_ENABLED=false)")
        if not self._settings.google_cloud_project:
            return Availability(False, "GOOGLE_CLOUD_PROJECT is not set")
        problem = await self._ensure_credentials()
        return Availability(problem is None, problem)

    async def _get_client(self) -> Client:
        if self._client is not None:
            return self._client
        availability = await self.availability()
        if not availability.available:
            raise ImageGenError(
                ErrorCode.MISCONFIGURED,
                f"Vertex AI is not usable here: {availability.reason}",
                details={"provider": "vertex"},
            )
        async with self._client_lock:
            if self._client is None:
                settings = self._settings
                # Importing google.genai and building its HTTP clients takes a while: keep it off the event loop.
                self._client = await asyncio.to_thread(
                    _make_client,
                    vertexai=True,
                    project=settings.google_cloud_project,
                    location=settings.google_cloud_location,
                    credentials=self._credentials,
                    base_url=settings.google_vertex_base_url,
                )
            return self._client

    def _auth_problem(self, status: str, message: str) -> str:
        project = self._settings.google_cloud_project
        return (
            f"Vertex AI refused our credentials ({status}): {message}. Grant roles/aiplatform.user on project "
            f"{project} to the runtime service account and enable aiplatform.googleapis.com"
        )

    def _model_missing(self, model: str) -> str:
        return (
            f"model {model} is not available in location {self._settings.google_cloud_location} "
            f"of project {self._settings.google_cloud_project} (try GOOGLE_CLOUD_LOCATION=global)"
        )


class GeminiApiProvider(_GeminiImageAdapter):
    """Gemini image models on the Gemini Developer API, keyed by an API key from the secret source."""

    name = "gemini"

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self._key: str | None = None
        self._retired: list[Client] = []

    async def availability(self) -> Availability:
        try:
            key = await self._ctx.secrets.get(secret_names.GEMINI)
        except ImageGenError as e:
            return Availability(False, e.message)
        if not key:
            return Availability(False, f"no Gemini API key ({self._ctx.secrets.describe(secret_names.GEMINI)})")
        return Availability(True)

    async def _get_client(self) -> Client:
        key = await self._ctx.secrets.get(secret_names.GEMINI)
        if not key:
            raise ImageGenError(
                ErrorCode.MISCONFIGURED,
                f"no Gemini API key is configured ({self._ctx.secrets.describe(secret_names.GEMINI)})",
                details={"provider": "gemini"},
            )
        async with self._client_lock:
            if self._client is None or key != self._key:
                if self._client is not None:
                    # In-flight calls may still use the old client: close it at shutdown, not now.
                    self._retired.append(self._client)
                self._client = await asyncio.to_thread(
                    _make_client, vertexai=False, api_key=key, base_url=self._settings.gemini_base_url
                )
                self._key = key
            return self._client

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _auth_problem(self, status: str, message: str) -> str:
        where = self._ctx.secrets.describe(secret_names.GEMINI)
        return f"the Gemini API rejected our API key ({status}): {message}. Check the key in {where}"

    def _model_missing(self, model: str) -> str:
        return f"model {model} is not available on the Gemini Developer API"

    async def aclose(self) -> None:
        retired, self._retired = self._retired, []
        for client in retired:
            await _close_client(client)
        await super().aclose()


async def _close_client(client: Client) -> None:
    await client.aio.aclose()
    client.close()  # the SDK also builds a sync HTTP client; close it too


def _load_adc() -> Credentials:
    import google.auth

    credentials, _project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return credentials


def _make_client(
    *,
    vertexai: bool,
    base_url: str | None,
    project: str | None = None,
    location: str | None = None,
    credentials: Credentials | None = None,
    api_key: str | None = None,
) -> Client:
    from google import genai
    from google.genai import types

    # No SDK-level retries: retries happen in call_with_retries, inside the request deadline.
    http_options = types.HttpOptions(base_url=base_url) if base_url else None
    if vertexai:
        return genai.Client(
            vertexai=True, project=project, location=location, credentials=credentials, http_options=http_options
        )
    return genai.Client(vertexai=False, api_key=api_key, http_options=http_options)
