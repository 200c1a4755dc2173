"""V4 URL signing credentials for GCS: a local service-account key, or IAM signBlob for keyless runtimes."""

from __future__ import annotations

import base64
import time
from typing import Any

import google.auth
import google.auth.credentials
import google.auth.crypt
import google.auth.exceptions
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account

from ..errors import ErrorCode, ImageGenError
from ..retry import backoff_delay

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_SIGN_ATTEMPTS = 3
_RETRY_STATUSES = {429, 500, 502, 503, 504}


def token_creator_hint(email: str) -> str:
    return (
        f"grant roles/iam.serviceAccountTokenCreator on service account {email} to the runtime identity "
        "(on Cloud Run: to the service account itself) and enable iamcredentials.googleapis.com"
    )


class _IamSigner(google.auth.crypt.Signer):
    """A `google.auth.crypt.Signer` whose private key stays in Google's IAM: every signature is one signBlob call."""

    def __init__(self, session: AuthorizedSession, email: str, endpoint: str, timeout: float) -> None:
        self._session = session
        self._email = email
        self._url = f"{endpoint.rstrip('/')}/v1/projects/-/serviceAccounts/{email}:signBlob"
        self._timeout = timeout
        self._key_id: str | None = None

    @property
    def key_id(self) -> str | None:
        return self._key_id

    def sign(self, message: str | bytes) -> bytes:
        import requests

        payload = message.encode("utf-8") if isinstance(message, str) else message
        body = {"payload": base64.b64encode(payload).decode("ascii")}
        for attempt in range(1, _SIGN_ATTEMPTS + 1):
            try:
                response = self._session.post(self._url, json=body, timeout=self._timeout)
            except google.auth.exceptions.RefreshError as e:
                raise ImageGenError(
                    ErrorCode.MISCONFIGURED,
                    f"cannot sign URLs as {self._email}: the runtime credentials could not be refreshed ({e})",
                ) from e
            except (requests.RequestException, google.auth.exceptions.TransportError) as e:
                if attempt < _SIGN_ATTEMPTS:
                    time.sleep(backoff_delay(attempt, base=0.2, cap=1.0))
                    continue
                raise ImageGenError(
                    ErrorCode.STORAGE_ERROR, f"IAM signBlob for {self._email} is unreachable: {type(e).__name__}"
                ) from e
            if response.status_code == 200:
                data = response.json()
                self._key_id = data.get("keyId")
                return base64.b64decode(data["signedBlob"])
            if response.status_code in _RETRY_STATUSES and attempt < _SIGN_ATTEMPTS:
                time.sleep(backoff_delay(attempt, base=0.2, cap=1.0))
                continue
            raise _sign_error(self._email, response.status_code, _google_message(response))
        raise AssertionError("unreachable")  # pragma: no cover


def _google_message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])[:300]
    except Exception:
        return ""


def _sign_error(email: str, status: int, message: str) -> ImageGenError:
    details = {"service_account": email, "status": status}
    if message:
        details["upstream_message"] = message
    if status in (401, 403):
        return ImageGenError(
            ErrorCode.MISCONFIGURED,
            f"cannot sign URLs as {email}: IAM signBlob was denied (HTTP {status}); {token_creator_hint(email)}",
            details=details,
        )
    if status in (400, 404):
        return ImageGenError(
            ErrorCode.MISCONFIGURED,
            f"cannot sign URLs as {email}: IAM signBlob answered HTTP {status} (does the service account exist? "
            "set IMAGEGEN_SIGNING_SERVICE_ACCOUNT to an existing one)",
            details=details,
        )
    return ImageGenError(
        ErrorCode.STORAGE_ERROR, f"IAM signBlob for {email} failed with HTTP {status}", details=details
    )


class IamSigningCredentials(google.auth.credentials.Signing):
    """`Signing` credentials for `Blob.generate_signed_url`: the V4 string-to-sign goes to IAM signBlob.

    Used instead of the library's `service_account_email=`/`access_token=` path because that one has the
    IAM endpoint hard-coded; here it comes from `IMAGEGEN_IAM_CREDENTIALS_ENDPOINT` (private endpoints, tests).
    """

    def __init__(self, session: AuthorizedSession, email: str, endpoint: str, timeout: float = 15.0) -> None:
        self._signer = _IamSigner(session, email, endpoint, timeout)
        self._email = email

    def sign_bytes(self, message: bytes) -> bytes:
        return self._signer.sign(message)

    @property
    def signer_email(self) -> str:
        return self._email

    @property
    def signer(self) -> google.auth.crypt.Signer:
        return self._signer


def default_credentials() -> google.auth.credentials.Credentials:
    """ADC (blocking: may probe the metadata server)."""
    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError as e:
        raise ImageGenError(
            ErrorCode.MISCONFIGURED,
            "no Google credentials found to sign URLs: run `gcloud auth application-default login` "
            "locally, or run on Cloud Run with a service account",
        ) from e
    return credentials


def _service_account_email(credentials: google.auth.credentials.Credentials) -> str | None:
    email = getattr(credentials, "service_account_email", None)
    if email in (None, "default") and hasattr(credentials, "service_account_email"):
        # Compute Engine / Cloud Run credentials learn their email from the metadata server on refresh.
        try:
            credentials.refresh(Request())  # type: ignore[no-untyped-call]  # google-auth is untyped here
        except google.auth.exceptions.GoogleAuthError as e:
            raise ImageGenError(
                ErrorCode.MISCONFIGURED, f"cannot find the runtime service account to sign URLs: {e}"
            ) from e
        email = getattr(credentials, "service_account_email", None)
    if not email or email == "default":
        return None
    return str(email)


def make_signing_credentials(
    credentials: google.auth.credentials.Credentials,
    *,
    signing_service_account: str | None,
    iam_endpoint: str,
) -> google.auth.credentials.Signing:
    """Pick how to sign (blocking): a key file signs locally; everything else signs via IAM signBlob."""
    if isinstance(credentials, service_account.Credentials) and signing_service_account in (
        None,
        credentials.service_account_email,
    ):
        return credentials
    email = signing_service_account or _service_account_email(credentials)
    if email is None:
        raise ImageGenError(
            ErrorCode.MISCONFIGURED,
            f"the Google credentials ({type(credentials).__name__}) have no service account to sign URLs with: "
            "set IMAGEGEN_SIGNING_SERVICE_ACCOUNT to a service account on which you hold "
            "roles/iam.serviceAccountTokenCreator",
        )
    if getattr(credentials, "requires_scopes", False):
        credentials = credentials.with_scopes([CLOUD_PLATFORM_SCOPE])  # type: ignore[attr-defined]
    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]  # google-auth is untyped here
    return IamSigningCredentials(session, email, iam_endpoint)
