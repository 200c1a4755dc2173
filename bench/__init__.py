"""Benchmarks of the imagegen-mcp endpoint against a bare MCPServer floor (`python -m bench`)."""
