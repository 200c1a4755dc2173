data "google_project" "this" {
  project_id = var.project_id
}

locals {
  service_name    = coalesce(var.service_name, "imagegen-mcp-${var.environment}")
  bucket_name     = coalesce(var.bucket_name, "${var.project_id}-imagegen-${var.environment}")
  bucket_location = upper(coalesce(var.bucket_location, var.region))

  # Deterministic run.app URL: known before the service exists, so the
  # service can be told its own audience without a dependency cycle.
  default_url  = "https://${local.service_name}-${data.google_project.this.number}.${var.region}.run.app"
  public_url   = coalesce(var.iam_audience, local.default_url)
  smoke_model  = var.smoke_test_model != null ? var.smoke_test_model : (var.enable_placeholder ? "local/placeholder" : "")
  registry_url = "${var.region}-docker.pkg.dev/${var.project_id}/${var.artifact_repository_id}"

  labels = merge(var.labels, {
    app         = "imagegen-mcp"
    environment = var.environment
    managed-by  = "terraform"
  })

  # Secret purpose -> secret id. Only containers are managed here: values are
  # added out of band (gcloud secrets versions add) and never enter state.
  secret_ids = {
    openai     = var.secret_ids.openai
    openrouter = var.secret_ids.openrouter
    replicate  = var.secret_ids.replicate
    gemini     = var.secret_ids.gemini
    api_keys   = var.secret_ids.api_keys
  }

  # The app's own check (IMAGEGEN_IAM_ALLOWED_PRINCIPALS) compares token
  # e-mails. Groups, domains and workload identities are not visible in an ID
  # token, so when any is listed the app-level list stays empty and Cloud Run
  # IAM (roles/run.invoker) alone decides who gets in.
  invoker_emails = [for m in var.invoker_principals : split(":", m)[1] if startswith(m, "user:") || startswith(m, "serviceAccount:")]
  only_emails    = length(local.invoker_emails) == length(var.invoker_principals)
  allowed_emails = local.only_emails ? distinct(concat(local.invoker_emails, [google_service_account.build.email])) : []
  audiences      = distinct(concat([local.public_url], var.custom_audiences))

  required_apis = toset([
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudtasks.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
  ])
}

# ---------------------------------------------------------------------------
# APIs
# ---------------------------------------------------------------------------

resource "google_project_service" "required" {
  for_each = local.required_apis

  project = var.project_id
  service = each.value

  # Other workloads in the project may use the same APIs.
  disable_on_destroy         = false
  disable_dependent_services = false
}

# ---------------------------------------------------------------------------
# Runtime service account: dedicated, never the default compute account
# ---------------------------------------------------------------------------

resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = substr("imagegen-run-${var.environment}", 0, 30)
  display_name = "imagegen-mcp runtime (${var.environment})"
  description  = "Identity of the imagegen-mcp Cloud Run service in ${var.environment}: Vertex AI, its output bucket, its secrets."

  depends_on = [google_project_service.required]
}

# Vertex AI generate_content for Gemini image models. aiplatform.user is the
# narrowest predefined role that allows prediction.
resource "google_project_iam_member" "runtime_vertex" {
  project = var.project_id
  role    = "roles/aiplatform.user"
  member  = google_service_account.runtime.member
}

# V4 signed URLs are signed through IAM signBlob: the runtime has no private
# key, so it needs Token Creator on ITSELF only (not project-wide).
resource "google_service_account_iam_member" "runtime_self_token_creator" {
  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.runtime.member
}

# ---------------------------------------------------------------------------
# Build service account: one per environment, used by its Cloud Build trigger
# ---------------------------------------------------------------------------

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = substr("imagegen-build-${var.environment}", 0, 30)
  display_name = "imagegen-mcp Cloud Build (${var.environment})"
  description  = "Runs cloudbuild.yaml for ${var.environment}: tests, terraform plan, image push, no-traffic deploy, smoke test, traffic shift."

  depends_on = [google_project_service.required]
}

# Deploy revisions and move traffic; run.developer cannot change IAM policy.
resource "google_project_iam_member" "build_run_developer" {
  project = var.project_id
  role    = "roles/run.developer"
  member  = google_service_account.build.member
}

resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

# Read-only roles that terraform plan needs to refresh this module.
resource "google_project_iam_member" "build_plan" {
  for_each = toset(var.build_plan_roles)

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

# Deploying a revision that runs as the runtime account needs actAs on that
# one account only.
resource "google_service_account_iam_member" "build_acts_as_runtime" {
  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.build.member
}

# Function shape only (deploy_as = "function"): `gcloud run deploy --source` uploads
# function/ and starts a build (roles/run.sourceDeveloper and
# roles/serviceusage.serviceUsageConsumer, the roles Google documents for a source
# deployer), the build runs as this same account (--build-service-account;
# roles/run.builder: push to Artifact Registry, read the uploaded source, write logs),
# and naming an account as a build's identity needs actAs on it (below, on itself only).
resource "google_project_iam_member" "build_function_deploy" {
  #checkov:skip=CKV_GCP_49:roles/run.sourceDeveloper is the role Google documents for source deploys and exists only at project level; granted only with deploy_as = "function", to this environment's build account.
  for_each = toset(var.deploy_as == "function" ? ["roles/run.sourceDeveloper", "roles/serviceusage.serviceUsageConsumer", "roles/run.builder"] : [])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

resource "google_service_account_iam_member" "build_acts_as_itself" {
  count = var.deploy_as == "function" ? 1 : 0

  service_account_id = google_service_account.build.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.build.member
}

# Terraform state (read for plan, lock file write).
resource "google_storage_bucket_iam_member" "build_tf_state" {
  bucket = var.tf_state_bucket
  role   = "roles/storage.objectAdmin"
  member = google_service_account.build.member
}
