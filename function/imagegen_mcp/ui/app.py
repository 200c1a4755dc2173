"""The gallery MCP App: its `ui://` resource, the image origins its CSP allows, and how tools are bound to it.

The app is additive and negotiated (SEP-2133): a client that declared `io.modelcontextprotocol/ui` (or whose
capabilities this stateless server cannot see, as on follow-up requests of the initialize-handshake
revisions) is shown the resource and `_meta.ui.resourceUri` on the image tools; a client whose capabilities
are known and lack the extension sees exactly the surface it saw before the app existed. Tool results are
never changed: the app renders what `structuredContent` already carries.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID, Apps, ResourceCsp
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..access.ownership import may_use
from ..config import Settings
from ..errors import ErrorCode, ImageGenError
from ..storage.base import output_not_found

if TYPE_CHECKING:
    from ..access.caller import Caller
    from ..deps import Deps

GALLERY_URI = "ui://imagegen/gallery"
# Tools whose results the gallery renders (get_job only where the server registers it).
BOUND_TOOLS = ("generate_image", "edit_image", "get_job")
GCS_ORIGIN = "https://storage.googleapis.com"
LINKS_TOOL = "gallery_links"


class FreshLink(BaseModel):
    id: str
    url: str = Field(description="A newly signed, expiring link to the image.")
    expires_at: str


class FreshLinks(BaseModel):
    """Result of gallery_links."""

    images: list[FreshLink] = Field(default_factory=list)
    error: dict[str, Any] | None = None


def gallery_html() -> str:
    """The built, self-contained gallery document shipped inside the package (see ui/src/)."""
    return resources.files(__package__).joinpath("gallery.html").read_text(encoding="utf-8")


def _origin(url: str) -> str | None:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def image_origins(settings: Settings, base_url: str | None) -> list[str]:
    """Where this deployment's image links point: the CSP resource domains of the gallery, nothing else."""
    if settings.storage == "gcs":
        origins = [GCS_ORIGIN]
        # google-cloud-storage signs against the emulator when its own variable names one (tests, local fakes).
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator and (found := _origin(emulator)):
            origins.append(found)
        return origins
    # Local store: `/files/...` links on the endpoint itself (configured public URL, else the request's base).
    found = _origin(settings.public_url or base_url or f"http://127.0.0.1:{settings.port}")
    return [found] if found else []


def _scope_base_url(ctx: Any) -> str | None:
    request = getattr(ctx, "request", None)
    scope = getattr(request, "scope", None)
    state = scope.get("state", {}) if isinstance(scope, dict) else {}
    base = state.get("base_url")
    return str(base) if base else None


def _negotiated(ctx: Any) -> bool | None:
    """True/False when the client's capabilities are known on this request; None when they are not."""
    session = getattr(ctx, "session", None)
    capabilities = getattr(session, "client_capabilities", None)
    if capabilities is None:
        return None
    settings = (capabilities.extensions or {}).get(EXTENSION_ID)
    mime_types = settings.get("mimeTypes") if isinstance(settings, dict) else None
    return isinstance(mime_types, list) and APP_MIME_TYPE in mime_types


def _without_extension(result: dict[str, Any]) -> dict[str, Any]:
    capabilities = result.get("capabilities")
    if not isinstance(capabilities, dict):
        return result
    extensions = capabilities.get("extensions")
    if not isinstance(extensions, dict) or EXTENSION_ID not in extensions:
        return result
    rest = {k: v for k, v in extensions.items() if k != EXTENSION_ID}
    kept = {k: v for k, v in capabilities.items() if k != "extensions"} | ({"extensions": rest} if rest else {})
    return {**result, "capabilities": kept}


def _ui_meta(item: dict[str, Any]) -> dict[str, Any]:
    meta = item.get("_meta")
    ui = meta.get("ui") if isinstance(meta, dict) else None
    return ui if isinstance(ui, dict) else {}


def _app_only(tool: dict[str, Any]) -> bool:
    return "model" not in _ui_meta(tool).get("visibility", ["model"])


def _without_ui(item: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (item.get("_meta") or {}).items() if k != "ui"}
    rest = {k: v for k, v in item.items() if k != "_meta"}
    return rest | ({"_meta": meta} if meta else {})


def _with_ui(item: dict[str, Any], **ui: Any) -> dict[str, Any]:
    meta = dict(item.get("_meta") or {})
    meta["ui"] = {**_ui_meta(item), **ui}
    return {**item, "_meta": meta}


@dataclass(frozen=True)
class Gallery:
    """What server.py wires in: the Apps extension and the middleware that negotiates and localises it."""

    apps: Apps
    settings: Settings

    async def middleware(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        """Server middleware over the wire-form results of the listing, reading and handshake methods."""
        result = await call_next(ctx)
        if not isinstance(result, dict):
            return result
        method = ctx.method
        negotiated = _negotiated(ctx)
        if negotiated is False:
            return _hidden(method, result)
        if method == "tools/list" and isinstance(result.get("tools"), list):
            tools = [
                _with_ui(t, resourceUri=GALLERY_URI) if t.get("name") in BOUND_TOOLS else t for t in result["tools"]
            ]
            # Unknown capabilities (initialize-handshake revisions): the binding is a `_meta` key that others
            # ignore, but an extra tool is not, so app-only tools are listed only to hosts known to render apps.
            if negotiated is None:
                tools = [t for t in tools if not _app_only(t)]
            return {**result, "tools": tools}
        key = {"resources/list": "resources", "resources/read": "contents"}.get(method)
        if key and isinstance(result.get(key), list):
            csp = ResourceCsp(resource_domains=image_origins(self.settings, _scope_base_url(ctx)))
            csp_meta = csp.model_dump(by_alias=True, exclude_none=True)
            items = [_with_ui(i, csp=csp_meta) if i.get("uri") == GALLERY_URI else i for i in result[key]]
            return {**result, key: items}
        return result


def _hidden(method: str, result: dict[str, Any]) -> dict[str, Any]:
    """The result as it was before the app existed (for a client known not to speak the extension)."""
    if method in ("initialize", "server/discover"):
        return _without_extension(result)
    if method == "resources/list" and isinstance(result.get("resources"), list):
        return {
            **result,
            "resources": [r for r in result["resources"] if not str(r.get("uri", "")).startswith("ui://")],
        }
    if method == "tools/list" and isinstance(result.get("tools"), list):
        kept = [t for t in result["tools"] if not _app_only(t)]
        return {**result, "tools": [_without_ui(t) if _ui_meta(t) else t for t in kept]}
    return result


def build_gallery(deps: Deps, caller_of: Callable[[Context], Caller]) -> Gallery:
    """The gallery extension for `MCPServer(extensions=[...])` plus its middleware; `caller_of` names who calls."""
    settings = deps.settings
    apps = Apps()
    apps.add_html_resource(
        GALLERY_URI,
        gallery_html(),
        name="gallery",
        title="Image gallery",
        description="Shows generated and edited images large, with variations, edit, download and pick actions.",
        csp=ResourceCsp(resource_domains=image_origins(settings, None)),
        prefers_border=True,
    )

    # App-only: the gallery re-signs links that expired while a conversation sat idle; the model has ids already.
    @apps.tool(
        resource_uri=GALLERY_URI,
        visibility=["app"],
        name=LINKS_TOOL,
        title="Refresh gallery links",
        description="Fresh signed links for earlier outputs shown in the gallery (called by the app, not the model).",
        annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True),
    )
    async def gallery_links(
        ids: Annotated[list[str], Field(min_length=1, max_length=16, description="Output ids (or their URLs).")],
        ctx: Context,
    ) -> Annotated[CallToolResult, FreshLinks]:
        base_url = _scope_base_url(ctx.request_context)
        try:
            caller = caller_of(ctx)
            links = []
            for ref in ids:
                image_id = deps.store.resolve_reference(ref)
                if image_id is None:
                    raise ImageGenError(ErrorCode.INVALID_ARGUMENT, f"not an output of this server: {ref[:200]!r}")
                # Re-signing is reading: another caller's output is answered exactly like a missing one.
                if not may_use(caller, await deps.store.metadata(image_id), settings.shared_owners):
                    raise output_not_found(image_id)
                signed = await deps.store.sign(image_id, ttl_seconds=settings.url_ttl_seconds, base_url=base_url)
                links.append({"id": image_id, "url": signed.url, "expires_at": signed.expires_at.isoformat()})
        except ImageGenError as err:
            return CallToolResult(
                content=[TextContent(type="text", text=f"{err.code.value}: {err.message}")],
                structured_content={"images": [], "error": err.to_dict()},
                is_error=True,
            )
        text = f"fresh links for {len(links)} image(s)"
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content={"images": links})

    return Gallery(apps=apps, settings=settings)
