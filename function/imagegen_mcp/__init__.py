"""imagegen-mcp: a stateless remote MCP endpoint for image generation and editing."""

__version__ = "0.1.0"
