"""create_app(settings, deps) -> ASGI app: /mcp, /healthz, /files, /uploads, OAuth metadata, Host/Origin and auth."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__
from .access.hosts import HostPolicy, format_authority, parse_authority
from .config import Settings
from .errors import ErrorCode, ImageGenError
from .images.budget import DecodeBudget
from .late_answer import late_json_as_stream
from .logs import bind_request, configure_logging, reset_request, trace_field
from .response_mode import wants_stream
from .storage.base import mime_of_id

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from .deps import Deps

log = logging.getLogger(__name__)
LARGE_BODY_BYTES = 1024 * 1024  # smaller requests (every control message, most calls) never wait
BODY_MEMORY_FACTOR = 5  # measured ~4.3x for a 27 MB base64 edit (tests/integration/test_memory_bounds.py)
MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"
SWEEP_INTERVAL_SECONDS = 3600.0


def _json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers, lower-cased, decoded once per request and kept in the scope state."""
    state = scope.setdefault("state", {})
    if "headers" not in state:
        state["headers"] = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    headers: dict[str, str] = state["headers"]
    return headers


def _base_url(scope: Scope, settings: Settings) -> str:
    """The external base URL links should use: configured, or what the (validated) request says."""
    if settings.public_url:
        return settings.public_url
    headers = request_headers(scope)
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip() or scope.get("scheme", "http")
    authority = parse_authority(headers.get("host"))  # rebuilt from its parsed parts, never copied
    host = format_authority(*authority) if authority else "127.0.0.1"
    return f"{'https' if proto == 'https' else 'http'}://{host}"


class RequestContextMiddleware:
    """Request id, trace and log context for every HTTP request; the last line of defence against 500s."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        request_id = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = bind_request(
            request_id=request_id,
            **trace_field(headers.get("x-cloud-trace-context"), self.settings.google_cloud_project),
        )
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # A new list: the one in `message` may be shared with other responses (the SDK's SSE headers).
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error serving %s %s", scope.get("method"), scope.get("path"))
            if not started:
                response = _json_error(500, ErrorCode.INTERNAL.value, f"internal error; reference {request_id}")
                await response(scope, receive, send)
        finally:
            reset_request(token)


class GuardMiddleware:
    """Host/Origin validation (DNS rebinding), body-size limit and authentication in front of /mcp."""

    def __init__(self, app: ASGIApp, settings: Settings, deps: Deps, hosts: HostPolicy) -> None:
        self.app = app
        self.settings = settings
        self.deps = deps
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        host = headers.get("host")
        if not self.hosts.host_allowed(host):
            await _json_error(421, "misdirected_request", "Host header not allowed for this server")(
                scope, receive, send
            )
            return
        origin = headers.get("origin")
        # A signed /files link is its own credential and is embedded like any image, also by pages whose Origin
        # is not ours (an MCP App in a host's sandboxed iframe sends `Origin: null`); the Host check still applies.
        file_read = scope["path"].startswith("/files/") and scope["method"] in ("GET", "HEAD")
        if not file_read and not self.hosts.origin_allowed(origin, host):
            await _json_error(403, ErrorCode.FORBIDDEN.value, "Origin not allowed")(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["base_url"] = _base_url(scope, self.settings)
        if scope["path"].rstrip("/") != MCP_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        length = headers.get("content-length")
        if length is not None and not (
            length.isascii() and length.isdigit() and int(length) <= self.settings.max_request_bytes
        ):
            await _json_error(413, ErrorCode.INVALID_ARGUMENT.value, "request body too large")(scope, receive, send)
            return
        state["content_length"] = None if length is None else int(length)  # validated once, read by _McpRoute
        client = scope.get("client")
        server = scope.get("server")
        try:
            caller = await self.deps.auth.authenticate(
                headers,
                client_host=client[0] if client else None,
                server_host=server[0] if server else None,
            )
        except ImageGenError as err:
            await self._auth_error(err, scope, receive, send)
            return
        state["caller"] = caller
        await self.app(scope, receive, send)

    async def _auth_error(self, err: ImageGenError, scope: Scope, receive: Receive, send: Send) -> None:
        if err.code == ErrorCode.UNAUTHENTICATED:
            metadata_url = f"{state_base(scope)}{METADATA_PATH}"
            header = self.deps.auth.www_authenticate(metadata_url, err)
            response = _json_error(401, err.code.value, "authentication required", {"WWW-Authenticate": header})
        else:  # authenticate() raises only unauthenticated or a deployment/upstream problem (misconfigured, ...)
            log.error("refusing request: %s", err.message)
            response = _json_error(503, err.code.value, err.message)
        await response(scope, receive, send)


def state_base(scope: Scope) -> str:
    return str(scope.get("state", {}).get("base_url", "")).rstrip("/")


def _method_not_allowed() -> Response:
    return _json_error(405, "method_not_allowed", "this stateless endpoint only accepts POST", {"Allow": "POST"})


class _McpRoute:
    """POST /mcp to the SDK once the whole body is in (a client that hangs up earlier is one INFO line); else 405."""

    def __init__(
        self, streamed: ASGIApp, plain: ASGIApp, max_body: int, bodies: DecodeBudget, default_wait_seconds: float
    ) -> None:
        self.streamed = streamed  # the SDK answering with an SSE stream
        self.plain = plain  # the same server answering with one JSON body
        self.max_body = max_body
        self.bodies = bodies
        self.default_wait_seconds = default_wait_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _method_not_allowed()(scope, receive, send)
            return
        length: int | None = scope.get("state", {}).get("content_length")  # set by GuardMiddleware
        declared = self.max_body if length is None else length
        # A large body costs several times its size once read, decoded from JSON and held by the call (base64
        # text, the parsed arguments, the image bytes): such requests take their share of the body budget
        # before a byte is read, and wait unread (so hold no memory) while it is spent.
        cost = BODY_MEMORY_FACTOR * declared if declared > LARGE_BODY_BYTES else 0
        try:
            async with self.bodies.hold(cost, "this request"):
                await self._serve(scope, receive, send)
        except ImageGenError as err:
            status = 503 if err.code == ErrorCode.RATE_LIMITED else 413
            await _json_error(status, err.code.value, err.message, {"Retry-After": "5"})(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                log.info("client disconnected before sending the whole request", extra={"fields": {"bytes": received}})
                return
            if message["type"] != "http.request":
                continue
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body:
                await _json_error(413, ErrorCode.INVALID_ARGUMENT.value, "request body too large")(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: the client's disconnect, as the SDK expects
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        sdk_scope = {**scope, "path": MCP_PATH, "raw_path": MCP_PATH.encode()}
        if wants_stream(scope, body, self.default_wait_seconds):
            await self.streamed(sdk_scope, replay, send)
        else:  # a JSON answer, unless it is late: then a stream with keep-alives (late_answer)
            await late_json_as_stream(self.plain, sdk_scope, replay, send)


def create_app(settings: Settings, deps: Deps | None = None) -> Starlette:
    """The whole HTTP service. No network I/O happens until the lifespan starts."""
    from mcp.server.transport_security import TransportSecuritySettings

    from .deps import build_deps
    from .server import build_server
    from .storage.local import LocalStore
    from .storage.local_uploads import UploadRefused

    configure_logging(settings.log_level)
    deps = deps or build_deps(settings)
    mcp_server = build_server(deps, in_process_caller=None)  # every call comes over HTTP, authenticated

    # The SDK's documented mounting: its streamable-HTTP app serves /mcp and its session manager runs in our
    # lifespan (a mounted app's own lifespan never runs). Host/Origin checks are ours (GuardMiddleware, all
    # routes); the SDK's localhost-only check would 421 on run.app. Built twice, for its two response modes
    # (response_mode.wants_stream picks one per request): each build makes its own session manager.
    def sdk_app(json_response: bool) -> tuple[ASGIApp, StreamableHTTPSessionManager]:
        built = mcp_server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=json_response,
            max_request_body_size=settings.max_request_bytes,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        return built, mcp_server.session_manager

    streamed, streamed_manager = sdk_app(json_response=False)
    plain, plain_manager = sdk_app(json_response=True)
    bodies = DecodeBudget(settings.body_budget_bytes, wait_seconds=settings.request_deadline_seconds)
    mcp_route = _McpRoute(streamed, plain, settings.max_request_bytes, bodies, settings.wait_seconds)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def files(request: Request) -> Response:
        store = deps.store
        if not isinstance(store, LocalStore):
            return _json_error(404, ErrorCode.NOT_FOUND.value, "not found")
        try:
            path = store.verify(
                request.path_params["image_id"],
                request.query_params.get("expires", ""),
                request.query_params.get("sig", ""),
            )
        except ImageGenError as err:
            status = 404 if err.code == ErrorCode.NOT_FOUND else 403
            return _json_error(status, err.code.value, err.message)
        return FileResponse(
            path,
            media_type=mime_of_id(path.name),
            headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    async def uploads(request: Request) -> Response:
        """A signed upload PUT of the local store (on GCS the PUT goes to the bucket); 4xx in plain text."""
        store = deps.store
        if not isinstance(store, LocalStore):
            return PlainTextResponse("not found\n", status_code=404)
        try:
            await store.uploads.receive(
                request.path_params["upload_id"], request.query_params, request_headers(request.scope), request.stream()
            )
        except UploadRefused as refused:
            return PlainTextResponse(f"{refused.message}\n", status_code=refused.status)
        except ClientDisconnect:
            log.info("client disconnected during an upload")
            return PlainTextResponse("incomplete body\n", status_code=400)
        return Response(status_code=200)

    async def resource_metadata(request: Request) -> Response:
        resource = f"{state_base(request.scope)}{MCP_PATH}"
        return JSONResponse(deps.auth.protected_resource_metadata(resource))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with streamed_manager.run(), plain_manager.run():
            await _startup(deps)
            sweeper = asyncio.create_task(_sweep_forever(deps)) if isinstance(deps.store, LocalStore) else None
            try:
                yield
            finally:
                if sweeper is not None:
                    sweeper.cancel()
                await deps.aclose()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/files/{image_id}", files, methods=["GET", "HEAD"]),
        Route("/uploads/{upload_id}", uploads, methods=["PUT"]),
        Route(METADATA_PATH, resource_metadata, methods=["GET"]),
        Route(f"{METADATA_PATH}{MCP_PATH}", resource_metadata, methods=["GET"]),
        Route(MCP_PATH, mcp_route, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
        Route(f"{MCP_PATH}/", mcp_route, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
    ]
    if settings.jobs == "cloud-tasks":
        from .jobs.worker_route import worker_route

        routes.append(worker_route(deps))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.deps = deps
    app.state.mcp_server = mcp_server
    app.state.session_managers = (streamed_manager, plain_manager)
    hosts = HostPolicy.from_settings(settings)
    app.add_middleware(GuardMiddleware, settings=settings, deps=deps, hosts=hosts)
    app.add_middleware(RequestContextMiddleware, settings=settings)
    return app


async def _startup(deps: Deps) -> None:
    """Fail fast on a broken store; warm caches so the first call does not wait on them."""
    await deps.store.startup_check()
    warm = getattr(deps.secrets, "warm", None)
    if warm is not None:
        try:
            await warm()
        except Exception:
            log.warning("could not prefetch secrets at startup; affected models show as unavailable", exc_info=True)
    log.info(
        "imagegen-mcp ready",
        extra={
            "fields": {
                "storage": deps.store.name,
                "auth": deps.settings.auth_label,
                "providers": sorted(deps.providers),
                "default_model": await deps.effective_default_model(),
                "retention_days": deps.settings.retention_days,
            }
        },
    )


async def _sweep_forever(deps: Deps) -> None:
    sweep = getattr(deps.store, "sweep", None)
    while sweep is not None:
        try:
            removed = await sweep()
            if removed:
                log.info("retention sweep", extra={"fields": {"deleted": removed}})
        except Exception:
            log.warning("retention sweep failed", exc_info=True)
        await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
