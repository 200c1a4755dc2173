"""terraform-compliance features and plan checks, on synthetic plans (the real plan exists only in Cloud Build)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plan_fixture
import tooling

pytestmark = pytest.mark.infra

REPO = tooling.REPO_ROOT
FEATURES = REPO / "infra" / "compliance"
PLAN_CHECKS = FEATURES / "plan_checks.py"


def compliance(plan_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tooling.terraform_compliance_binary(), "--no-ansi", "-f", str(FEATURES), "-p", str(plan_file)],
        capture_output=True,
        text=True,
        env=tooling.tool_env(),
        timeout=600,
        check=False,
    )


def plan_checks(plan_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PLAN_CHECKS), str(plan_file)], capture_output=True, text=True, timeout=60, check=False
    )


def test_features_pass_on_a_compliant_plan(tmp_path):
    result = compliance(plan_fixture.write(tmp_path / "plan.json"))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = [line for line in result.stdout.splitlines() if " scenarios (" in line]
    assert summary and "failed" not in summary[-1], summary


BAD_PLANS = {
    "retention_above_max": {"age": 90},
    "pap_not_enforced": {"pap": "inherited"},
    "ubla_off": {"ubla": False},
    "no_lifecycle_rule": {"lifecycle": False},
    "no_uploads_rule": {"upload_age": None},
    "default_compute_sa": {"runtime_sa": "123456789-compute@developer.gserviceaccount.com"},
    "unbounded_instances": {"max_instances": 1000},
    "unknown_ingress": {"ingress": "INGRESS_TRAFFIC_EVERYWHERE"},
    "project_wide_secret_accessor": {"project_roles": ("roles/aiplatform.user", "roles/secretmanager.secretAccessor")},
    "project_wide_object_admin": {"project_roles": ("roles/aiplatform.user", "roles/storage.objectAdmin")},
    "named_invoker_all_users": {"invoker_member": "allUsers"},
    "all_authenticated_users": {"auth_mode": "bearer", "allow_public": True, "public_member": "allAuthenticatedUsers"},
}


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_features_fail_on_a_bad_plan(tmp_path, case):
    result = compliance(plan_fixture.write(tmp_path / "plan.json", **BAD_PLANS[case]))
    assert result.returncode != 0, f"{case} passed the features:\n{result.stdout[-3000:]}"


def test_plan_checks_pass_on_iam_and_on_explicit_bearer_public(tmp_path):
    assert plan_checks(plan_fixture.write(tmp_path / "iam.json")).returncode == 0
    bearer = plan_fixture.write(
        tmp_path / "bearer.json", auth_mode="bearer", allow_public=True, public_member="allUsers"
    )
    result = plan_checks(bearer)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "kwargs",
    [
        {"public_member": "allUsers"},  # IAM mode made public
        {"auth_mode": "bearer", "allow_public": False, "public_member": "allUsers"},  # no explicit opt-in
        {"auth_mode": "bearer", "allow_public": True, "public_member": "allAuthenticatedUsers"},
        {"ingress": "INGRESS_TRAFFIC_ALL", "ingress_var": "INGRESS_TRAFFIC_INTERNAL_ONLY"},  # not as configured
    ],
)
def test_plan_checks_fail(tmp_path, kwargs):
    result = plan_checks(plan_fixture.write(tmp_path / "plan.json", **kwargs))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stderr
