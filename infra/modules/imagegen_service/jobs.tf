# ---------------------------------------------------------------------------
# Jobs: a generation outlives the call (Firestore records, Cloud Tasks worker)
# ---------------------------------------------------------------------------
# The service enqueues one HTTP task per job; Cloud Tasks POSTs it back to the
# service's internal worker route with an OIDC token of a dedicated service
# account, and the job runs inside that request (so Cloud Run gives it CPU).

locals {
  firestore_database_id = coalesce(var.firestore_database_id, "imagegen-${var.environment}")
  tasks_queue_name      = "imagegen-jobs-${var.environment}"
  tasks_queue_id        = "projects/${var.project_id}/locations/${var.region}/queues/${local.tasks_queue_name}"

  # Merged into the service's environment (run.tf).
  jobs_env = {
    IMAGEGEN_STATE                           = "firestore"
    IMAGEGEN_FIRESTORE_DATABASE              = google_firestore_database.jobs.name
    IMAGEGEN_JOBS                            = "cloud-tasks"
    IMAGEGEN_TASKS_QUEUE                     = local.tasks_queue_id
    IMAGEGEN_TASKS_SERVICE_ACCOUNT           = google_service_account.tasks.email
    IMAGEGEN_TASKS_DISPATCH_DEADLINE_SECONDS = tostring(var.jobs_dispatch_deadline_seconds)
    IMAGEGEN_WAIT_SECONDS                    = tostring(var.jobs_wait_seconds)
  }
}

# --- Firestore (Native mode): job records, expired by a TTL policy ----------

resource "google_firestore_database" "jobs" {
  project                           = var.project_id
  name                              = local.firestore_database_id
  location_id                       = coalesce(var.firestore_location, var.region)
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"

  depends_on = [google_project_service.required]
}

# Records carry `expires_at` (creation + retention_days); Firestore deletes
# them after it (lazily: the app treats expired records as absent itself).
resource "google_firestore_field" "jobs_ttl" {
  project    = var.project_id
  database   = google_firestore_database.jobs.name
  collection = "jobs"
  field      = "expires_at"

  ttl_config {}
  index_config {}
}

# The runtime reads and writes documents of this database only.
resource "google_project_iam_member" "runtime_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.runtime.email}"

  condition {
    title      = "imagegen-jobs-database-only"
    expression = "resource.name.startsWith(\"projects/${var.project_id}/databases/${local.firestore_database_id}\")"
  }
}

# --- Cloud Tasks: the queue is the back-pressure on upstream quotas ---------

resource "google_cloud_tasks_queue" "jobs" {
  project  = var.project_id
  name     = local.tasks_queue_name
  location = var.region

  rate_limits {
    max_concurrent_dispatches = var.jobs_max_concurrent_dispatches
    max_dispatches_per_second = var.jobs_max_dispatches_per_second
  }

  # A retry only re-runs a job whose earlier attempt provably never reached
  # the upstream (the app checks its record), so retries cannot double-bill.
  retry_config {
    max_attempts       = var.jobs_max_attempts
    min_backoff        = "2s"
    max_backoff        = "60s"
    max_doublings      = 4
    max_retry_duration = "${var.jobs_dispatch_deadline_seconds * var.jobs_max_attempts}s"
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.required]
}

# --- The tasks identity: may invoke the service, nothing else ---------------

resource "google_service_account" "tasks" {
  project      = var.project_id
  account_id   = substr("imagegen-tasks-${var.environment}", 0, 30)
  display_name = "imagegen-mcp job tasks (${var.environment})"
  description  = "OIDC identity of the Cloud Tasks that run imagegen-mcp jobs in ${var.environment}; the only caller the internal worker route accepts."

  depends_on = [google_project_service.required]
}

resource "google_cloud_run_v2_service_iam_member" "tasks_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.tasks.email}"
}

# The runtime enqueues tasks on this queue only.
resource "google_cloud_tasks_queue_iam_member" "runtime_enqueuer" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.jobs.name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.runtime.email}"
}

# Creating a task with an OIDC token of the tasks account needs actAs on it.
resource "google_service_account_iam_member" "runtime_acts_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.runtime.email}"
}
