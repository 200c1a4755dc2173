# imagegen-mcp: streamable-HTTP MCP server for Cloud Run.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080

WORKDIR /app

# Install the distribution from pyproject.toml (dependencies first for layer reuse
# would need a lock file; the package itself is small).
COPY pyproject.toml README.md ./
COPY function/ ./function/
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app

USER 10001

EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]

# Cloud Run sets $PORT; exec so uvicorn receives SIGTERM directly. The limits are cli.UVICORN_LIMITS (docs/security.md).
CMD ["sh", "-c", "exec uvicorn main:app --app-dir function --host 0.0.0.0 --port \"${PORT:-8080}\" --proxy-headers --forwarded-allow-ips='*' --timeout-keep-alive 5 --h11-max-incomplete-event-size 16384 --limit-concurrency 1000 --backlog 2048"]
