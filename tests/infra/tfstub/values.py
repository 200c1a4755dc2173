"""Schema-directed value work for the stand-in provider: msgpack codec, planning, placeholders.

Values travel as cty msgpack: objects are maps, sets are arrays, an unknown value is
msgpack extension type 0. Planning follows the protocol's rule for a provider that knows
nothing about the cloud: every computed attribute Terraform proposed as null (not set in the
configuration and not in the prior state) becomes unknown; everything else is kept.
"""

from __future__ import annotations

from typing import Any

import msgpack

UNKNOWN = msgpack.ExtType(0, b"")
# Plausible fixed values for computed attributes Terraform must know while planning (data
# sources are read during plan); each is marked as a stand-in value where it can be.
PLACEHOLDER_STRINGS = {"number": "123456789012"}


def decode(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False, strict_map_key=False) if raw else None


def encode(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def is_unknown(value: Any) -> bool:
    return isinstance(value, msgpack.ExtType)


def _nested(block: dict[str, Any], value: Any, fn: Any) -> Any:
    if value is None or is_unknown(value):
        return value
    out = dict(value)
    for name, spec in block.get("block_types", {}).items():
        inner = out.get(name)
        if spec["nesting_mode"] == "single" or inner is None or is_unknown(inner):
            out[name] = fn(spec["block"], inner)
        else:
            out[name] = [fn(spec["block"], element) for element in inner]
    return out


def plan(block: dict[str, Any], proposed: Any) -> Any:
    """Planned state: computed attributes proposed as null become unknown, the rest is kept."""
    if proposed is None or is_unknown(proposed):
        return proposed
    out = _nested(block, proposed, plan)
    for name, attr in block.get("attributes", {}).items():
        if attr.get("computed") and out.get(name) is None:
            out[name] = UNKNOWN
    return out


def placeholder(ctype: Any, name: str) -> Any:
    """A fixed stand-in value of cty type `ctype` for attribute `name`."""
    if ctype == "string":
        return PLACEHOLDER_STRINGS.get(name, f"stand-in-{name.replace('_', '-')}")
    if ctype == "number":
        return 0
    if ctype == "bool":
        return False
    if isinstance(ctype, list) and ctype[0] in ("list", "set", "map"):
        return {} if ctype[0] == "map" else []
    if isinstance(ctype, list) and ctype[0] == "object":
        return {key: placeholder(inner, key) for key, inner in ctype[1].items()}
    return None


def fill(block: dict[str, Any], value: Any, derived: dict[str, str] | None = None) -> Any:
    """Replace unknown attributes and null computed ones with placeholders (`derived` wins by name)."""
    if value is None:
        return None
    out = _nested(block, value, fill)
    for name, attr in block.get("attributes", {}).items():
        current = out.get(name)
        if is_unknown(current) or (attr.get("computed") and current is None):
            out[name] = (derived or {}).get(name, placeholder(attr["type"], name))
    return out


def normalize(block: dict[str, Any], value: Any) -> Any:
    """A JSON state object made whole for the schema: every attribute and block present."""
    if value is None:
        return None
    out: dict[str, Any] = {name: value.get(name) for name in block.get("attributes", {})}
    for name, spec in block.get("block_types", {}).items():
        inner = value.get(name)
        if spec["nesting_mode"] == "single":
            out[name] = normalize(spec["block"], inner)
        else:
            out[name] = [normalize(spec["block"], element) for element in inner or []]
    return out
