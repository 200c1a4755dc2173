# ---------------------------------------------------------------------------
# Where
# ---------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project id that hosts the service, its bucket, secrets, registry and build triggers."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid project id: 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the Cloud Run service, the Artifact Registry repository and (by default) the output bucket, e.g. europe-west1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like a Google Cloud region, e.g. us-central1 or europe-west1."
  }
}

variable "environment" {
  description = "Short environment name (dev, staging, prod, ...). Used in resource names, labels and the Cloud Build substitution _ENV."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,10}[a-z0-9]$", var.environment))
    error_message = "environment must be 2-12 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "labels" {
  description = "Extra labels put on every labelled resource (bucket, secrets, registry, service)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values may only hold lowercase letters, digits, '_' and '-' (max 63 chars)."
  }
}

# ---------------------------------------------------------------------------
# Service shape
# ---------------------------------------------------------------------------

variable "service_name" {
  description = "Name of the Cloud Run service. Defaults to imagegen-mcp-<environment> when null."
  type        = string
  default     = null

  validation {
    condition     = var.service_name == null || can(regex("^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$", var.service_name))
    error_message = "service_name must be 1-49 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "image" {
  description = "Container image of the FIRST revision only. Cloud Build owns the image afterwards (Terraform ignores image changes), so this is a bootstrap value."
  type        = string
  default     = "us-docker.pkg.dev/cloudrun/container/hello"

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^ ]+$", var.image))
    error_message = "image must be a full container image reference (registry host/path[:tag|@digest])."
  }
}

variable "deploy_as" {
  description = "Serverless shape. \"service\": Cloud Build builds the Dockerfile into an image and deploys it. \"function\": Cloud Run functions from source, Cloud Build runs `gcloud run deploy --source function --function mcp` and Google's Python buildpack builds function/ (main.py + the pinned requirements.txt). Either way ONE Cloud Run v2 service with the same identity, environment, secrets, IAM, ingress, scaling and URL."
  type        = string
  default     = "service"

  validation {
    condition     = contains(["service", "function"], var.deploy_as)
    error_message = "deploy_as must be \"service\" or \"function\"."
  }
}

variable "function_base_image" {
  description = "Function shape only: the runtime base image the buildpack builds on and automatic base image updates patch (gcloud run deploy --base-image): a Cloud Run runtime id such as python311, or a full serverless-runtimes image URI."
  type        = string
  default     = "python311"

  validation {
    condition     = can(regex("^python3[0-9]{1,2}$", var.function_base_image)) || can(regex("^[a-z0-9-]+-docker\\.pkg\\.dev/serverless-runtimes/[a-z0-9./_-]+$", var.function_base_image))
    error_message = "function_base_image must be a Python runtime id (python311, python312, ...) or a <host>-docker.pkg.dev/serverless-runtimes/... image."
  }
}

variable "ingress" {
  description = "Cloud Run ingress: INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "cpu" {
  description = "vCPU limit of one instance (Cloud Run quantity string): 1, 2, 4, 6 or 8."
  type        = string
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.cpu)
    error_message = "cpu must be one of 1, 2, 4, 6, 8."
  }
}

variable "memory" {
  description = "Memory limit of one instance, e.g. 512Mi or 1Gi (Cloud Run allows 128Mi..32Gi)."
  type        = string
  default     = "1Gi"

  validation {
    condition     = can(regex("^([1-9][0-9]{2,4}Mi|([1-9]|[12][0-9]|3[0-2])Gi)$", var.memory))
    error_message = "memory must be between 128Mi and 32Gi, written as <n>Mi or <n>Gi."
  }
}

variable "max_concurrency" {
  description = "Maximum concurrent requests per instance. Generations wait on upstream APIs, so one instance can hold many."
  type        = number
  default     = 40

  validation {
    condition     = var.max_concurrency >= 1 && var.max_concurrency <= 1000 && floor(var.max_concurrency) == var.max_concurrency
    error_message = "max_concurrency must be an integer between 1 and 1000."
  }
}

variable "min_instances" {
  description = "Minimum number of warm instances (0 scales to zero; 1+ removes cold starts at a cost)."
  type        = number
  default     = 0

  validation {
    condition     = var.min_instances >= 0 && var.min_instances <= 10 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances must be an integer between 0 and 10."
  }
}

variable "max_instances" {
  description = "Maximum number of instances: bounds cost and upstream API spend. Must be >= min_instances and <= 100."
  type        = number
  default     = 5

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100 && floor(var.max_instances) == var.max_instances && var.max_instances >= var.min_instances
    error_message = "max_instances must be an integer between 1 and 100 and not below min_instances."
  }
}

variable "request_timeout_seconds" {
  description = "Cloud Run request timeout in seconds (1..3600). Image generation can take a minute or more."
  type        = number
  default     = 300

  validation {
    condition     = var.request_timeout_seconds >= 1 && var.request_timeout_seconds <= 3600 && floor(var.request_timeout_seconds) == var.request_timeout_seconds
    error_message = "request_timeout_seconds must be an integer between 1 and 3600."
  }
}

variable "request_deadline_seconds" {
  description = "IMAGEGEN_REQUEST_DEADLINE_SECONDS: the app's own deadline for one tool call, retries included. Must stay below request_timeout_seconds."
  type        = number
  default     = 240

  validation {
    condition     = var.request_deadline_seconds >= 1 && var.request_deadline_seconds < var.request_timeout_seconds
    error_message = "request_deadline_seconds must be at least 1 and strictly below request_timeout_seconds."
  }
}

variable "shutdown_grace_seconds" {
  description = "IMAGEGEN_SHUTDOWN_GRACE_SECONDS: how long in-flight requests may finish after SIGTERM. Cloud Run kills the instance 10 s after SIGTERM."
  type        = number
  default     = 8

  validation {
    condition     = var.shutdown_grace_seconds >= 0 && var.shutdown_grace_seconds <= 9
    error_message = "shutdown_grace_seconds must be between 0 and 9 (Cloud Run sends SIGKILL 10 s after SIGTERM)."
  }
}

variable "deletion_protection" {
  description = "Cloud Run deletion protection: terraform destroy must first set this to false."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------
# Application settings
# ---------------------------------------------------------------------------

variable "vertex_location" {
  description = "GOOGLE_CLOUD_LOCATION for Vertex AI (Gemini image models). 'global' is valid and recommended for Gemini image models."
  type        = string
  default     = "global"

  validation {
    condition     = var.vertex_location == "global" || can(regex("^[a-z]+-[a-z]+[0-9]+$", var.vertex_location))
    error_message = "vertex_location must be 'global' or a region such as us-central1."
  }
}

variable "default_model" {
  description = "IMAGEGEN_DEFAULT_MODEL: model used when a call names none. null leaves the application default."
  type        = string
  default     = null

  validation {
    condition     = var.default_model == null || can(regex("^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$", var.default_model))
    error_message = "default_model must be a model id such as vertex/gemini-3-pro-image-preview (letters, digits, . _ : / -)."
  }
}

variable "enable_placeholder" {
  description = "IMAGEGEN_ENABLE_PLACEHOLDER: expose the offline local/placeholder model. Needed by the Cloud Build smoke test; usually true on dev only."
  type        = bool
  default     = false
}

variable "url_ttl_seconds" {
  description = "IMAGEGEN_URL_TTL_SECONDS: lifetime of signed URLs. V4 signed URLs live at most 7 days (604800 s)."
  type        = number
  default     = 3600

  validation {
    condition     = var.url_ttl_seconds >= 1 && var.url_ttl_seconds <= 604800
    error_message = "url_ttl_seconds must be between 1 and 604800 (7 days)."
  }
}

variable "auth_mode" {
  description = "IMAGEGEN_AUTH: 'iam' (Google ID tokens, Cloud Run invoker IAM), 'bearer' (API keys whose hashes live in Secret Manager), 'google-oauth' (MCP clients signing in with Google; needs oauth_client_id), or a comma-separated list of them (any one accepted), e.g. 'google-oauth,bearer'. 'none' is never valid on Cloud Run."
  type        = string
  default     = "iam"

  validation {
    condition     = alltrue([for m in split(",", var.auth_mode) : contains(["iam", "bearer", "google-oauth"], m)]) && length(distinct(split(",", var.auth_mode))) == length(split(",", var.auth_mode))
    error_message = "auth_mode must be 'iam', 'bearer' or 'google-oauth', or a comma-separated list of them without repeats and without spaces ('none' is refused off loopback)."
  }
}

variable "oauth_client_id" {
  description = "IMAGEGEN_OAUTH_CLIENT_ID: the OAuth client id (...apps.googleusercontent.com) registered in Google Cloud for auth_mode google-oauth. Not a secret; its client secret stays with the MCP clients."
  type        = string
  default     = null

  validation {
    condition     = var.oauth_client_id == null || can(regex("^[0-9A-Za-z-]+\\.apps\\.googleusercontent\\.com$", var.oauth_client_id))
    error_message = "oauth_client_id must be a Google OAuth client id ending in .apps.googleusercontent.com."
  }
}

variable "invoker_principals" {
  description = "IAM members granted roles/run.invoker (and listed in IMAGEGEN_IAM_ALLOWED_PRINCIPALS), e.g. user:a@example.com, group:team@example.com, serviceAccount:x@p.iam.gserviceaccount.com. allUsers/allAuthenticatedUsers are refused here: see allow_public_invoker."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.invoker_principals : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):[^ ,]+$", m))])
    error_message = "Each invoker principal must be an IAM member such as user:, group:, serviceAccount:, domain:, principal: or principalSet: (never allUsers or allAuthenticatedUsers)."
  }
}

variable "allow_public_invoker" {
  description = "Grant roles/run.invoker to allUsers so clients without Google identities in IAM (API keys, Google sign-in from claude.ai and other hosted clients) reach the app's own check. Only allowed when auth_mode lists only bearer and/or google-oauth."
  type        = bool
  default     = false

  validation {
    condition     = !var.allow_public_invoker || !contains(split(",", var.auth_mode), "iam")
    error_message = "allow_public_invoker = true requires an auth_mode of bearer and/or google-oauth: an IAM-mode service is never public."
  }
}

variable "custom_audiences" {
  description = "Extra ID-token audiences Cloud Run accepts (custom domains, load balancers). The run.app URL is always accepted."
  type        = list(string)
  default     = []
}

variable "iam_audience" {
  description = "IMAGEGEN_IAM_AUDIENCE and IMAGEGEN_PUBLIC_URL. null uses the deterministic run.app URL https://<service>-<project number>.<region>.run.app."
  type        = string
  default     = null

  validation {
    condition     = var.iam_audience == null || can(regex("^https://[^ /]+", var.iam_audience))
    error_message = "iam_audience must be an https URL."
  }
}

# ---------------------------------------------------------------------------
# Output bucket
# ---------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the output bucket. null uses <project_id>-imagegen-<environment>."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit."
  }
}

variable "bucket_location" {
  description = "Location of the output bucket. null uses var.region (outputs stay next to the service)."
  type        = string
  default     = null
}

variable "retention_days" {
  description = "Outputs are deleted this many days after creation (lifecycle rule) and IMAGEGEN_RETENTION_DAYS says so. At most 30 days."
  type        = number
  default     = 7

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 30 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be an integer between 1 and 30 (the maximum retention of generated images)."
  }
}

variable "upload_retention_days" {
  description = "Uploads (create_upload, objects under uploads/) are deleted this many days after creation by their own lifecycle rule, and IMAGEGEN_UPLOAD_RETENTION_DAYS says so."
  type        = number
  default     = 1

  validation {
    condition     = var.upload_retention_days >= 1 && var.upload_retention_days <= 30 && floor(var.upload_retention_days) == var.upload_retention_days
    error_message = "upload_retention_days must be an integer between 1 and 30."
  }
}

variable "cors_origins" {
  description = "Origins allowed to GET signed URLs from a browser (CORS on the bucket). Empty list: no CORS block."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.cors_origins : can(regex("^https://[^ /*]+$", o)) || can(regex("^http://(localhost|127\\.0\\.0\\.1)(:[0-9]+)?$", o))])
    error_message = "CORS origins must be https://host[:port] (or http://localhost for development); wildcards are refused."
  }
}

# ---------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------

variable "secret_ids" {
  description = "Secret Manager secret ids per purpose (openai, openrouter, replicate, gemini, api_keys). Only the secret containers are created; add values with gcloud secrets versions add."
  type = object({
    openai     = optional(string, "imagegen-openai-api-key")
    openrouter = optional(string, "imagegen-openrouter-api-key")
    replicate  = optional(string, "imagegen-replicate-api-token")
    gemini     = optional(string, "imagegen-gemini-api-key")
    api_keys   = optional(string, "imagegen-api-keys")
  })
  default = {}

  validation {
    condition     = alltrue([for k, v in var.secret_ids : can(regex("^[A-Za-z0-9_-]{1,255}$", v))])
    error_message = "Secret ids may only contain letters, digits, '_' and '-' (1-255 chars)."
  }
}

# ---------------------------------------------------------------------------
# Registry and delivery
# ---------------------------------------------------------------------------

variable "artifact_repository_id" {
  description = "Artifact Registry docker repository id (Cloud Build substitution _REPO)."
  type        = string
  default     = "imagegen-mcp"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.artifact_repository_id))
    error_message = "artifact_repository_id must be lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "create_artifact_repository" {
  description = "Create the Artifact Registry repository here. Set false in all but one environment when several share a project and repository."
  type        = bool
  default     = true
}

variable "tf_state_bucket" {
  description = "GCS bucket holding this environment's Terraform state (created beforehand, see README). The build service account gets object access to it for plan."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", var.tf_state_bucket))
    error_message = "tf_state_bucket must be a valid bucket name."
  }
}

variable "build_trigger" {
  description = "Cloud Build trigger of this environment. github_owner/github_repo name a repository connected to Cloud Build; exactly one of branch_regex / tag_regex selects what deploys. enabled = false creates the build service account but no trigger. location is where the trigger lives (global for GitHub App connections)."
  type = object({
    enabled      = optional(bool, true)
    location     = optional(string, "global")
    github_owner = optional(string, "")
    github_repo  = optional(string, "")
    branch_regex = optional(string)
    tag_regex    = optional(string)
  })
  default = { enabled = false }

  validation {
    condition     = !var.build_trigger.enabled || ((var.build_trigger.branch_regex == null) != (var.build_trigger.tag_regex == null))
    error_message = "An enabled build_trigger needs exactly one of branch_regex or tag_regex."
  }

  validation {
    condition     = !var.build_trigger.enabled || (length(var.build_trigger.github_owner) > 0 && length(var.build_trigger.github_repo) > 0)
    error_message = "An enabled build_trigger needs github_owner and github_repo."
  }
}

variable "smoke_test_model" {
  description = "Model the pipeline smoke test generates with (_SMOKE_MODEL). null: local/placeholder when enable_placeholder is true, otherwise \"\" (initialize and tools/list only, no paid call)."
  type        = string
  default     = null
}

variable "build_plan_roles" {
  description = "Read-only project roles the build service account needs to run terraform plan (refresh every resource of this module). No basic roles."
  type        = list(string)
  default = [
    "roles/iam.securityReviewer",
    "roles/iam.serviceAccountViewer",
    "roles/serviceusage.serviceUsageViewer",
    "roles/secretmanager.viewer",
    "roles/artifactregistry.reader",
    "roles/cloudbuild.builds.viewer",
  ]

  validation {
    condition     = alltrue([for r in var.build_plan_roles : !contains(["roles/owner", "roles/editor", "roles/viewer"], r)])
    error_message = "build_plan_roles must not contain basic roles (owner, editor, viewer)."
  }
}

variable "secret_replica_locations" {
  description = "Regions the secrets are replicated to (user-managed replication), for organisation policies that restrict resource locations. Empty: automatic replication."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for location in var.secret_replica_locations : can(regex("^[a-z]+-[a-z]+[0-9]+$", location))])
    error_message = "secret_replica_locations must be region names such as europe-west1."
  }
}

# --- jobs (jobs.tf) ------------------------------------------------------------

variable "jobs_wait_seconds" {
  description = "IMAGEGEN_WAIT_SECONDS: how long generate/edit wait for their job before answering status=running (0-300; below the shortest client timeout you serve, e.g. Claude Desktop's ~60 s)."
  type        = number
  default     = 40

  validation {
    condition     = var.jobs_wait_seconds >= 0 && var.jobs_wait_seconds <= 300
    error_message = "jobs_wait_seconds must be between 0 and 300."
  }
}

variable "jobs_max_concurrent_dispatches" {
  description = "Cloud Tasks max concurrent dispatches: how many jobs run at once across all instances (the back-pressure that protects Vertex/OpenAI quotas)."
  type        = number
  default     = 20

  validation {
    condition     = var.jobs_max_concurrent_dispatches >= 1 && var.jobs_max_concurrent_dispatches <= 5000
    error_message = "jobs_max_concurrent_dispatches must be between 1 and 5000."
  }
}

variable "jobs_max_dispatches_per_second" {
  description = "Cloud Tasks max dispatches per second (job starts per second)."
  type        = number
  default     = 10

  validation {
    condition     = var.jobs_max_dispatches_per_second > 0 && var.jobs_max_dispatches_per_second <= 500
    error_message = "jobs_max_dispatches_per_second must be above 0 and at most 500."
  }
}

variable "jobs_max_attempts" {
  description = "Cloud Tasks delivery attempts per job. A repeat runs a job only if its earlier attempt never reached the upstream."
  type        = number
  default     = 3

  validation {
    condition     = var.jobs_max_attempts >= 1 && var.jobs_max_attempts <= 100
    error_message = "jobs_max_attempts must be between 1 and 100."
  }
}

variable "jobs_dispatch_deadline_seconds" {
  description = "How long Cloud Tasks waits for the worker route (IMAGEGEN_TASKS_DISPATCH_DEADLINE_SECONDS; 15-1800). Keep it above request_deadline_seconds and at most request_timeout_seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.jobs_dispatch_deadline_seconds >= 15 && var.jobs_dispatch_deadline_seconds <= 1800
    error_message = "jobs_dispatch_deadline_seconds must be between 15 and 1800 (Cloud Tasks limits)."
  }
}

variable "firestore_database_id" {
  description = "Firestore (Native mode) database of the job records. null: imagegen-<environment>."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_database_id == null || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database_id))
    error_message = "firestore_database_id must be 4-63 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "firestore_location" {
  description = "Firestore location (a region such as europe-west1, or a multi-region such as eur3). null: var.region."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_location == null || can(regex("^[a-z0-9-]+$", var.firestore_location))
    error_message = "firestore_location must be a Firestore location id such as europe-west1 or eur3."
  }
}

variable "usage_dataset_id" {
  description = "BigQuery dataset of the usage export (null: imagegen_usage_<environment>)."
  type        = string
  default     = null

  validation {
    condition     = var.usage_dataset_id == null || can(regex("^[A-Za-z0-9_]{1,1024}$", var.usage_dataset_id))
    error_message = "usage_dataset_id may hold letters, digits and underscores only."
  }
}

variable "usage_dataset_location" {
  description = "BigQuery location of the usage dataset, a region or the US / EU multi-region (null: the service's region)."
  type        = string
  default     = null

  validation {
    condition     = var.usage_dataset_location == null || can(regex("^([a-z]+-[a-z]+[0-9]+|US|EU)$", var.usage_dataset_location))
    error_message = "usage_dataset_location must be a region such as europe-west1, or US or EU."
  }
}

variable "usage_retention_days" {
  description = "Days a day partition of the usage table is kept (null: kept until deleted)."
  type        = number
  default     = 400

  validation {
    condition     = var.usage_retention_days == null || var.usage_retention_days >= 1
    error_message = "usage_retention_days must be at least 1 (or null)."
  }
}
