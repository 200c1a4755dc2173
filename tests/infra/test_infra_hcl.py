"""Structural tests: the security settings of issue 6, asserted on the parsed Terraform (python-hcl2).

These run without any cloud or provider download; `terraform validate/plan` and the
terraform-compliance features on the real plan only run in Cloud Build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "infra" / "modules" / "imagegen_service"
ENVS = REPO / "infra" / "envs"
ENV_NAMES = ["dev", "prod"]


def _unquote(value: Any) -> Any:
    """python-hcl2 8 keeps quotes around strings and keys; 7 does not. Normalise both."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    return value


def _load_dir(path: Path) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for tf in sorted(path.glob("*.tf")):
        with tf.open() as f:
            parsed = _unquote(hcl2.load(f))
        for key, blocks in parsed.items():
            merged.setdefault(key, []).extend(blocks)
    return merged


def _raw(path: Path) -> str:
    return "\n".join(tf.read_text() for tf in sorted(path.glob("*.tf")))


@pytest.fixture(scope="module")
def module() -> dict[str, list[Any]]:
    return _load_dir(MODULE)


def resources(cfg: dict[str, list[Any]], rtype: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for block in cfg.get("resource", []):
        for name, body in block.get(rtype, {}).items():
            found[name] = body
    return found


def one(cfg: dict[str, list[Any]], rtype: str) -> dict[str, Any]:
    found = resources(cfg, rtype)
    assert len(found) == 1, f"expected exactly one {rtype}, got {sorted(found)}"
    return next(iter(found.values()))


def variables(cfg: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    return {name: body for block in cfg.get("variable", []) for name, body in block.items()}


def first(value: Any) -> Any:
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


# --- variables ---------------------------------------------------------------------------------------


def test_every_module_and_env_variable_is_described(module):
    for cfg, where in [(module, "module")] + [(_load_dir(ENVS / e), e) for e in ENV_NAMES]:
        for name, body in variables(cfg).items():
            assert body.get("description"), f"{where}: variable {name} has no description"
            assert "type" in body, f"{where}: variable {name} has no type"


def test_module_validates_every_variable_where_it_makes_sense(module):
    unvalidated_ok = {
        "deletion_protection",
        "enable_placeholder",
        "custom_audiences",
        "bucket_location",
        "create_artifact_repository",
        "smoke_test_model",
    }
    for name, body in variables(module).items():
        if name in unvalidated_ok:
            continue
        assert body.get("validation"), f"module variable {name} has no validation block"


def test_retention_is_bounded_by_a_maximum(module):
    body = variables(module)["retention_days"]
    condition = first(first(body["validation"])["condition"])
    assert "var.retention_days <= 30" in condition


def test_max_instances_is_bounded(module):
    condition = first(first(variables(module)["max_instances"]["validation"])["condition"])
    assert "var.max_instances <= 100" in condition


def test_auth_mode_never_allows_none(module):
    condition = first(first(variables(module)["auth_mode"]["validation"])["condition"])
    assert '"iam"' in condition and '"bearer"' in condition and '"google-oauth"' in condition
    assert "none" not in condition and "distinct(" in condition


def test_public_invoker_requires_bearer_mode_in_validation(module):
    condition = first(first(variables(module)["allow_public_invoker"]["validation"])["condition"])
    assert '!contains(split(",", var.auth_mode), "iam")' in condition
    assert variables(module)["allow_public_invoker"]["default"] is False


def test_invoker_principals_refuse_public_members(module):
    condition = first(first(variables(module)["invoker_principals"]["validation"])["condition"])
    assert "allUsers" not in condition and "user|group|serviceAccount" in condition


# --- bucket ------------------------------------------------------------------------------------------


def test_bucket_is_private_uniform_and_expires(module):
    bucket = one(module, "google_storage_bucket")
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket.get("force_destroy") is False
    rule = bucket["lifecycle_rule"][0]  # the outputs rule (the uploads rule follows)
    assert first(first(rule["action"])["type"]) == "Delete"
    assert first(first(rule["condition"])["age"]) == "${var.retention_days}"


def test_uploads_have_their_own_shorter_lifecycle_rule(module):
    bucket = one(module, "google_storage_bucket")
    rules = [first(first(rule["condition"])["age"]) for rule in bucket["lifecycle_rule"]]
    assert rules == ["${var.retention_days}", "${var.upload_retention_days}"]
    uploads = bucket["lifecycle_rule"][1]
    assert first(first(uploads["condition"])["matches_prefix"]) == "uploads/"
    assert first(first(uploads["action"])["type"]) == "Delete"
    variable = variables(module)["upload_retention_days"]
    assert first(variable["default"]) == 1
    assert "var.upload_retention_days <= 30" in first(first(variable["validation"])["condition"])


def test_bucket_cors_is_optional(module):
    bucket = one(module, "google_storage_bucket")
    dynamic = first(bucket["dynamic"])
    assert "cors" in dynamic
    assert "length(var.cors_origins) > 0" in dynamic["cors"]["for_each"]


def test_runtime_has_object_admin_on_the_output_bucket_only(module):
    grants = resources(module, "google_storage_bucket_iam_member")
    runtime = [g for g in grants.values() if "google_service_account.runtime.member" in g["member"]]
    assert len(runtime) == 1
    assert runtime[0]["role"] == "roles/storage.objectAdmin"
    assert runtime[0]["bucket"] == "${google_storage_bucket.outputs.name}"
    for grant in resources(module, "google_project_iam_member").values():
        assert not grant["role"].startswith("roles/storage."), "no project-wide storage roles"


# --- identities and IAM ------------------------------------------------------------------------------


def test_runtime_service_account_is_dedicated(module):
    sa = resources(module, "google_service_account")
    assert {"runtime", "build"} <= set(sa)
    service = one(module, "google_cloud_run_v2_service")
    assert first(service["template"])["service_account"] == "${google_service_account.runtime.email}"
    assert "compute@developer" not in _raw(MODULE)


def test_runtime_project_roles_are_only_vertex_user_and_its_own_firestore_database(module):
    grants = [
        g
        for g in resources(module, "google_project_iam_member").values()
        if "google_service_account.runtime.member" in g["member"]
    ]
    assert sorted(g["role"] for g in grants) == ["roles/aiplatform.user", "roles/datastore.user"]
    [firestore] = [g for g in grants if g["role"] == "roles/datastore.user"]
    condition = first(firestore["condition"])
    assert "local.firestore_database_id" in condition["expression"], "Firestore access is limited to the jobs database"


def test_token_creator_is_on_the_runtime_account_itself(module):
    grants = resources(module, "google_service_account_iam_member")
    tc = [g for g in grants.values() if g["role"] == "roles/iam.serviceAccountTokenCreator"]
    assert len(tc) == 1
    assert tc[0]["service_account_id"] == "${google_service_account.runtime.name}"
    assert tc[0]["member"] == "${google_service_account.runtime.member}"


def test_secret_accessor_is_per_secret_never_project_wide(module):
    accessor = resources(module, "google_secret_manager_secret_iam_member")
    assert len(accessor) == 1
    body = next(iter(accessor.values()))
    assert body["role"] == "roles/secretmanager.secretAccessor"
    assert body["for_each"] == "${google_secret_manager_secret.this}"
    for grant in resources(module, "google_project_iam_member").values():
        assert "secretmanager" not in grant["role"] or grant["role"] == "roles/secretmanager.viewer"
    for role in variables(module)["build_plan_roles"]["default"]:
        assert role != "roles/secretmanager.secretAccessor"


def test_no_basic_roles_anywhere(module):
    text = _raw(MODULE)
    for basic in ("roles/owner", "roles/editor"):
        assert f'"{basic}"' not in text.replace('["roles/owner", "roles/editor", "roles/viewer"]', "")


# --- secrets -----------------------------------------------------------------------------------------


def test_secrets_are_containers_only(module):
    assert not resources(module, "google_secret_manager_secret_version"), "no secret values in Terraform"
    secret = one(module, "google_secret_manager_secret")
    # Automatic replication unless secret_replica_locations names regions (then user-managed replicas there).
    blocks = {name: body for block in first(secret["replication"])["dynamic"] for name, body in block.items()}
    assert blocks["auto"]["for_each"] == "${length(var.secret_replica_locations) == 0 ? [1] : []}"
    assert blocks["user_managed"]["for_each"] == "${length(var.secret_replica_locations) == 0 ? [] : [1]}"
    for env in ENV_NAMES:
        assert "secret_version" not in _raw(ENVS / env)
        assert "secret_data" not in _raw(ENVS / env)
    defaults = variables(module)["secret_ids"]["type"]
    for default in (
        "imagegen-openai-api-key",
        "imagegen-openrouter-api-key",
        "imagegen-replicate-api-token",
        "imagegen-gemini-api-key",
        "imagegen-api-keys",
    ):
        assert default in defaults


# --- Cloud Run ---------------------------------------------------------------------------------------


def test_cloud_run_service_shape(module):
    service = one(module, "google_cloud_run_v2_service")
    template = first(service["template"])
    assert service["ingress"] == "${var.ingress}"
    assert template["max_instance_request_concurrency"] == "${var.max_concurrency}"
    assert template["timeout"] == "${var.request_timeout_seconds}s"
    scaling = first(template["scaling"])
    assert scaling["min_instance_count"] == "${var.min_instances}"
    assert scaling["max_instance_count"] == "${var.max_instances}"
    container = first(template["containers"])
    assert container["image"] == "${var.image}"
    limits = first(container["resources"])["limits"]
    assert limits == {"cpu": "${var.cpu}", "memory": "${var.memory}"}


def test_cloud_build_owns_the_image(module):
    service = one(module, "google_cloud_run_v2_service")
    ignored = [str(x) for x in first(service["lifecycle"])["ignore_changes"]]
    joined = " ".join(ignored)
    for needle in ("template[0].containers[0].image", "client", "client_version"):
        assert needle in joined, f"ignore_changes lacks {needle}: {ignored}"
    # function shape: what each source deploy sets belongs to the deploy as the image does
    for needle in (
        "template[0].containers[0].base_image_uri",
        "build_config[0].source_location",
        "build_config[0].image_uri",
        "build_config[0].base_image",
    ):
        assert needle in joined, f"ignore_changes lacks {needle}: {ignored}"
    # ... but never the entry point or the build account: those are the shape Terraform owns
    assert "function_target" not in joined and "build_config[0].service_account" not in joined


def test_both_shapes_are_the_one_service(module):
    """deploy_as only adds the build_config block (Cloud Run functions); no second service, no copied blocks."""
    service = one(module, "google_cloud_run_v2_service")
    [dynamic] = service["dynamic"]
    assert dynamic["build_config"]["for_each"] == "${local.function_build}"
    deploy_as = variables(module)["deploy_as"]
    assert deploy_as["default"] == "service"
    condition = first(first(deploy_as["validation"])["condition"])
    assert '"service"' in condition and '"function"' in condition
    assert not resources(module, "google_cloudfunctions2_function")


def test_service_environment_contract():
    text = (MODULE / "run.tf").read_text()
    for name in (
        "IMAGEGEN_STORAGE",
        "IMAGEGEN_BUCKET",
        "IMAGEGEN_URL_TTL_SECONDS",
        "IMAGEGEN_RETENTION_DAYS",
        "IMAGEGEN_SECRETS",
        "IMAGEGEN_SECRET_PROJECT",
        "IMAGEGEN_OPENAI_KEY_SECRET",
        "IMAGEGEN_OPENROUTER_KEY_SECRET",
        "IMAGEGEN_REPLICATE_KEY_SECRET",
        "IMAGEGEN_GEMINI_KEY_SECRET",
        "IMAGEGEN_API_KEYS_SECRET",
        "IMAGEGEN_AUTH",
        "IMAGEGEN_IAM_AUDIENCE",
        "IMAGEGEN_IAM_ALLOWED_PRINCIPALS",
        "IMAGEGEN_PUBLIC_URL",
        "IMAGEGEN_DEFAULT_MODEL",
        "IMAGEGEN_ENABLE_PLACEHOLDER",
        "IMAGEGEN_REQUEST_DEADLINE_SECONDS",
        "IMAGEGEN_SHUTDOWN_GRACE_SECONDS",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
    ):
        assert re.search(rf"\b{name}\s*=", text), f"{name} not set on the service"
    assert 'IMAGEGEN_STORAGE                  = "gcs"' in text
    # The smoke test calls the revision's tag URL, which the app's Host guard must allow.
    assert re.search(r'IMAGEGEN_ALLOWED_HOSTS\s*=\s*"\*---\$\{local\.service_name\}-\*\.run\.app"', text)
    assert 'IMAGEGEN_SECRETS                  = "secret-manager"' in text
    # The documented retention is the lifecycle age: both come from the same variable.
    assert re.search(r"IMAGEGEN_RETENTION_DAYS\s*=\s*tostring\(var\.retention_days\)", text)
    assert re.search(r"IMAGEGEN_REQUEST_DEADLINE_SECONDS\s*=\s*tostring\(var\.request_deadline_seconds\)", text)
    # The app sizes its decoded-image budget from the instance memory Terraform gives the container.
    assert re.search(r"IMAGEGEN_MEMORY_LIMIT_MB\s*=\s*tostring\(local\.memory_mb\)", text)
    assert re.search(r'memory_mb\s*=\s*endswith\(var\.memory, "Gi"\)', text)


def test_deadline_stays_below_request_timeout(module):
    condition = first(first(variables(module)["request_deadline_seconds"]["validation"])["condition"])
    assert "var.request_deadline_seconds < var.request_timeout_seconds" in condition


def test_invokers_are_named_and_public_only_in_explicit_bearer_mode(module):
    members = resources(module, "google_cloud_run_v2_service_iam_member")
    assert members["invoker"]["role"] == "roles/run.invoker"
    assert members["invoker"]["for_each"] == "${toset(var.invoker_principals)}"
    public = members["public_invoker"]
    assert public["member"] == "allUsers"
    assert public["count"] == '${!contains(local.auth_modes, "iam") && var.allow_public_invoker ? 1 : 0}'
    for name, body in members.items():
        if name != "public_invoker":
            assert body["member"] not in ("allUsers", "allAuthenticatedUsers")
    assert "allAuthenticatedUsers" not in (MODULE / "run.tf").read_text().replace(
        "allUsers or allAuthenticatedUsers", ""
    )


def test_required_apis_are_enabled(module):
    text = (MODULE / "main.tf").read_text()
    for api in ("run", "artifactregistry", "secretmanager", "aiplatform", "iamcredentials", "storage", "cloudbuild"):
        assert f'"{api}.googleapis.com"' in text
    assert one(module, "google_project_service")["disable_on_destroy"] is False


def test_artifact_registry_docker_repository(module):
    repo = one(module, "google_artifact_registry_repository")
    assert repo["format"] == "DOCKER"


def test_build_trigger_has_its_own_service_account(module):
    trigger = one(module, "google_cloudbuild_trigger")
    assert trigger["service_account"] == "${google_service_account.build.id}"
    assert trigger["filename"] == "cloudbuild.yaml"
    subs = trigger["substitutions"]
    for key in ("_ENV", "_REGION", "_SERVICE", "_REPO", "_TF_STATE_BUCKET"):
        assert key in subs


def test_outputs(module):
    outputs = {name for block in module.get("output", []) for name in block}
    assert {"service_url", "mcp_url", "bucket", "service_account_email"} <= outputs
    for env in ENV_NAMES:
        env_outputs = {name for block in _load_dir(ENVS / env).get("output", []) for name in block}
        assert {"service_url", "mcp_url", "bucket", "service_account_email"} <= env_outputs


# --- environment roots -------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENV_NAMES)
def test_env_root_has_gcs_backend_and_pinned_provider(env):
    cfg = _load_dir(ENVS / env)
    terraform_blocks = cfg["terraform"]
    backends = [b["backend"] for b in terraform_blocks if "backend" in b]
    assert backends, f"{env}: no backend block"
    backend = first(backends[0])
    assert "gcs" in backend and first(backend["gcs"])["prefix"] == f"imagegen-mcp/{env}"
    providers = [b["required_providers"] for b in terraform_blocks if "required_providers" in b]
    google = first(first(providers[0]))["google"]
    assert google["source"] == "hashicorp/google"
    assert re.fullmatch(r"= ?\d+\.\d+\.\d+", google["version"]), f"{env}: provider not pinned: {google['version']}"
    assert (ENVS / env / "versions.tf").exists()


@pytest.mark.parametrize("env", ENV_NAMES)
def test_env_root_calls_the_module_with_its_own_tfvars(env):
    cfg = _load_dir(ENVS / env)
    module_call = first(cfg["module"])["imagegen"]
    assert module_call["source"] == "../../modules/imagegen_service"
    assert module_call["environment"] == env
    with (ENVS / env / "terraform.tfvars").open() as f:
        tfvars = _unquote(hcl2.load(f))
    assert set(tfvars["auth_mode"].split(",")) <= {"iam", "bearer", "google-oauth"}
    assert 1 <= tfvars["retention_days"] <= 30
    assert 1 <= tfvars["max_instances"] <= 100
    if "iam" in tfvars["auth_mode"].split(","):
        assert tfvars["allow_public_invoker"] is False
    for member in tfvars.get("invoker_principals", []):
        assert member not in ("allUsers", "allAuthenticatedUsers")


def test_dev_enables_placeholder_for_the_smoke_test_and_prod_does_not():
    with (ENVS / "dev" / "terraform.tfvars").open() as f:
        dev = _unquote(hcl2.load(f))
    with (ENVS / "prod" / "terraform.tfvars").open() as f:
        prod = _unquote(hcl2.load(f))
    assert dev["enable_placeholder"] is True
    assert prod["enable_placeholder"] is False
    assert prod["deletion_protection"] is True
