variable "project_id" {
  description = "Google Cloud project id of this environment."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid project id."
  }
}

variable "region" {
  description = "Region of the Cloud Run service and Artifact Registry repository."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like us-central1."
  }
}

variable "tf_state_bucket" {
  description = "Bucket that holds this environment's Terraform state (same value as -backend-config bucket=...)."
  type        = string

  validation {
    condition     = length(var.tf_state_bucket) >= 3
    error_message = "tf_state_bucket must be a bucket name."
  }
}

variable "auth_mode" {
  description = "IMAGEGEN_AUTH on Cloud Run: iam, bearer, google-oauth, or a comma-separated list (e.g. google-oauth,bearer)."
  type        = string
  default     = "iam"

  validation {
    condition     = alltrue([for m in split(",", var.auth_mode) : contains(["iam", "bearer", "google-oauth"], m)])
    error_message = "auth_mode must be iam, bearer, google-oauth or a comma-separated list of them."
  }
}

variable "oauth_client_id" {
  description = "OAuth client id registered in Google Cloud for auth_mode google-oauth (null otherwise)."
  type        = string
  default     = null
}

variable "allow_public_invoker" {
  description = "Grant roles/run.invoker to allUsers. Only valid when auth_mode lists only bearer and/or google-oauth; keep false in IAM mode."
  type        = bool
  default     = false
}

variable "invoker_principals" {
  description = "IAM members allowed to call the service (roles/run.invoker), e.g. group:imagegen-users@example.com."
  type        = list(string)
  default     = []
}

variable "ingress" {
  description = "Cloud Run ingress setting of this environment."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be one of the INGRESS_TRAFFIC_* values."
  }
}

variable "deploy_as" {
  description = "Serverless shape: service (image built from the Dockerfile) or function (Cloud Run functions: function/ built from source). See the module variable of the same name."
  type        = string
  default     = "service"
}

variable "function_base_image" {
  description = "Function shape only: runtime base image for gcloud run deploy --base-image (python311, ...)."
  type        = string
  default     = "python311"
}

variable "min_instances" {
  description = "Minimum warm instances."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Maximum instances (bounded by the module at 100)."
  type        = number
  default     = 3
}

variable "max_concurrency" {
  description = "Maximum concurrent requests per instance."
  type        = number
  default     = 40
}

variable "cpu" {
  description = "vCPU per instance."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory per instance."
  type        = string
  default     = "1Gi"
}

variable "retention_days" {
  description = "Days before generated outputs are deleted (1..30)."
  type        = number
  default     = 7
}

variable "url_ttl_seconds" {
  description = "Lifetime of signed URLs in seconds (1..604800)."
  type        = number
  default     = 3600
}

variable "cors_origins" {
  description = "Browser origins allowed to fetch outputs from the bucket."
  type        = list(string)
  default     = []
}

variable "default_model" {
  description = "IMAGEGEN_DEFAULT_MODEL; null keeps the application default."
  type        = string
  default     = null
}

variable "enable_placeholder" {
  description = "Expose the offline local/placeholder model (needed by the pipeline smoke test)."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Cloud Run deletion protection."
  type        = bool
  default     = true
}

variable "create_artifact_repository" {
  description = "Create the Artifact Registry repository in this environment (false when another environment of the same project owns it)."
  type        = bool
  default     = true
}

variable "build_trigger" {
  description = "Cloud Build trigger settings (see the module variable of the same name)."
  type = object({
    enabled      = optional(bool, true)
    location     = optional(string, "global")
    github_owner = optional(string, "")
    github_repo  = optional(string, "")
    branch_regex = optional(string)
    tag_regex    = optional(string)
  })
  default = { enabled = false }
}

variable "secret_ids" {
  description = "Secret ids per purpose. A second environment in the same project must use other ids (e.g. imagegen-staging-openai-api-key): secret ids are unique per project."
  type = object({
    openai     = optional(string, "imagegen-openai-api-key")
    openrouter = optional(string, "imagegen-openrouter-api-key")
    replicate  = optional(string, "imagegen-replicate-api-token")
    gemini     = optional(string, "imagegen-gemini-api-key")
    api_keys   = optional(string, "imagegen-api-keys")
  })
  default = {}
}

variable "secret_replica_locations" {
  description = "Regions for user-managed secret replication (org policies restricting locations); empty = automatic."
  type        = list(string)
  default     = []
}
