# ---------------------------------------------------------------------------
# Usage export: every metered generation writes one JSON log line with
# "event": "usage" (key id/label or principal, model, images, outcome,
# estimated_cost_usd, ...). This sink copies exactly those lines from this
# service into a BigQuery dataset, one day-partitioned table, so a team can
# query its spend in SQL (README: "Usage, cost and quotas").
# ---------------------------------------------------------------------------

locals {
  usage_dataset_id = coalesce(var.usage_dataset_id, "imagegen_usage_${replace(var.environment, "-", "_")}")
  usage_log_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${local.service_name}\"",
    "jsonPayload.event=\"usage\"",
  ])
}

resource "google_bigquery_dataset" "usage" {
  #checkov:skip=CKV_GCP_81:Customer-managed keys are an organisation choice; usage rows hold key ids, emails, model names and cost estimates (no prompts or images) under Google-managed encryption.
  project     = var.project_id
  dataset_id  = local.usage_dataset_id
  location    = coalesce(var.usage_dataset_location, var.region)
  description = "imagegen-mcp usage records (${var.environment}): the \"event\": \"usage\" log lines, one row per metered call."
  labels      = local.labels

  # Partitions older than this are dropped; null keeps every partition.
  default_partition_expiration_ms = var.usage_retention_days == null ? null : var.usage_retention_days * 86400000
  delete_contents_on_destroy      = false

  depends_on = [google_project_service.required]
}

resource "google_logging_project_sink" "usage" {
  project     = var.project_id
  name        = "imagegen-usage-${var.environment}"
  description = "Usage lines of ${local.service_name} into BigQuery dataset ${local.usage_dataset_id}."
  destination = "bigquery.googleapis.com/projects/${var.project_id}/datasets/${google_bigquery_dataset.usage.dataset_id}"
  filter      = local.usage_log_filter

  # A service account of this sink alone, granted write access on this dataset alone (below).
  unique_writer_identity = true

  bigquery_options {
    use_partitioned_tables = true # one table partitioned by day (the entry's timestamp), not a table per day
  }
}

# The sink's writer may write tables of the usage dataset, nothing else.
resource "google_bigquery_dataset_iam_member" "usage_sink_writer" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.usage.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_logging_project_sink.usage.writer_identity
}
