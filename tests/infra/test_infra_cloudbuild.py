"""cloudbuild.yaml: one pipeline, every step has an id, the steps run in the order issue 6 names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
EXPECTED_ORDER = [
    "lint-and-test",
    "tf-fmt",
    "tf-init",
    "tf-validate",
    "tf-plan",
    "tf-show-json",
    "terraform-compliance",
    "docker-build",
    "docker-push",
    "deploy-no-traffic",
    "smoke-test",
    "shift-traffic",
    "remove-revision-tags",
]


@pytest.fixture(scope="module")
def pipeline() -> dict:
    return yaml.safe_load((REPO / "cloudbuild.yaml").read_text())


def step(pipeline: dict, step_id: str) -> dict:
    return next(s for s in pipeline["steps"] if s.get("id") == step_id)


def flat(s: dict) -> str:
    return " ".join(str(a) for a in s.get("args", []))


def test_every_step_has_a_unique_id_in_the_expected_order(pipeline):
    ids = [s.get("id") for s in pipeline["steps"]]
    assert all(ids), "every step needs an id"
    assert len(ids) == len(set(ids))
    assert ids == EXPECTED_ORDER


def test_steps_run_sequentially_and_failures_stop_the_rollout(pipeline):
    for s in pipeline["steps"]:
        assert "allowFailure" not in s and "allow_failure" not in s
        assert "allowExitCodes" not in s
        # waitFor would let a later step start before an earlier one passed.
        assert "waitFor" not in s


def test_environments_differ_only_in_substitutions(pipeline):
    subs = pipeline["substitutions"]
    for key in ("_ENV", "_REGION", "_SERVICE", "_REPO", "_TF_STATE_BUCKET", "_AUDIENCE", "_SMOKE_MODEL"):
        assert key in subs
    text = (REPO / "cloudbuild.yaml").read_text()
    for literal in ("infra/envs/dev", "infra/envs/prod", "imagegen-mcp-prod"):
        assert literal not in text.split("steps:", 1)[1], f"environment literal {literal} in steps"
    assert pipeline["options"]["logging"] == "CLOUD_LOGGING_ONLY"


def test_tests_run_first_with_the_repo_test_command(pipeline):
    s = step(pipeline, "lint-and-test")
    assert s["entrypoint"] == "python3" and s["args"] == ["dev.py", "test"]


def test_terraform_steps(pipeline):
    assert flat(step(pipeline, "tf-fmt")) == "fmt -check -recursive infra"
    init = step(pipeline, "tf-init")
    assert init["dir"] == "infra/envs/${_ENV}"
    assert "-backend-config=bucket=${_TF_STATE_BUCKET}" in flat(init)
    assert step(pipeline, "tf-validate")["args"] == ["validate"]
    plan = flat(step(pipeline, "tf-plan"))
    assert plan.startswith("plan") and "-out=tfplan" in plan and "-input=false" in plan
    show = flat(step(pipeline, "tf-show-json"))
    assert "terraform show -json tfplan | tr -d '\\n' > tfplan.json" in show
    for sid in ("tf-fmt", "tf-init", "tf-validate", "tf-plan", "tf-show-json"):
        assert step(pipeline, sid)["name"].startswith("hashicorp/terraform:1.")


def test_compliance_runs_the_features_on_the_one_line_plan(pipeline):
    script = flat(step(pipeline, "terraform-compliance"))
    assert "terraform-compliance" in script
    assert "-f infra/compliance" in script and "-p infra/envs/${_ENV}/tfplan.json" in script
    assert "infra/compliance/plan_checks.py" in script
    assert "infra/compliance/requirements.txt" in script


def test_image_is_built_and_pushed_with_the_commit_tag(pipeline):
    image = "${_REGION}-docker.pkg.dev/$PROJECT_ID/${_REPO}/${_IMAGE_NAME}:$COMMIT_SHA"
    assert image in flat(step(pipeline, "docker-build"))
    assert flat(step(pipeline, "docker-push")) == f"push {image}"


def test_deploy_is_tagged_with_no_traffic_then_smoke_tested_then_promoted(pipeline):
    deploy = flat(step(pipeline, "deploy-no-traffic"))
    assert deploy.startswith("run deploy ${_SERVICE}")
    assert "--no-traffic" in deploy and "--tag=c-$SHORT_SHA" in deploy
    smoke = flat(step(pipeline, "smoke-test"))
    assert "gcloud auth print-identity-token --audiences=" in smoke
    assert "infra/smoke/smoke_test.py" in smoke and "--tag c-$SHORT_SHA" in smoke
    shift = flat(step(pipeline, "shift-traffic"))
    assert shift.startswith("run services update-traffic ${_SERVICE}")
    assert "--to-latest" in shift or "--to-tags" in shift


def test_dockerfile_runs_uvicorn_as_non_root():
    text = (REPO / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install --no-cache-dir --no-deps ." in text  # after the hashed runtime lock
    assert "USER 10001" in text
    assert "uvicorn main:app --app-dir function --host 0.0.0.0 --port" in text and "PORT" in text
