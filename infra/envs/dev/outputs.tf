output "service_url" {
  description = "Base URL of the Cloud Run service."
  value       = module.imagegen.service_url
}

output "service_name" {
  description = "Cloud Run service (either shape)."
  value       = module.imagegen.service_name
}

output "deploy_as" {
  description = "Serverless shape of this environment."
  value       = module.imagegen.deploy_as
}

output "mcp_url" {
  description = "MCP endpoint to give to clients."
  value       = module.imagegen.mcp_url
}

output "audience" {
  description = "ID-token audience for IAM mode."
  value       = module.imagegen.audience
}

output "bucket" {
  description = "Output bucket."
  value       = module.imagegen.bucket
}

output "service_account_email" {
  description = "Runtime service account."
  value       = module.imagegen.service_account_email
}

output "build_service_account_email" {
  description = "Cloud Build service account of this environment."
  value       = module.imagegen.build_service_account_email
}

output "artifact_registry" {
  description = "Docker registry path for images."
  value       = module.imagegen.artifact_registry
}

output "secret_ids" {
  description = "Secrets to fill with gcloud secrets versions add."
  value       = module.imagegen.secret_ids
}
