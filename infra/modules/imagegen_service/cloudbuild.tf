# ---------------------------------------------------------------------------
# Cloud Build trigger of this environment
# ---------------------------------------------------------------------------
#
# One pipeline (cloudbuild.yaml at the repository root); environments differ
# only in the substitutions below (including the shape: deploy_as). The repository must already be connected
# to Cloud Build (console: Cloud Build > Triggers > Connect repository).

resource "google_cloudbuild_trigger" "deploy" {
  count = var.build_trigger.enabled ? 1 : 0

  project         = var.project_id
  location        = var.build_trigger.location
  name            = "imagegen-mcp-${var.environment}"
  description     = "Test, plan, build, deploy with no traffic, smoke test and promote imagegen-mcp in ${var.environment}"
  filename        = "cloudbuild.yaml"
  service_account = google_service_account.build.id

  github {
    owner = var.build_trigger.github_owner
    name  = var.build_trigger.github_repo

    push {
      branch = var.build_trigger.branch_regex
      tag    = var.build_trigger.tag_regex
    }
  }

  substitutions = {
    _ENV             = var.environment
    _REGION          = var.region
    _SERVICE         = local.service_name
    _REPO            = var.artifact_repository_id
    _TF_STATE_BUCKET = var.tf_state_bucket
    _AUDIENCE        = local.public_url
    _SMOKE_MODEL     = local.smoke_model
    # The shape Cloud Build deploys, from the same variable that shapes the service.
    _DEPLOY_AS             = var.deploy_as
    _BASE_IMAGE            = var.function_base_image
    _BUILD_SERVICE_ACCOUNT = local.build_service_account
  }

  depends_on = [
    google_project_service.required,
    google_project_iam_member.build_log_writer,
  ]
}
