"""The usage export (modules/imagegen_service/usage.tf): its parsed structure, and usage.feature on synthetic plans."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plan_fixture
import test_infra_compliance
import tooling
from test_infra_hcl import _unquote

pytestmark = pytest.mark.infra

MODULE = tooling.REPO_ROOT / "infra" / "modules" / "imagegen_service"
SINK_WRITER = "serviceAccount:service-123@gcp-sa-logging.iam.gserviceaccount.com"
GOOD_FILTER = (
    'resource.type="cloud_run_revision" AND resource.labels.service_name="imagegen-mcp-dev" '
    'AND jsonPayload.event="usage"'
)


@pytest.fixture(scope="module")
def usage_tf() -> dict[str, Any]:
    with (MODULE / "usage.tf").open() as f:
        parsed = _unquote(hcl2.load(f))
    resources: dict[str, Any] = {}
    for block in parsed["resource"]:
        for rtype, named in block.items():
            for name, body in named.items():
                resources[f"{rtype}.{name}"] = body
    return {"resources": resources, "locals": {k: v for b in parsed["locals"] for k, v in b.items()}}


def test_dataset_sink_and_writer_role_are_wired_together(usage_tf: dict[str, Any]) -> None:
    resources = usage_tf["resources"]
    sink = resources["google_logging_project_sink.usage"]
    dataset = resources["google_bigquery_dataset.usage"]
    grant = resources["google_bigquery_dataset_iam_member.usage_sink_writer"]
    assert sink["filter"] == "${local.usage_log_filter}"
    log_filter = json.dumps(usage_tf["locals"]["usage_log_filter"])
    for clause in ("jsonPayload.event", "usage", "cloud_run_revision", "resource.labels.service_name"):
        assert clause in log_filter, clause
    assert "google_bigquery_dataset.usage.dataset_id" in sink["destination"]
    assert sink["unique_writer_identity"] is True
    options = sink["bigquery_options"]
    assert (options[0] if isinstance(options, list) else options)["use_partitioned_tables"] is True
    assert grant["role"] == "roles/bigquery.dataEditor"
    assert grant["member"] == "${google_logging_project_sink.usage.writer_identity}"
    assert grant["dataset_id"] == "${google_bigquery_dataset.usage.dataset_id}"
    assert dataset["delete_contents_on_destroy"] is False


def test_usage_variables_are_declared() -> None:
    with (MODULE / "variables.tf").open() as f:
        names = {name for block in _unquote(hcl2.load(f))["variable"] for name in block}
    assert {"usage_dataset_id", "usage_dataset_location", "usage_retention_days"} <= names


def _plan(
    *,
    log_filter: str = GOOD_FILTER,
    partitioned: bool = True,
    unique_writer: bool = True,
    role: str = "roles/bigquery.dataEditor",
    project_role: str | None = None,
) -> dict[str, Any]:
    """The compliance tests' good plan plus the usage resources (shaped like its own resources)."""
    extra = {"project_roles": ("roles/aiplatform.user", project_role)} if project_role else {}
    plan = plan_fixture.plan(**extra)
    project = "acme-imagegen-dev"
    usage = {
        ("google_bigquery_dataset", "usage"): {"dataset_id": "imagegen_usage_dev", "project": project},
        ("google_logging_project_sink", "usage"): {
            "name": "imagegen-usage-dev",
            "destination": f"bigquery.googleapis.com/projects/{project}/datasets/imagegen_usage_dev",
            "filter": log_filter,
            "unique_writer_identity": unique_writer,
            "bigquery_options": [{"use_partitioned_tables": partitioned}],
            "project": project,
        },
        ("google_bigquery_dataset_iam_member", "usage_sink_writer"): {
            "dataset_id": "imagegen_usage_dev",
            "role": role,
            "member": SINK_WRITER,
            "project": project,
        },
    }
    resources = plan["planned_values"]["root_module"]["child_modules"][0]["resources"]
    template, change_template = resources[0], plan["resource_changes"][0]
    for (rtype, name), values in usage.items():
        address = f"{plan_fixture.PREFIX}{rtype}.{name}"
        resources.append({**template, "address": address, "type": rtype, "name": name, "values": values})
        change = {**change_template["change"], "after": values}
        plan["resource_changes"].append(
            {**change_template, "address": address, "type": rtype, "name": name, "change": change}
        )
    return plan


def _compliance(tmp_path: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(_plan(**kwargs)))  # ONE line, as terraform-compliance needs
    return test_infra_compliance.compliance(plan_file)


def test_usage_feature_passes_on_a_compliant_plan(tmp_path: Path) -> None:
    result = _compliance(tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = [line for line in result.stdout.splitlines() if " scenarios (" in line]
    assert summary and "failed" not in summary[-1], summary
    assert "Scenario: The usage sink writes one day-partitioned table" in result.stdout


@pytest.mark.parametrize(
    "bad",
    [
        {"log_filter": 'resource.type="cloud_run_revision" AND resource.labels.service_name="imagegen-mcp-dev"'},
        {"log_filter": 'jsonPayload.event="usage"'},
        {"partitioned": False},
        {"unique_writer": False},
        {"role": "roles/bigquery.admin"},
        {"project_role": "roles/bigquery.dataEditor"},
    ],
    ids=["all-service-logs", "any-service", "table-per-day", "shared-writer", "admin-on-dataset", "project-wide"],
)
def test_usage_feature_fails_on_a_bad_plan(tmp_path: Path, bad: dict[str, Any]) -> None:
    result = _compliance(tmp_path, **bad)
    assert result.returncode != 0, f"{bad} passed:\n{result.stdout[-3000:]}"
