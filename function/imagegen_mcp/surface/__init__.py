"""The MCP surface: one module per tool group, each exposing `register(surface)`; server.py lists them."""
