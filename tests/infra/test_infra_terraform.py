"""Real terraform init/validate/plan of every infra/envs root, offline, and both compliance passes on them.

The Google provider is the schema-only stand-in (tests/infra/tfstub), installed through a
filesystem mirror as the pinned version, so Terraform itself checks every argument, block
shape, type, reference, variable validation and precondition. Each environment is planned in
both serverless shapes (deploy_as = service, and function through -var), each twice: the
first-ever plan (empty state) and a steady-state plan (synthetic state, no change).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import terraform_run
import tooling

pytestmark = pytest.mark.infra

ENVS = sorted(p.name for p in (tooling.INFRA_DIR / "envs").iterdir() if (p / "main.tf").exists())
SHAPES = ["service", "function"]
# "<env>-<shape>": every environment in both shapes; the committed tfvars say "service", so "function" is
# planned with -var=deploy_as=function (what a team that switches its tfvars gets).
CASES = [f"{env}-{shape}" for env in ENVS for shape in SHAPES]
FEATURES = tooling.INFRA_DIR / "compliance"
FUNCTION_ONLY = {
    'module.imagegen.google_project_iam_member.build_function_deploy["roles/run.builder"]',
    'module.imagegen.google_project_iam_member.build_function_deploy["roles/run.sourceDeveloper"]',
    'module.imagegen.google_project_iam_member.build_function_deploy["roles/serviceusage.serviceUsageConsumer"]',
    "module.imagegen.google_service_account_iam_member.build_acts_as_itself[0]",
}


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> dict[str, terraform_run.Plans]:
    def run(case: str) -> terraform_run.Plans:
        env, shape = case.split("-")
        env_dir = terraform_run.copy_infra(tmp_path_factory.mktemp(case)) / "envs" / env
        result = terraform_run.validate(env_dir)
        assert result.returncode == 0, result.stdout + result.stderr
        return terraform_run.plan_twice(env_dir, [] if shape == "service" else [f"deploy_as={shape}"])

    terraform_run.provider.cli_config()  # build caches once, before the environments run side by side
    with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        return dict(zip(CASES, pool.map(run, CASES), strict=True))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _service(doc: dict) -> dict:
    [service] = [c for c in doc["resource_changes"] if c["type"] == "google_cloud_run_v2_service"]
    return service["change"]


def test_every_environment_is_planned_in_both_shapes(planned):
    assert ENVS == ["dev", "prod"]
    assert sorted(planned) == sorted(CASES)
    for case, plans in planned.items():
        first = _load(plans.first)
        creates = [c for c in first["resource_changes"] if c["change"]["actions"] == ["create"]]
        assert len(creates) > 30, f"{case}: {len(creates)} creates"
        assert first["configuration"]["provider_config"]["google"]["version_constraint"] == "7.31.0"
        service = _service(first)
        # computed attributes are unknown on a first plan, never invented
        assert service["after_unknown"]["uri"] is True
        assert "uri" not in service["after"]
        steady = _load(plans.steady)
        assert terraform_run.changed(steady) == [], case
        assert plans.steady.read_text().count("\n") == 0
        shape = case.split("-")[1]
        assert first["variables"]["deploy_as"]["value"] == shape
        declared = [{k: v for k, v in b.items() if k != "name"} for b in _service(steady)["after"]["build_config"]]
        assert declared == _service(first)["after"]["build_config"], case  # "name" is computed: the last build


@pytest.mark.parametrize("env", ENVS)
def test_the_function_shape_is_the_same_service_built_from_source(planned, env):
    """One google_cloud_run_v2_service either way: the function adds build_config and its build roles only."""
    service, function = (_load(planned[f"{env}-{shape}"].first) for shape in SHAPES)
    as_service, as_function = _service(service)["after"], _service(function)["after"]
    assert as_service["build_config"] == []
    [build] = as_function["build_config"]
    assert build["function_target"] == "mcp"
    account = f"imagegen-build-{env}@acme-imagegen-{env}.iam.gserviceaccount.com"
    assert build["service_account"] == f"projects/acme-imagegen-{env}/serviceAccounts/{account}"
    # same identity, environment, secrets, ingress, scaling, labels, probes: everything but build_config
    assert {k: v for k, v in as_service.items() if k != "build_config"} == {
        k: v for k, v in as_function.items() if k != "build_config"
    }
    addresses = {
        shape: {c["address"] for c in _load(planned[f"{env}-{shape}"].first)["resource_changes"]} for shape in SHAPES
    }
    assert addresses["function"] - addresses["service"] == FUNCTION_ONLY
    assert addresses["service"] <= addresses["function"]
    triggers = {
        shape: [
            c
            for c in _load(planned[f"{env}-{shape}"].first)["resource_changes"]
            if c["type"] == "google_cloudbuild_trigger"
        ]
        for shape in SHAPES
    }
    for shape, [trigger] in triggers.items():
        subs = trigger["change"]["after"]["substitutions"]
        assert subs["_DEPLOY_AS"] == shape and subs["_BASE_IMAGE"] == "python311"
        assert subs["_BUILD_SERVICE_ACCOUNT"] == f"projects/acme-imagegen-{env}/serviceAccounts/{account}"


def test_first_plan_has_members_known_only_after_apply(planned):
    """The case the features used to fail on: bindings for service accounts created in the same plan."""
    first = _load(planned["dev-service"].first)
    unknown = [c["address"] for c in first["resource_changes"] if c["change"]["after_unknown"].get("member") is True]
    assert any("build_invoker" in a for a in unknown), unknown


@pytest.mark.parametrize("which", ["first", "steady"])
@pytest.mark.parametrize("case", CASES)
def test_compliance_features_hold(planned, case, which):
    plan = getattr(planned[case], which)
    result = subprocess.run(
        [tooling.terraform_compliance_binary(), "--no-ansi", "-f", str(FEATURES), "-p", str(plan)],
        capture_output=True,
        text=True,
        env=tooling.tool_env(),
        timeout=600,
        check=False,
    )
    summary = [line for line in result.stdout.splitlines() if " scenarios (" in line]
    assert result.returncode == 0 and summary and "failed" not in summary[-1], result.stdout[-4000:]


@pytest.mark.parametrize("which", ["first", "steady"])
@pytest.mark.parametrize("case", CASES)
def test_plan_checks_hold(planned, case, which):
    plan = getattr(planned[case], which)
    result = subprocess.run(
        [sys.executable, str(FEATURES / "plan_checks.py"), str(plan), "--deploy-as", case.split("-")[1]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _plan_checks(plan: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FEATURES / "plan_checks.py"), str(plan), *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_plan_checks_refuse_a_pipeline_deploying_the_other_shape(planned, shape):
    other = next(s for s in SHAPES if s != shape)
    result = _plan_checks(planned[f"dev-{shape}"].first, "--deploy-as", other)
    assert result.returncode == 1, result.stderr
    assert f"the pipeline deploys '{other}' but the plan's deploy_as is '{shape}'" in result.stderr


def test_plan_checks_refuse_a_service_whose_shape_is_not_deploy_as(planned, tmp_path):
    doc = _load(planned["dev-function"].first)
    doc["variables"]["deploy_as"]["value"] = "service"  # a function-shaped service planned as "service"
    tampered = tmp_path / "plan.json"
    tampered.write_text(json.dumps(doc))
    result = _plan_checks(tampered)
    assert result.returncode == 1 and "deploy_as=service but the service has a build_config" in result.stderr
    doc = _load(planned["dev-service"].first)
    doc["variables"]["deploy_as"]["value"] = "function"
    tampered.write_text(json.dumps(doc))
    result = _plan_checks(tampered)
    assert result.returncode == 1 and "deploy_as=function needs build_config" in result.stderr


def test_plan_checks_refuse_an_unknown_member_that_is_not_a_service_account_here(planned, tmp_path):
    doc = _load(planned["dev-service"].first)
    module = doc["configuration"]["root_module"]["module_calls"]["imagegen"]["module"]
    address = "google_cloud_run_v2_service_iam_member.build_invoker"
    invoker = next(r for r in module["resources"] if r["address"] == address)
    invoker["expressions"]["member"]["references"] = ["google_cloud_run_v2_service.this.uri"]
    tampered = tmp_path / "plan.json"
    tampered.write_text(json.dumps(doc))
    result = subprocess.run(
        [sys.executable, str(FEATURES / "plan_checks.py"), str(tampered)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1 and "build_invoker" in result.stderr, result.stderr


def _service_env(doc: dict) -> dict[str, str]:
    resources = doc["planned_values"]["root_module"]["child_modules"][0]["resources"]
    service = next(r for r in resources if r["type"] == "google_cloud_run_v2_service")
    return {e["name"]: e.get("value") for e in service["values"]["template"][0]["containers"][0]["env"]}


def test_google_oauth_mode_passes_the_client_id_and_may_be_public(tmp_path):
    infra = terraform_run.copy_infra(tmp_path)
    env_dir = infra / "envs" / "dev"
    overrides = env_dir / "oauth.auto.tfvars"
    overrides.write_text(
        'auth_mode = "google-oauth,bearer"\nallow_public_invoker = true\n'
        'oauth_client_id = "123456789012-abc123.apps.googleusercontent.com"\n'
    )
    assert terraform_run.validate(env_dir).returncode == 0
    (env_dir / "backend_override.tf").write_text(terraform_run.BACKEND_OVERRIDE)
    terraform_run.terraform(env_dir, "init", "-input=false", "-reconfigure")
    path, doc = terraform_run._plan(env_dir, "oauth")
    env = _service_env(doc)
    assert env["IMAGEGEN_AUTH"] == "google-oauth,bearer"
    assert env["IMAGEGEN_OAUTH_CLIENT_ID"] == "123456789012-abc123.apps.googleusercontent.com"
    assert env["IMAGEGEN_IAM_CLOUD_RUN_ENFORCED"] == "false"
    changes = {c["address"] for c in doc["resource_changes"]}
    assert "module.imagegen.google_cloud_run_v2_service_iam_member.public_invoker[0]" in changes
    checks = subprocess.run(
        [sys.executable, str(FEATURES / "plan_checks.py"), str(path)], capture_output=True, text=True
    )
    assert checks.returncode == 0, checks.stderr

    for tfvars, message in (
        ('auth_mode = "google-oauth"\n', "needs oauth_client_id"),
        ('auth_mode = "iam,bearer"\nallow_public_invoker = true\n', "never public"),
        ('auth_mode = "bearer,bearer"\n', "without repeats"),
        ('auth_mode = "none,bearer"\n', "must be"),
        ('auth_mode = "iam"\noauth_client_id = "not-a-client"\n', "apps.googleusercontent.com"),
    ):
        overrides.write_text(tfvars)
        result = terraform_run.terraform(env_dir, "plan", "-input=false", "-lock=false", check=False)
        assert result.returncode != 0, tfvars
        assert message in " ".join((result.stdout + result.stderr).split()), result.stdout + result.stderr


# Each seeded mutation of the module: (file, text, replacement, an error Terraform must print).
NOT_EXPECTED = 'An argument named "{}" is not expected here'
SEEDED = {
    "misspelt_argument": ("main.tf", "  display_name = ", "  display_nam = ", NOT_EXPECTED.format("display_nam")),
    "missing_required_argument": ("run.tf", "  location", "  # location", 'The argument "location" is required'),
    "wrong_block_shape": ("run.tf", "    scaling {", "    scaling = {", NOT_EXPECTED.format("scaling")),
    # inside the function shape's dynamic block, which the committed tfvars (service) never expand
    "misspelt_function_argument": (
        "run.tf",
        "      function_target = build_config",
        "      function_targt = build_config",
        NOT_EXPECTED.format("function_targt"),
    ),
}


@pytest.mark.parametrize("case", sorted(SEEDED))
def test_a_seeded_broken_module_fails_validate(tmp_path, case):
    file, old, new, message = SEEDED[case]
    infra = terraform_run.copy_infra(tmp_path)
    target = infra / "modules" / "imagegen_service" / file
    text = target.read_text()
    assert old in text, f"seed {case} no longer applies to {file}"
    target.write_text(text.replace(old, new, 1))
    result = terraform_run.validate(infra / "envs" / "dev")
    assert result.returncode != 0, f"{case} validated:\n{result.stdout}"
    assert message in " ".join((result.stdout + result.stderr).split()), result.stdout + result.stderr


def test_an_unknown_shape_is_refused_by_the_variable_validation(tmp_path):
    env_dir = terraform_run.copy_infra(tmp_path) / "envs" / "dev"
    (env_dir / "backend_override.tf").write_text(terraform_run.BACKEND_OVERRIDE)
    terraform_run.terraform(env_dir, "init", "-input=false")
    result = terraform_run.terraform(
        env_dir, "plan", "-input=false", "-lock=false", "-var=deploy_as=lambda", check=False
    )
    assert result.returncode != 0
    assert 'deploy_as must be "service" or "function"' in " ".join(result.stderr.split()), result.stderr


def test_the_stand_in_refuses_to_apply(tmp_path):
    env_dir = terraform_run.copy_infra(tmp_path) / "envs" / "dev"
    (env_dir / "backend_override.tf").write_text(terraform_run.BACKEND_OVERRIDE)
    terraform_run.terraform(env_dir, "init", "-input=false")
    target = "module.imagegen.google_service_account.runtime"
    result = terraform_run.terraform(
        env_dir, "apply", "-auto-approve", "-input=false", "-lock=false", f"-target={target}", check=False
    )
    assert result.returncode != 0
    assert "apply refused" in result.stdout + result.stderr, result.stdout[-2000:] + result.stderr
    assert "never changes a cloud" in " ".join((result.stdout + result.stderr).split())
