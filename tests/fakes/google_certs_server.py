"""A loopback stand-in for Google's ID-token issuer: RS256 signing keys and the x509 certs endpoint ({kid: PEM})."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .http_fake import send_payload, serve_handler

CERTS_PATH = "/oauth2/v1/certs"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SigningKey:
    """An RSA key with a self-signed certificate, as Google publishes them."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-securetoken.system.gserviceaccount.com")])
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=14))
            .sign(self.private_key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def sign(self, claims: dict[str, Any], *, header: dict[str, Any] | None = None) -> str:
        """A compact JWS over `claims` (RS256, this key's kid unless `header` says otherwise)."""
        head = {"alg": "RS256", "kid": self.kid, "typ": "JWT", **(header or {})}
        signing_input = f"{_b64url(json.dumps(head).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def id_token_claims(audience: str, email: str = "agent@proj.iam.gserviceaccount.com", **extra: Any) -> dict[str, Any]:
    """The claims of a Google ID token for a service account, valid for an hour from now."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "azp": "1234567890",
        "sub": "1234567890",
        "email": email,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


class GoogleCertsServer:
    """Serves `GET /oauth2/v1/certs` with the published keys' certificates and a Cache-Control max-age."""

    def __init__(self, max_age: int = 3600) -> None:
        self.max_age = max_age
        self.published: dict[str, SigningKey] = {}
        self.requests = 0
        self.fail = False
        self._base_url: str | None = None

    def publish(self, key: SigningKey) -> SigningKey:
        self.published[key.kid] = key
        return key

    def unpublish(self, kid: str) -> None:
        self.published.pop(kid, None)

    @property
    def url(self) -> str:
        assert self._base_url is not None
        return f"{self._base_url}{CERTS_PATH}"

    @contextlib.contextmanager
    def running(self) -> Iterator[GoogleCertsServer]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != CERTS_PATH:
                    self.send_error(404)
                    return
                fake.requests += 1
                if fake.fail:
                    self.send_error(503)
                    return
                body = json.dumps({kid: key.pem for kid, key in fake.published.items()}).encode()
                cache = {"Cache-Control": f"public, max-age={fake.max_age}, must-revalidate, no-transform"}
                send_payload(self, 200, body, "application/json; charset=UTF-8", cache)

            def log_message(self, format: str, *args: Any) -> None:
                return

        with serve_handler(Handler) as base_url:
            self._base_url = base_url
            yield self
