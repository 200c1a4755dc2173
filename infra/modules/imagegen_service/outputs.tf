output "service_url" {
  description = "Base URL of the Cloud Run service (run.app)."
  value       = google_cloud_run_v2_service.this.uri
}

output "service_name" {
  description = "Name of the Cloud Run service (both shapes: a function is a Cloud Run service too)."
  value       = google_cloud_run_v2_service.this.name
}

output "deploy_as" {
  description = "The serverless shape: service (image from the Dockerfile) or function (function/ built from source)."
  value       = var.deploy_as
}

output "mcp_url" {
  description = "MCP endpoint to add to clients (streamable HTTP, POST)."
  value       = "${google_cloud_run_v2_service.this.uri}/mcp"
}

output "audience" {
  description = "ID-token audience the app checks in IAM mode (gcloud auth print-identity-token --audiences=...)."
  value       = local.public_url
}

output "bucket" {
  description = "Name of the output bucket."
  value       = google_storage_bucket.outputs.name
}

output "service_account_email" {
  description = "Email of the dedicated runtime service account."
  value       = google_service_account.runtime.email
}

output "build_service_account_email" {
  description = "Email of this environment's Cloud Build service account."
  value       = google_service_account.build.email
}

output "artifact_registry" {
  description = "Docker registry path images are pushed to (<region>-docker.pkg.dev/<project>/<repo>)."
  value       = local.registry_url
}

output "secret_ids" {
  description = "Secret Manager secret ids to fill with gcloud secrets versions add."
  value       = { for k, s in google_secret_manager_secret.this : k => s.secret_id }
}
