"""Fake IAM Service Account Credentials API (`:signBlob`) signing with a generated RSA key, plus key helpers."""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterator

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .http_fake import FakeApi, Recorded, Reply

_SIGN_BLOB = re.compile(r"^/v1/projects/-/serviceAccounts/(?P<email>[^/:]+):signBlob$")


def generate_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_info(email: str, key: rsa.RSAPrivateKey, project: str = "test-project") -> dict[str, str]:
    """A service-account key file's JSON for `Credentials.from_service_account_info` (token_uri is loopback)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": "http://127.0.0.1:9/token",
    }


def verify_signature(key: rsa.RSAPrivateKey, signature: bytes, message: bytes) -> None:
    """Raise `cryptography.exceptions.InvalidSignature` unless `signature` is RSA-SHA256 of `message`."""
    key.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def google_error(status: int, reason: str, message: str) -> Reply:
    """Google's JSON error envelope `{"error": {"code", "message", "status"}}`."""
    return Reply(status=status, json={"error": {"code": status, "message": message, "status": reason}})


class FakeIamCredentials(FakeApi):
    """Signs what it is asked to with `key` (or answers `deny_status`); `signed` keeps (email, payload) pairs."""

    def __init__(self, *, deny_status: int | None = None, key: rsa.RSAPrivateKey | None = None) -> None:
        super().__init__()
        self.rsa_key = key or generate_rsa_key()
        self.deny_status = deny_status
        self.signed: list[tuple[str, bytes]] = []

    @property
    def authorizations(self) -> list[str]:
        return [r.headers.get("authorization", "") for r in self.requests]

    def handle(self, request: Recorded) -> Reply:
        match = _SIGN_BLOB.match(request.path)
        if request.method != "POST" or match is None:
            return google_error(404, "NOT_FOUND", f"no route {request.method} {request.path}")
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return google_error(401, "UNAUTHENTICATED", "missing bearer token")
        if self.deny_status is not None:
            return google_error(
                self.deny_status,
                "PERMISSION_DENIED",
                "Permission 'iam.serviceAccounts.signBlob' denied on resource (or it may not exist).",
            )
        try:
            payload = base64.b64decode(request.json()["payload"], validate=True)
        except (ValueError, KeyError, TypeError):
            return google_error(400, "INVALID_ARGUMENT", "payload must be base64")
        self.signed.append((match["email"], payload))
        signature = self.rsa_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return Reply(json={"keyId": "fake-key-1", "signedBlob": base64.b64encode(signature).decode()})


@contextlib.contextmanager
def start_fake_iam_credentials(fake: FakeIamCredentials | None = None) -> Iterator[tuple[str, FakeIamCredentials]]:
    """Serve the fake on 127.0.0.1; yields (base URL for IMAGEGEN_IAM_CREDENTIALS_ENDPOINT, fake)."""
    state = fake or FakeIamCredentials()
    base_url = state.start()
    try:
        yield base_url, state
    finally:
        state.stop()
