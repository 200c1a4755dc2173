# State lives in a GCS bucket created once per project (see infra/README.md).
# The bucket name is given at init time so no project id is hard-coded here:
#   terraform init -backend-config="bucket=<state bucket>"
terraform {
  backend "gcs" {
    prefix = "imagegen-mcp/prod"
  }
}
