# ---------------------------------------------------------------------------
# Output bucket: private, uniform access, outputs expire
# ---------------------------------------------------------------------------

resource "google_storage_bucket" "outputs" {
  #checkov:skip=CKV_GCP_62:Outputs are short-lived generated images; access is audited with Cloud Audit Logs (data access) instead of legacy usage-log buckets.
  #checkov:skip=CKV_GCP_78:Versioning would keep noncurrent copies of images the lifecycle rule is meant to delete; outputs are write-once and reproducible.
  project  = var.project_id
  name     = local.bucket_name
  location = local.bucket_location
  labels   = local.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Generated images are deleted N days after creation; the app advertises the
  # same number as IMAGEGEN_RETENTION_DAYS.
  lifecycle_rule {
    condition {
      age = var.retention_days
    }
    action {
      type = "Delete"
    }
  }

  # Uploads (create_upload: inputs PUT by callers, read by the edit that follows within minutes) go sooner,
  # by their own rule; the rule above still bounds them too. The app advertises the same number as
  # IMAGEGEN_UPLOAD_RETENTION_DAYS. The prefix is the app's (storage/gcs.py UPLOAD_PREFIX).
  lifecycle_rule {
    condition {
      age            = var.upload_retention_days
      matches_prefix = ["uploads/"]
    }
    action {
      type = "Delete"
    }
  }

  dynamic "cors" {
    for_each = length(var.cors_origins) > 0 ? [1] : []
    content {
      origin          = var.cors_origins
      method          = ["GET", "HEAD"]
      response_header = ["Content-Type", "Content-Length", "ETag"]
      max_age_seconds = 3600
    }
  }

  depends_on = [google_project_service.required]
}

# Object admin on THIS bucket only (write outputs, read them back for edits,
# sign URLs; a signed upload PUT under uploads/ acts with this grant too);
# nothing at project level.
resource "google_storage_bucket_iam_member" "runtime_objects" {
  bucket = google_storage_bucket.outputs.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.runtime.member
}

# terraform plan in Cloud Build refreshes the bucket: metadata read only.
resource "google_storage_bucket_iam_member" "build_outputs_reader" {
  bucket = google_storage_bucket.outputs.name
  role   = "roles/storage.legacyBucketReader"
  member = google_service_account.build.member
}
