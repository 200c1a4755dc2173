# ---------------------------------------------------------------------------
# Artifact Registry: images pushed by Cloud Build, tagged with the commit SHA
# ---------------------------------------------------------------------------

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Customer-managed keys are an organisation choice; images hold no customer data and use Google-managed encryption.
  count = var.create_artifact_repository ? 1 : 0

  project       = var.project_id
  location      = var.region
  repository_id = var.artifact_repository_id
  format        = "DOCKER"
  description   = "imagegen-mcp container images"
  labels        = local.labels

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.required]
}

# The build account pushes images to this repository only.
resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = var.project_id
  location   = var.region
  repository = var.artifact_repository_id
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member

  depends_on = [google_artifact_registry_repository.images]
}

# No runtime binding: Cloud Run pulls images with its service agent, which can
# read repositories of its own project.
