# ---------------------------------------------------------------------------
# Secret Manager: containers only, values never pass through Terraform
# ---------------------------------------------------------------------------
#
# Add or rotate a value out of band, e.g.
#   printf '%s' "$OPENAI_API_KEY" | gcloud secrets versions add imagegen-openai-api-key --data-file=-
# The app reads `latest` at runtime (with a short cache), so rotation needs no
# redeploy. There is deliberately no google_secret_manager_secret_version here.

resource "google_secret_manager_secret" "this" {
  for_each = local.secret_ids

  project   = var.project_id
  secret_id = each.value
  labels    = merge(local.labels, { purpose = replace(each.key, "_", "-") })

  # Automatic (global) replication unless locations are given: org policies that restrict resource locations
  # (common in the EU) refuse automatic replication, so user-managed replicas in the allowed regions.
  replication {
    dynamic "auto" {
      for_each = length(var.secret_replica_locations) == 0 ? [1] : []
      content {}
    }
    dynamic "user_managed" {
      for_each = length(var.secret_replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = var.secret_replica_locations
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  depends_on = [google_project_service.required]
}

# secretAccessor granted per secret, never project-wide.
resource "google_secret_manager_secret_iam_member" "runtime_accessor" {
  for_each = google_secret_manager_secret.this

  project   = var.project_id
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}
