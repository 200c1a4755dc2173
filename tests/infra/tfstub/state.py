"""Write a synthetic Terraform state from a first plan, so a steady-state plan can be made offline.

Every managed resource of the plan is stored with its planned values; what the plan left
unknown (computed, or derived from something computed) is filled with the stand-in's
placeholder values (values.placeholder), except for a service account's email/name/member,
derived the way Google forms them so that IAM members read like real ones. A value derived
from a placeholder is corrected by the next plan, so the caller repeats plan -> state until
a plan shows no change (a fixed point). The state's lineage says it is synthetic. Nothing
was applied anywhere.
Usage (in the stand-in venv): state.py <schema.json> <plan.json> > terraform.tfstate
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import values

PROVIDER = 'provider["registry.terraform.io/hashicorp/google"]'
LINEAGE = "00000000-0000-4000-8000-5717e5717e57"  # fixed: marks the state as this stand-in's


def _mark_unknown(value: Any, unknown: Any) -> Any:
    if unknown is True:
        return values.UNKNOWN
    if isinstance(unknown, dict) and isinstance(value, dict):
        return {k: _mark_unknown(value.get(k), unknown.get(k, False)) for k in value.keys() | unknown.keys()}
    if isinstance(unknown, list) and isinstance(value, list):
        return [_mark_unknown(v, unknown[i] if i < len(unknown) else False) for i, v in enumerate(value)]
    return value


def _derived(rtype: str, after: dict[str, Any]) -> dict[str, str]:
    if rtype != "google_service_account":
        return {}
    email = f"{after.get('account_id')}@{after.get('project')}.iam.gserviceaccount.com"
    return {
        "email": email,
        "member": f"serviceAccount:{email}",
        "name": f"projects/{after.get('project')}/serviceAccounts/{email}",
        "id": f"projects/{after.get('project')}/serviceAccounts/{email}",
    }


def synthesize(schema: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for change in plan.get("resource_changes", []):
        if change["mode"] != "managed" or change["change"]["after"] is None:
            continue
        block = schema["resource_schemas"][change["type"]]["block"]
        after = _mark_unknown(values.normalize(block, change["change"]["after"]), change["change"]["after_unknown"])
        filled = values.fill(block, after, _derived(change["type"], change["change"]["after"]))
        instance: dict[str, Any] = {"schema_version": 0, "attributes": filled, "sensitive_attributes": []}
        if "index" in change:
            instance["index_key"] = change["index"]
        key = (change.get("module_address", ""), change["type"], change["name"])
        grouped.setdefault(key, []).append(instance)
    resources = []
    for (module, rtype, name), instances in grouped.items():
        entry: dict[str, Any] = {"mode": "managed", "type": rtype, "name": name, "provider": PROVIDER}
        if module:
            entry["module"] = module
        entry["instances"] = instances
        resources.append(entry)
    return {
        "version": 4,
        "terraform_version": plan.get("terraform_version", "1.11.4"),
        "serial": 1,
        "lineage": LINEAGE,
        "outputs": {},
        "resources": resources,
        "check_results": None,
    }


if __name__ == "__main__":
    schema_doc = json.loads(Path(sys.argv[1]).read_text())
    plan_doc = json.loads(Path(sys.argv[2]).read_text())
    json.dump(synthesize(schema_doc, plan_doc), sys.stdout)
