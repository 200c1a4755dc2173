"""Turn the jsii assembly of PyPI `cdktn-provider-google` into a Terraform provider schema (JSON).

The assembly (`.jsii` in the wheel's tarball) names every resource, data source and the
provider with their config structs (required = not optional), nested block structs and
computed-only getters; the generated JavaScript next to it says list or set. The result has
the shape of `terraform providers schema -json` for one provider. What the assembly does not
carry is said where it is decided (see OPTIONAL_COMPUTED). Stdlib only: it runs before any venv.
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

NS = "@cdktn/provider-google."
KINDS = {"cdktn.TerraformResource": "resource_schemas", "cdktn.TerraformDataSource": "data_source_schemas"}
LINK = re.compile(r"docs/(?:resources|data-sources)/\w+ (google_\w+)\}")
ATTR_LINK = re.compile(r"#(\w+) ")
# The assembly cannot tell "optional" from "optional and computed". These provider-wide
# arguments are optional+computed in every Google resource (filled from the provider block);
# every other optional argument is served as optional only, so it plans null when unset.
OPTIONAL_COMPUTED = frozenset({"id", "project", "region", "zone"})
PRIMITIVE = {"string": "string", "number": "number", "boolean": "bool", "any": "dynamic"}
MAPS = {"cdktn.StringMap": "string", "cdktn.NumberMap": "number", "cdktn.BooleanMap": "bool", "cdktn.AnyMap": "dynamic"}
SKIP_GETTERS = {"tfResourceType", "internalValue", "fqn", "terraformGeneratorMetadata"}
HCL_ENTRY = re.compile(r"^ +(\w+): \{\n +value: .*\n +isBlock: (true|false),\n +type: \"(\w+)\",", re.M)
SECTION = re.compile(r"^function (\w+)ToHclTerraform\(|^class (\w+) extends|^\s+synthesizeHclAttributes\(\) \{", re.M)
LIST_CTOR = re.compile(r"new (\w+List)\(this, \"(\w+)\", (true|false)\)")
TOLIST = re.compile(r"tolist\(this\.getListAttribute\('(\w+)'\)\)")


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class Js:
    """List/set facts from one generated index.js: per struct, tf name -> (isBlock, type)."""

    def __init__(self, text: str) -> None:
        self.kinds: dict[str, dict[str, str]] = {}
        self.wraps_set: dict[str, bool] = {m.group(1): m.group(3) == "true" for m in LIST_CTOR.finditer(text)}
        self.set_getters = set(TOLIST.findall(text))
        marks = list(SECTION.finditer(text))
        current_class = ""
        for i, mark in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            if mark.group(2):
                current_class = mark.group(2)
                continue
            owner = (mark.group(1)[0].upper() + mark.group(1)[1:]) if mark.group(1) else current_class
            body = text[mark.end() : end]
            self.kinds.setdefault(owner, {}).update({m.group(1): m.group(3) for m in HCL_ENTRY.finditer(body)})


class Extractor:
    def __init__(self, types: dict[str, Any], js: dict[str, Js]) -> None:
        self.types = types
        self.js = js

    def _js(self, fqn: str) -> Js:
        return self.js.get(self.types[fqn].get("namespace", ""), Js(""))

    def _type(self, t: dict[str, Any]) -> Any:
        """cty type (JSON form) of a jsii type reference that is not a block."""
        if "union" in t:
            inner = [x for x in t["union"]["types"] if x.get("fqn") != "cdktn.IResolvable"]
            return self._type(inner[0]) if inner else "bool"
        if "primitive" in t:
            return PRIMITIVE[t["primitive"]]
        if "collection" in t:
            kind = t["collection"]["kind"]
            return ["map" if kind == "map" else "list", self._type(t["collection"]["elementtype"])]
        fqn = t.get("fqn", "")
        if fqn in MAPS:
            return ["map", MAPS[fqn]]
        if fqn == "cdktn.IResolvable":
            return "bool"
        if fqn.endswith("List") and fqn + "" in self.types:
            ref = fqn[: -len("List")] + "OutputReference"
            name = self.types[fqn]["name"]
            kind = "set" if self._js(fqn).wraps_set.get(name) else "list"
            return [kind, ["object", self._object(ref)]]
        if fqn.endswith("OutputReference") and fqn in self.types:
            return ["list", ["object", self._object(fqn)]]
        if fqn.endswith("Map") and fqn in self.types:
            ref = fqn[: -len("Map")] + "OutputReference"
            return ["map", ["object", self._object(ref)]] if ref in self.types else "dynamic"
        return "dynamic"

    def _object(self, ref_fqn: str) -> dict[str, Any]:
        """Attribute types of a computed nested object, from its OutputReference getters."""
        props = self.types.get(ref_fqn, {}).get("properties", [])
        return {snake(p["name"]): self._type(p["type"]) for p in props if self._getter(p)}

    @staticmethod
    def _getter(p: dict[str, Any]) -> bool:
        return not p.get("static") and not p["name"].endswith("Input") and p["name"] not in SKIP_GETTERS

    @staticmethod
    def _struct_of(t: dict[str, Any]) -> str | None:
        for x in t.get("union", {}).get("types", [t]):
            if "collection" in x and x["collection"]["kind"] == "array":
                x = x["collection"]["elementtype"]
            fqn = x.get("fqn", "")
            if fqn.startswith(NS) and x is not None:
                return fqn
        return None

    def block(self, struct_fqn: str, output_fqn: str | None) -> dict[str, Any]:
        struct = self.types[struct_fqn]
        kinds = self._js(struct_fqn).kinds.get(struct["name"], {})
        if output_fqn:
            kinds = {**kinds, **self._js(output_fqn).kinds.get(self.types[output_fqn]["name"], {})}
        attributes: dict[str, Any] = {}
        block_types: dict[str, Any] = {}
        for p in struct.get("properties", []):
            docs = p.get("docs", {})
            found = ATTR_LINK.search(docs.get("remarks", "") + " " + docs.get("summary", ""))
            name = found.group(1) if found else snake(p["name"])
            optional = bool(p.get("optional"))
            nested = self._struct_of(p["type"])
            if nested and self.types[nested].get("datatype"):
                kind = kinds.get(name, "list")
                single = "collection" not in json.dumps(p["type"])
                child_ref = nested + "OutputReference"
                spec: dict[str, Any] = {
                    "nesting_mode": "single" if name == "timeouts" else ("set" if kind == "set" else "list"),
                    "block": self.block(nested, child_ref if child_ref in self.types else None),
                }
                if name != "timeouts":
                    if single:
                        spec["max_items"] = 1
                    if not optional:
                        spec["min_items"] = 1
                block_types[name] = spec
                continue
            ctype = self._type(p["type"])
            if isinstance(ctype, list) and ctype[0] == "list" and kinds.get(name) == "set":
                ctype = ["set", ctype[1]]
            attr: dict[str, Any] = {"type": ctype}
            if not optional:
                attr["required"] = True
            else:
                attr["optional"] = True
                if name in OPTIONAL_COMPUTED:
                    attr["computed"] = True
            attributes[name] = attr
        if output_fqn:
            js = self._js(output_fqn)
            for p in self.types[output_fqn].get("properties", []):
                name = snake(p["name"])
                if not self._getter(p) or name in attributes or name in block_types:
                    continue
                ctype = self._type(p["type"])
                if isinstance(ctype, list) and ctype[0] == "list" and name in js.set_getters:
                    ctype = ["set", ctype[1]]
                attributes[name] = {"type": ctype, "computed": True}
        return {"attributes": attributes, "block_types": block_types}


def extract(wheel: Path) -> dict[str, Any]:
    """Provider schema (terraform `providers schema -json` shape) from a cdktn-provider-google wheel."""
    with zipfile.ZipFile(wheel) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
        blob = zf.read(member)
    assembly: dict[str, Any] = {}
    js: dict[str, Js] = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for info in tar:
            if info.name == "package/.jsii":
                assembly = json.load(tar.extractfile(info))  # type: ignore[arg-type]
            elif info.name.startswith("package/lib/") and info.name.endswith("/index.js"):
                folder = info.name.split("/")[2]
                namespace = re.sub(r"-(\w)", lambda m: m.group(1).upper(), folder)
                js[namespace] = Js(tar.extractfile(info).read().decode())  # type: ignore[union-attr]
    types = assembly["types"]
    ex = Extractor(types, js)
    out: dict[str, Any] = {"provider": None, "resource_schemas": {}, "data_source_schemas": {}}
    for fqn, t in types.items():
        if t.get("kind") != "class":
            continue
        if t.get("base") == "cdktn.TerraformProvider":
            out["provider"] = {"version": 0, "block": ex.block(fqn + "Config", None)}
            continue
        section = KINDS.get(t.get("base", ""))
        found = LINK.search(t.get("docs", {}).get("summary", ""))
        if section and found and fqn + "Config" in types:
            out[section][found.group(1)] = {"version": 0, "block": ex.block(fqn + "Config", fqn)}
    out["source"] = {"package": assembly["name"], "version": assembly["version"]}
    return out


if __name__ == "__main__":
    json.dump(extract(Path(sys.argv[1])), sys.stdout)
