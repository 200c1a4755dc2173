# dev: scales to zero, exposes the offline placeholder model for the
# pipeline smoke test. project_id, region and tf_state_bucket are overridden
# by Cloud Build (-var) with the trigger's project and substitutions.
project_id      = "acme-imagegen-dev"
region          = "europe-west1"
tf_state_bucket = "acme-imagegen-dev-tfstate"

auth_mode            = "iam"
allow_public_invoker = false
invoker_principals   = ["group:imagegen-dev-users@example.com"]
ingress              = "INGRESS_TRAFFIC_ALL"

# Serverless shape: "service" (image from the Dockerfile) or "function" (Cloud Run
# functions: function/ built from source by Google's Python buildpack). The trigger
# passes it to cloudbuild.yaml as _DEPLOY_AS. See infra/README.md, "Two shapes".
deploy_as = "service"

min_instances   = 0
max_instances   = 3
max_concurrency = 40
cpu             = "1"
memory          = "1Gi"

retention_days     = 3
url_ttl_seconds    = 3600
enable_placeholder = true

deletion_protection = false

build_trigger = {
  enabled      = true
  github_owner = "acme"
  github_repo  = "imagegen-mcp"
  branch_regex = "^main$"
}
