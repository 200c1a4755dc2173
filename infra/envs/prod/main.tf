module "imagegen" {
  source = "../../modules/imagegen_service"

  project_id      = var.project_id
  region          = var.region
  environment     = "prod"
  tf_state_bucket = var.tf_state_bucket

  auth_mode            = var.auth_mode
  allow_public_invoker = var.allow_public_invoker
  oauth_client_id      = var.oauth_client_id
  invoker_principals   = var.invoker_principals
  ingress              = var.ingress

  deploy_as           = var.deploy_as
  function_base_image = var.function_base_image

  min_instances   = var.min_instances
  max_instances   = var.max_instances
  max_concurrency = var.max_concurrency
  cpu             = var.cpu
  memory          = var.memory

  retention_days     = var.retention_days
  url_ttl_seconds    = var.url_ttl_seconds
  cors_origins       = var.cors_origins
  default_model      = var.default_model
  enable_placeholder = var.enable_placeholder

  deletion_protection        = var.deletion_protection
  create_artifact_repository = var.create_artifact_repository
  build_trigger              = var.build_trigger

  secret_ids               = var.secret_ids
  secret_replica_locations = var.secret_replica_locations
}
