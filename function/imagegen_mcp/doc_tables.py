"""Markdown tables generated from the code (configuration reference, capability matrix) so the README stays true."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from pydantic.fields import FieldInfo

from .catalog import ModelSpec, load_catalog
from .config import Settings


def _env_names(name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return [str(c) for c in choices]
    return [f"IMAGEGEN_{name.upper()}"]


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, list):
            return ",".join(value) if value else "(empty)"
        return "(see meaning)"
    value = field.default
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_table() -> str:
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        names = " / ".join(f"`{n}`" for n in _env_names(name, field))
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| {names} | `{_default(field)}` | {meaning} |")
    return "\n".join(rows)


def capability_matrix(catalog: Iterable[ModelSpec] | None = None) -> str:
    """The matrix of `catalog` (default: the shipped one); discovered entries, when given, are marked as such."""
    specs = list(catalog if catalog is not None else load_catalog())
    rows = [
        "| model | kind | checked | providers | generate | edit | mask | max n | max inputs | aspect ratios | sizes | "
        "transparent | quality | seed | negative prompt |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def yes(value: bool) -> str:
        return "✓" if value else "–"

    for spec in specs:
        c = spec.capabilities
        checked = "–"
        if spec.checked:
            checked = f"[{spec.checked}]({spec.source})" if (spec.source or "").startswith("https://") else spec.checked
        rows.append(
            f"| `{spec.id}` | {spec.origin} | {checked} | {', '.join(o.provider for o in spec.offers)} | "
            f"{yes(c.generate)} | {yes(c.edit)} | "
            f"{yes(c.mask)} | {c.max_n} | {c.max_input_images} | {' '.join(c.aspect_ratios) or '–'} | "
            f"{' '.join(c.image_sizes) or '–'} | {yes(c.transparent_background)} | {' '.join(c.qualities) or '–'} | "
            f"{yes(c.seed)} | {yes(c.negative_prompt)} |"
        )
    return "\n".join(rows)


_BLOCK = re.compile(r"(<!-- generated: imagegen-mcp docs (config|models) -->\n)(.*?)(\n<!-- end generated -->)", re.S)


def update_readme(path: Path) -> bool:
    """Rewrite the generated blocks of a README in place; True when something changed."""
    text = path.read_text(encoding="utf-8")
    tables = {"config": config_table(), "models": capability_matrix()}
    updated = _BLOCK.sub(lambda m: m.group(1) + tables[m.group(2)] + m.group(4), text)
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text
