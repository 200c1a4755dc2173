"""Fake OAuth token endpoint: real ADC (a service-account key file) resolves with no Google, e.g. in subprocesses."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from .http_fake import send_payload, serve_handler


@dataclass
class FakeTokenServer:
    """Issued tokens and the refresh requests it saw."""

    expires_in: int = 3600
    issued: list[str] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, form: dict[str, str]) -> str:
        token = f"fake-access-{secrets.token_hex(8)}"
        with self._lock:
            self.requests.append(form)
            self.issued.append(token)
        return token

    def is_valid(self, token: str) -> bool:
        """Usable as `start_fake_gemini(accept_bearer=...)`: only tokens this server issued pass."""
        with self._lock:
            return token in self.issued


GOOGLE_TOKEN_ENDPOINT = "https://oauth2.googleapis.com/token"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _jwt_claims(assertion: str) -> dict[str, Any]:
    payload = assertion.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _check_grant(form: dict[str, str], token_uri: str) -> str | None:
    """Why this token request is not what google-auth sends (None when it is)."""
    if form.get("grant_type") == _JWT_BEARER:
        try:
            claims = _jwt_claims(form.get("assertion", ""))
        except (IndexError, ValueError):
            return "assertion is not a JWT"
        # google-auth signs for Google's endpoint even when the key file names another token_uri.
        if claims.get("aud") not in (token_uri, GOOGLE_TOKEN_ENDPOINT):
            return f"JWT audience {claims.get('aud')!r} is not a token endpoint"
        if not claims.get("iss") or not claims.get("scope"):
            return "JWT lacks iss or scope"
        return None
    if form.get("grant_type") == "refresh_token" and form.get("refresh_token"):
        return None
    return f"unsupported grant {form.get('grant_type')!r}"


def _handler(state: FakeTokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            problem = _check_grant(form, f"http://{self.headers.get('Host')}{self.path}")
            if problem:
                status, body = 400, {"error": "invalid_grant", "error_description": f"fake: {problem}"}
            else:
                token = state.issue(form)
                status, body = 200, {"access_token": token, "expires_in": state.expires_in, "token_type": "Bearer"}
            send_payload(self, status, json.dumps(body).encode(), "application/json")

    return Handler


@contextlib.contextmanager
def start_fake_token_server() -> Iterator[tuple[str, FakeTokenServer]]:
    """Serve on 127.0.0.1 in a thread; yields (token_uri, state)."""
    state = FakeTokenServer()
    with serve_handler(_handler(state)) as base_url:
        yield f"{base_url}/token", state


def write_service_account_file(
    path: Path, token_uri: str, email: str = "imagegen@test-project.iam.gserviceaccount.com"
) -> Path:
    """A service-account key file (fresh RSA key) whose `token_uri` is the fake: google-auth honours it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


def vertex_subprocess_env(
    *, adc_file: Path, vertex_base_url: str, project: str = "test-project", location: str = "global"
) -> dict[str, str]:
    """Environment variables a server subprocess needs to call the fake Vertex AI with real ADC resolution."""
    return {
        "GOOGLE_APPLICATION_CREDENTIALS": str(adc_file),
        "GOOGLE_CLOUD_PROJECT": project,
        "GOOGLE_CLOUD_LOCATION": location,
        "GOOGLE_VERTEX_BASE_URL": vertex_base_url,
        "IMAGEGEN_VERTEX_ENABLED": "true",
        # ADC must not fall through to the GCE metadata server; proxies must not see loopback traffic.
        "NO_GCE_CHECK": "True",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
