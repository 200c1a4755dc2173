"""Output storage backends behind the `ImageStore` protocol."""
