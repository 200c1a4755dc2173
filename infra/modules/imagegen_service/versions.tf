terraform {
  # Cross-variable validation and `check`-free preconditions need 1.9+.
  required_version = ">= 1.9.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # The module accepts the 6.x and 7.x series; each environment root pins
      # one exact version in its own versions.tf.
      version = ">= 6.0.0, < 8.0.0"
    }
  }
}
