# ---------------------------------------------------------------------------
# Cloud Run service: Terraform owns its shape, Cloud Build owns its image
# ---------------------------------------------------------------------------
#
# Both serverless shapes (var.deploy_as) are this ONE google_cloud_run_v2_service:
# Cloud Run functions are Cloud Run services whose revisions are built from source
# (the provider's build_config block describes that build). "service" deploys the Dockerfile's
# image; "function" adds build_config and Cloud Build deploys function/ with
# `gcloud run deploy --source function --function mcp`. Identity, environment,
# secrets, IAM, ingress, scaling, labels and URL are therefore shared, not copied.

locals {
  auth_modes = split(",", var.auth_mode)

  # The instance memory in MiB ("512Mi" -> 512, "2Gi" -> 2048): the app sizes its decoded-image budget from it.
  memory_mb = endswith(var.memory, "Gi") ? tonumber(trimsuffix(var.memory, "Gi")) * 1024 : tonumber(trimsuffix(var.memory, "Mi"))

  # The app's public configuration contract (see the root README). Secrets are
  # passed as references (secret ids); the app reads their values itself.
  # IMAGEGEN_ALLOWED_HOSTS: revision tag URLs (c-<sha>---<service>-<hash>.<region>.run.app)
  # are what the pipeline's smoke test calls; the app's Host guard must accept them.
  service_env = merge(
    {
      IMAGEGEN_STORAGE                  = "gcs"
      IMAGEGEN_BUCKET                   = google_storage_bucket.outputs.name
      IMAGEGEN_URL_TTL_SECONDS          = tostring(var.url_ttl_seconds)
      IMAGEGEN_RETENTION_DAYS           = tostring(var.retention_days)
      IMAGEGEN_UPLOAD_RETENTION_DAYS    = tostring(var.upload_retention_days)
      IMAGEGEN_SECRETS                  = "secret-manager"
      IMAGEGEN_SECRET_PROJECT           = var.project_id
      IMAGEGEN_OPENAI_KEY_SECRET        = local.secret_ids.openai
      IMAGEGEN_OPENROUTER_KEY_SECRET    = local.secret_ids.openrouter
      IMAGEGEN_REPLICATE_KEY_SECRET     = local.secret_ids.replicate
      IMAGEGEN_GEMINI_KEY_SECRET        = local.secret_ids.gemini
      IMAGEGEN_API_KEYS_SECRET          = local.secret_ids.api_keys
      IMAGEGEN_AUTH                     = var.auth_mode
      IMAGEGEN_IAM_AUDIENCE             = join(",", local.audiences)
      IMAGEGEN_IAM_CLOUD_RUN_ENFORCED   = tostring(contains(local.auth_modes, "iam"))
      IMAGEGEN_PUBLIC_URL               = local.public_url
      IMAGEGEN_ALLOWED_HOSTS            = "*---${local.service_name}-*.run.app"
      IMAGEGEN_ENABLE_PLACEHOLDER       = tostring(var.enable_placeholder)
      IMAGEGEN_REQUEST_DEADLINE_SECONDS = tostring(var.request_deadline_seconds)
      IMAGEGEN_SHUTDOWN_GRACE_SECONDS   = tostring(var.shutdown_grace_seconds)
      IMAGEGEN_MEMORY_LIMIT_MB          = tostring(local.memory_mb)
      GOOGLE_CLOUD_PROJECT              = var.project_id
      GOOGLE_CLOUD_LOCATION             = var.vertex_location
    },
    var.default_model == null ? {} : { IMAGEGEN_DEFAULT_MODEL = var.default_model },
    length(local.allowed_emails) == 0 ? {} : { IMAGEGEN_IAM_ALLOWED_PRINCIPALS = join(",", local.allowed_emails) },
    var.oauth_client_id == null ? {} : { IMAGEGEN_OAUTH_CLIENT_ID = var.oauth_client_id },
    local.jobs_env,
  )

  # Function shape: what Terraform declares of the build (the entry point in function/main.py, built as the
  # environment's build account). build_config does not start a build: Cloud Build's deploy step does, and
  # it sets the source, image and resolved base image of every revision (ignored below).
  # The build account's resource name spelt out from its account_id (what Google makes of it) rather than
  # its computed id, so a first-ever plan already shows (and the compliance features check) which account builds.
  function_target       = "mcp"
  build_service_account = "projects/${var.project_id}/serviceAccounts/${google_service_account.build.account_id}@${var.project_id}.iam.gserviceaccount.com"
  function_build        = var.deploy_as == "function" ? [{ function_target = local.function_target, service_account = local.build_service_account }] : []
}

resource "google_cloud_run_v2_service" "this" {
  project             = var.project_id
  name                = local.service_name
  location            = var.region
  description         = "imagegen-mcp remote MCP server (${var.environment})"
  ingress             = var.ingress
  labels              = local.labels
  deletion_protection = var.deletion_protection
  custom_audiences    = var.custom_audiences

  dynamic "build_config" {
    for_each = local.function_build
    content {
      function_target = build_config.value.function_target
      service_account = build_config.value.service_account
    }
  }

  template {
    service_account                  = google_service_account.runtime.email
    timeout                          = "${var.request_timeout_seconds}s"
    max_instance_request_concurrency = var.max_concurrency
    labels                           = local.labels

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.service_env
        content {
          name  = env.key
          value = env.value
        }
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 2
        failure_threshold = 15
        timeout_seconds   = 2
      }

      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds  = 30
        timeout_seconds = 5
      }
    }
  }

  lifecycle {
    # Cloud Build deploys new images (gcloud run deploy) and moves traffic
    # between tagged revisions, which also stamps client/client_version.
    # Ignoring these keeps `terraform apply` from rolling an image back.
    # Function shape: each source deploy also sets the uploaded source, the
    # built image, the base image it resolved from --base-image and automatic
    # updates; those belong to the deploy as the image does (unset for "service").
    ignore_changes = [
      template[0].containers[0].image,
      template[0].containers[0].base_image_uri,
      build_config[0].source_location,
      build_config[0].image_uri,
      build_config[0].base_image,
      build_config[0].enable_automatic_updates,
      client,
      client_version,
      traffic,
    ]

    precondition {
      condition     = !var.allow_public_invoker || !contains(local.auth_modes, "iam")
      error_message = "allow_public_invoker requires an auth_mode of bearer and/or google-oauth."
    }

    precondition {
      condition     = !contains(local.auth_modes, "google-oauth") || var.oauth_client_id != null
      error_message = "auth_mode google-oauth needs oauth_client_id (the OAuth client registered in Google Cloud)."
    }
  }

  depends_on = [
    google_project_service.required,
    google_secret_manager_secret_iam_member.runtime_accessor,
    google_storage_bucket_iam_member.runtime_objects,
    google_service_account_iam_member.runtime_self_token_creator,
  ]
}

# ---------------------------------------------------------------------------
# Who may invoke
# ---------------------------------------------------------------------------

# IAM mode (and bearer mode behind Google identities): named principals only.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = toset(var.invoker_principals)

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

# The pipeline's smoke test calls the new tagged revision with its own ID token.
resource "google_cloud_run_v2_service_iam_member" "build_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = google_service_account.build.member
}

# Public endpoint ONLY when the app's own checks (bearer keys, Google sign-in)
# protect it and the caller opted in explicitly; never in IAM mode (the
# variable validation refuses it too).
resource "google_cloud_run_v2_service_iam_member" "public_invoker" {
  #checkov:skip=CKV_IMAGEGEN_1:Created only when auth_mode lists only bearer and/or google-oauth and allow_public_invoker = true; the app then checks an API key or a Google token on every request.
  count = !contains(local.auth_modes, "iam") && var.allow_public_invoker ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
