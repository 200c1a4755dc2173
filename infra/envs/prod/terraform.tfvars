# prod: warm instance, placeholder model off, deploys on release tags.
# project_id, region and tf_state_bucket are overridden by Cloud Build (-var)
# with the trigger's project and substitutions.
project_id      = "acme-imagegen-prod"
region          = "europe-west1"
tf_state_bucket = "acme-imagegen-prod-tfstate"

auth_mode            = "iam"
allow_public_invoker = false
invoker_principals   = ["group:imagegen-users@example.com"]
ingress              = "INGRESS_TRAFFIC_ALL"

# Serverless shape: "service" (image from the Dockerfile) or "function" (Cloud Run
# functions: function/ built from source by Google's Python buildpack). The trigger
# passes it to cloudbuild.yaml as _DEPLOY_AS. See infra/README.md, "Two shapes".
deploy_as = "service"

min_instances   = 1
max_instances   = 10
max_concurrency = 40
cpu             = "2"
memory          = "2Gi"

retention_days     = 7
url_ttl_seconds    = 3600
enable_placeholder = false

deletion_protection = true

build_trigger = {
  enabled      = true
  github_owner = "acme"
  github_repo  = "imagegen-mcp"
  tag_regex    = "^v[0-9]+\\.[0-9]+\\.[0-9]+$"
}
