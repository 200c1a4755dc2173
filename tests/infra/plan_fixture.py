"""Synthetic `terraform show -json` plans shaped like infra/envs/<env> plans, for the compliance tests.

The real plan needs the Google provider (Cloud Build only); these keep the same
resource addresses and attribute shapes so the features and plan checks are
exercised here on good and deliberately bad plans.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROVIDER = "registry.terraform.io/hashicorp/google"
PREFIX = "module.imagegen."


def _resource(address: str, rtype: str, name: str, values: dict[str, Any], index: Any = None) -> dict[str, Any]:
    res = {
        "address": PREFIX + address,
        "mode": "managed",
        "type": rtype,
        "name": name,
        "provider_name": PROVIDER,
        "schema_version": 0,
        "values": values,
        "sensitive_values": {},
    }
    if index is not None:
        res["index"] = index
    return res


def plan(
    *,
    auth_mode: str = "iam",
    allow_public: bool = False,
    public_member: str | None = None,
    invoker_member: str = "group:team@example.com",
    ingress: str = "INGRESS_TRAFFIC_ALL",
    ingress_var: str | None = None,
    age: int = 7,
    lifecycle: bool = True,
    upload_age: int | None = 1,
    pap: str = "enforced",
    ubla: bool = True,
    runtime_sa: str = "imagegen-run-dev@acme-imagegen-dev.iam.gserviceaccount.com",
    max_instances: int = 3,
    project_roles: tuple[str, ...] = ("roles/aiplatform.user",),
) -> dict[str, Any]:
    member = f"serviceAccount:{runtime_sa}"
    rule = [
        {
            "action": [{"type": "Delete", "storage_class": ""}],
            "condition": [{"age": age, "matches_prefix": [], "with_state": "ANY"}],
        }
    ]
    if upload_age is not None:  # the uploads/ rule (upload_retention_days)
        rule.append(
            {
                "action": [{"type": "Delete", "storage_class": ""}],
                "condition": [{"age": upload_age, "matches_prefix": ["uploads/"], "with_state": "ANY"}],
            }
        )
    resources = [
        _resource(
            "google_storage_bucket.outputs",
            "google_storage_bucket",
            "outputs",
            {
                "name": "acme-imagegen-dev-imagegen-dev",
                "location": "EUROPE-WEST1",
                "uniform_bucket_level_access": ubla,
                "public_access_prevention": pap,
                "force_destroy": False,
                "lifecycle_rule": rule if lifecycle else [],
                "cors": [],
            },
        ),
        _resource(
            "google_cloud_run_v2_service.this",
            "google_cloud_run_v2_service",
            "this",
            {
                "name": "imagegen-mcp-dev",
                "location": "europe-west1",
                "ingress": ingress,
                "template": [
                    {
                        "service_account": runtime_sa,
                        "timeout": "300s",
                        "max_instance_request_concurrency": 40,
                        "scaling": [{"min_instance_count": 0, "max_instance_count": max_instances}],
                        "containers": [{"image": "europe-west1-docker.pkg.dev/p/imagegen-mcp/imagegen-mcp:abc"}],
                    }
                ],
            },
        ),
        _resource(
            f'google_cloud_run_v2_service_iam_member.invoker["{invoker_member}"]',
            "google_cloud_run_v2_service_iam_member",
            "invoker",
            {"role": "roles/run.invoker", "member": invoker_member, "name": "imagegen-mcp-dev"},
            invoker_member,
        ),
        _resource(
            'google_secret_manager_secret_iam_member.runtime_accessor["openai"]',
            "google_secret_manager_secret_iam_member",
            "runtime_accessor",
            {"role": "roles/secretmanager.secretAccessor", "member": member, "secret_id": "imagegen-openai-api-key"},
            "openai",
        ),
    ]
    for i, role in enumerate(project_roles):
        resources.append(
            _resource(
                f"google_project_iam_member.grant_{i}",
                "google_project_iam_member",
                f"grant_{i}",
                {"role": role, "member": member, "project": "acme-imagegen-dev"},
            )
        )
    if public_member:
        resources.append(
            _resource(
                "google_cloud_run_v2_service_iam_member.public_invoker[0]",
                "google_cloud_run_v2_service_iam_member",
                "public_invoker",
                {"role": "roles/run.invoker", "member": public_member, "name": "imagegen-mcp-dev"},
                0,
            )
        )
    changes = [
        {
            "address": r["address"],
            "module_address": "module.imagegen",
            "mode": "managed",
            "type": r["type"],
            "name": r["name"],
            **({"index": r["index"]} if "index" in r else {}),
            "provider_name": PROVIDER,
            "change": {
                "actions": ["create"],
                "before": None,
                "after": r["values"],
                "after_unknown": {},
                "before_sensitive": False,
                "after_sensitive": {},
            },
        }
        for r in resources
    ]
    variables = {
        "auth_mode": auth_mode,
        "allow_public_invoker": allow_public,
        "ingress": ingress if ingress_var is None else ingress_var,
    }
    return {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "variables": {k: {"value": v} for k, v in variables.items()},
        "planned_values": {"root_module": {"child_modules": [{"address": "module.imagegen", "resources": resources}]}},
        "resource_changes": changes,
        "configuration": {
            "provider_config": {"google": {"name": "google", "full_name": PROVIDER}},
            "root_module": {
                "variables": {k: {} for k in variables},
                "module_calls": {"imagegen": {"source": "../../modules/imagegen_service", "module": {"resources": []}}},
            },
        },
    }


def write(path: Path, **kwargs: Any) -> Path:
    """Write the plan as ONE line, as the pipeline's `tr -d '\\n'` step does."""
    path.write_text(json.dumps(plan(**kwargs)))
    return path
