"""Image bytes: input references, the guarded URL fetcher, decoding and encoding."""
