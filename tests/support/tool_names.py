"""The public tool names every listing test expects: the one place to update when a tool is added or removed."""

from __future__ import annotations

# gallery_links is app-only (callable, never listed), so it is not here.
PUBLIC_TOOLS = frozenset(
    {"generate_image", "edit_image", "list_models", "get_job", "cancel_job", "get_usage", "create_upload"}
)
