"""cloudbuild.yaml: one pipeline, every step has an id, the steps run in the order issue 6 names, both shapes deploy."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import hcl2
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
    for key in ("_ENV", "_REGION", "_SERVICE", "_REPO", "_TF_STATE_BUCKET", "_AUDIENCE", "_SMOKE_MODEL", "_DEPLOY_AS"):
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
    assert 'infra/compliance/plan_checks.py infra/envs/${_ENV}/tfplan.json --deploy-as "${_DEPLOY_AS}"' in script
    assert "infra/compliance/requirements.txt" in script


# What a trigger of dev hands to the steps (cloudbuild.tf's substitutions, Cloud Build's built-ins).
SUBSTITUTIONS = {
    "_ENV": "dev",
    "_REGION": "europe-west1",
    "_SERVICE": "imagegen-mcp-dev",
    "_REPO": "imagegen-mcp",
    "_IMAGE_NAME": "imagegen-mcp",
    "_BASE_IMAGE": "python311",
    "_BUILD_SERVICE_ACCOUNT": "projects/acme-imagegen-dev/serviceAccounts/"
    "imagegen-build-dev@acme-imagegen-dev.iam.gserviceaccount.com",
    "PROJECT_ID": "acme-imagegen-dev",
    "COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
    "SHORT_SHA": "0123456",
}
IMAGE = (
    "europe-west1-docker.pkg.dev/acme-imagegen-dev/imagegen-mcp/imagegen-mcp:0123456789abcdef0123456789abcdef01234567"
)
TOKEN = re.compile(r"\$\$|\$\{(\w+)\}|\$([A-Z_]+)")


def script_of(pipeline: dict, step_id: str, **values: str) -> str:
    """The bash script of a step as Cloud Build runs it: substitutions filled in, `$$` turned into `$`."""
    s = step(pipeline, step_id)
    assert s["entrypoint"] == "bash" and s["args"][0] == "-c"
    subs = {**SUBSTITUTIONS, **values}
    return TOKEN.sub(lambda m: "$" if m.group(0) == "$$" else subs[m.group(1) or m.group(2)], s["args"][1])


def run_with_fakes(tmp_path: Path, script: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run a step script with `docker` and `gcloud` on PATH that only record their arguments."""
    calls = tmp_path / "calls"
    for tool in ("docker", "gcloud"):
        fake = tmp_path / tool
        fake.write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", script], env=env, cwd=REPO, capture_output=True, text=True, timeout=30)
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_service_shape_builds_pushes_and_deploys_the_commit_image(pipeline, tmp_path):
    calls = []
    for step_id in ("docker-build", "docker-push", "deploy-no-traffic"):
        done, calls = run_with_fakes(tmp_path, script_of(pipeline, step_id, _DEPLOY_AS="service"))
        assert done.returncode == 0, done.stderr
    assert calls == [
        f"docker build --pull -t {IMAGE} .",
        f"docker push {IMAGE}",
        f"gcloud run deploy imagegen-mcp-dev --image={IMAGE}"
        " --region=europe-west1 --no-traffic --tag=c-0123456 --quiet",
    ]


def test_function_shape_deploys_function_source_with_the_buildpack_and_builds_no_image(pipeline, tmp_path):
    calls = []
    for step_id in ("docker-build", "docker-push", "deploy-no-traffic"):
        done, calls = run_with_fakes(tmp_path, script_of(pipeline, step_id, _DEPLOY_AS="function"))
        assert done.returncode == 0, done.stderr
    assert calls == [
        "gcloud run deploy imagegen-mcp-dev --source=function --function=mcp --base-image=python311"
        " --automatic-updates --image=europe-west1-docker.pkg.dev/acme-imagegen-dev/imagegen-mcp"
        f" --build-service-account={SUBSTITUTIONS['_BUILD_SERVICE_ACCOUNT']}"
        " --region=europe-west1 --no-traffic --tag=c-0123456 --quiet"
    ]
    # without a build account (a manual run that sets none) Cloud Build's default builds it
    fresh = tmp_path / "no-build-account"
    fresh.mkdir()
    script = script_of(pipeline, "deploy-no-traffic", _DEPLOY_AS="function", _BUILD_SERVICE_ACCOUNT="")
    done, calls = run_with_fakes(fresh, script)
    assert done.returncode == 0 and len(calls) == 1 and "--build-service-account" not in calls[0], calls


def test_an_unknown_shape_stops_the_deploy(pipeline, tmp_path):
    done, calls = run_with_fakes(tmp_path, script_of(pipeline, "deploy-no-traffic", _DEPLOY_AS="lambda"))
    assert done.returncode == 1 and calls == []
    assert "_DEPLOY_AS must be service or function, not 'lambda'" in done.stderr


def test_the_function_source_is_what_the_buildpack_expects():
    """function/ alone: main.py defining the entry point the pipeline names, the runtime lock, and no Dockerfile
    (with one, gcloud would build that instead of using the buildpack and refuse --base-image)."""
    source = REPO / "function"
    assert (source / "main.py").exists() and (source / "requirements.txt").exists()
    assert not (source / "Dockerfile").exists()
    assert re.search(r"^async def mcp\(", (source / "main.py").read_text(), re.M)
    ignored = (source / ".gcloudignore").read_text().split()
    assert {"__pycache__/", "*.egg-info/"} <= set(ignored)


def test_trigger_substitutions_are_the_pipelines(pipeline):
    """substitutionOption MUST_MATCH: every substitution a trigger sets is declared, and every one a step uses too."""
    with (REPO / "infra" / "modules" / "imagegen_service" / "cloudbuild.tf").open() as f:
        parsed = hcl2.load(f)
    [resource] = [{k.strip('"'): v for k, v in block.items()} for block in parsed["resource"]]
    trigger = next(iter(resource["google_cloudbuild_trigger"].values()))
    trigger_keys = {k.strip('"') for k in trigger["substitutions"]}
    declared = set(pipeline["substitutions"])
    assert {"_DEPLOY_AS", "_BASE_IMAGE", "_BUILD_SERVICE_ACCOUNT"} <= trigger_keys <= declared
    used = set(re.findall(r"\$\{(_\w+)\}", (REPO / "cloudbuild.yaml").read_text().split("steps:", 1)[1]))
    assert used <= declared, used - declared
    assert pipeline["substitutions"]["_DEPLOY_AS"] == "service"


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud is not installed on this machine")
def test_the_function_deploy_parses_with_the_real_gcloud(pipeline, tmp_path):
    """The real gcloud accepts every flag of the function deploy and stops only where it needs credentials."""
    config = tmp_path / "gcloud"
    config.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CLOUDSDK_CONFIG": str(config),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
    }
    script = script_of(pipeline, "deploy-no-traffic", _DEPLOY_AS="function") + "\n"
    done = subprocess.run(
        ["bash", "-c", script.replace("gcloud run deploy", "gcloud run deploy --project=acme-imagegen-dev")],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert "unrecognized arguments" not in output and "Invalid value" not in output, output
    assert re.search(r"active account selected|gcloud auth login", output), output


def test_deploy_is_tagged_with_no_traffic_then_smoke_tested_then_promoted(pipeline):
    deploy = flat(step(pipeline, "deploy-no-traffic"))
    assert deploy.count("gcloud run deploy ${_SERVICE}") == 2  # one per shape
    assert deploy.count("--no-traffic --tag=c-$SHORT_SHA") == 2
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
