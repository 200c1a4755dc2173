# imagegen-mcp: streamable-HTTP MCP server for Cloud Run.
FROM python:3.11-slim

# The runtime user has no home directory: the embedded local store lives in /tmp (a writable tmpfs on
# Cloud Run; with IMAGEGEN_STORAGE=gcs it is not used).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IMAGEGEN_LOCAL_DIR=/tmp/imagegen-mcp/outputs \
    PORT=8080

WORKDIR /app

# Locked, hashed dependencies first (a layer that changes only with the lock), then the package itself.
COPY function/requirements.txt ./function/requirements.txt
RUN pip install --no-cache-dir --require-hashes -r function/requirements.txt
COPY pyproject.toml README.md ./
COPY function/ ./function/
# uvicorn imports the package from function/ (--app-dir), not from the installed copy, and PYTHONDONTWRITEBYTECODE
# keeps it from caching bytecode there: compiled now, or every cold start compiles its ~150 modules (~80 ms).
RUN pip install --no-cache-dir --no-deps . \
    && python -m compileall -q function \
    && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app

USER 10001

EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]

# Cloud Run sets $PORT; exec so uvicorn receives SIGTERM directly. The limits are cli.UVICORN_LIMITS (docs/security.md).
CMD ["sh", "-c", "exec uvicorn main:app --app-dir function --host 0.0.0.0 --port \"${PORT:-8080}\" --no-proxy-headers --timeout-keep-alive 5 --h11-max-incomplete-event-size 16384 --limit-concurrency 1000 --backlog 2048"]
