"""Secret sources behind the `SecretSource` protocol (environment, Secret Manager)."""
