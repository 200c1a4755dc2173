"""The GCS store: private objects in one bucket, V4 signed GET (outputs) and PUT (uploads) URLs, `gs://` inputs."""

from __future__ import annotations

import asyncio
import logging
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from ..config import MAX_SIGNED_URL_TTL
from ..errors import ErrorCode, ImageGenError
from .base import (
    EXTENSIONS,
    MIME_BY_EXTENSION,
    MetadataCheck,
    SignedUrl,
    StoredBytes,
    StoredImage,
    UploadTicket,
    is_image_id,
    is_upload_id,
    new_image_id,
    new_upload_id,
    output_not_found,
    upload_not_found,
)

if TYPE_CHECKING:
    from google.auth.credentials import Credentials, Signing
    from google.cloud.storage import Blob, Client

    from ..config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Hosts of Google's XML API; a signed URL may also come from a private/emulator endpoint (see resolve_reference).
_GOOGLE_STORAGE_HOSTS = {"storage.googleapis.com", "storage.cloud.google.com"}
_STARTUP_PROBE_NAME = "startup-check"
UPLOAD_PREFIX = "uploads/"  # Terraform gives it its own, short lifecycle rule (upload_retention_days)


def parse_gs_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/name` → (bucket, name); `invalid_argument` for anything else."""
    if not uri.startswith("gs://"):
        raise ImageGenError(ErrorCode.INVALID_ARGUMENT, "not a gs:// URI", details={"uri": uri[:200]})
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket or not name:
        raise ImageGenError(ErrorCode.INVALID_ARGUMENT, "a gs:// URI needs a bucket and an object name")
    return bucket, name


class GcsStore:
    """Outputs as private objects `gs://<bucket>/<object_prefix><image id>` (the bucket is UBLA: no ACLs).

    Signing: a service-account key (`credentials=` or ADC from a key file) signs locally; any other
    credentials (Cloud Run, `gcloud auth application-default login`) sign through IAM signBlob as
    `signing_service_account` or the runtime service account. The constructor does no I/O; the client and the
    signer are built on first use and reused. Every blocking SDK call runs in a worker thread.

    `gs://` inputs: any object of a bucket listed in `input_buckets`; in the output bucket itself only
    objects under `object_prefix` (the service's own outputs), unless the output bucket is listed too.

    Uploads: `uploads/<upload id>`, written by the caller with a signed PUT that binds the content type, the
    size range (`x-goog-content-length-range`), write-once (`x-goog-if-generation-match: 0`) and the owner
    (`x-goog-meta-owner`, so the object carries it with no second write). They are read only by upload id.
    """

    name = "gcs"

    def __init__(
        self,
        settings: Settings,
        *,
        client: Client | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        if not settings.bucket:
            raise ImageGenError(ErrorCode.MISCONFIGURED, "the gcs store needs IMAGEGEN_BUCKET")
        self._settings = settings
        self._bucket_name: str = settings.bucket
        self._prefix = settings.object_prefix
        self._client = client
        self._credentials = credentials
        self._signing: Signing | None = None
        self._lock = threading.Lock()

    # --- lazily built SDK objects (called in worker threads) --------------------------------------------------------

    def _get_client(self) -> Client:
        with self._lock:
            if self._client is None:
                from google.cloud import storage

                project = self._settings.google_cloud_project
                self._client = storage.Client(project=project, credentials=self._credentials)
            return self._client

    def _get_signing(self) -> Signing:
        with self._lock:
            if self._signing is None:
                from .gcs_signing import default_credentials, make_signing_credentials

                self._signing = make_signing_credentials(
                    self._credentials or default_credentials(),
                    signing_service_account=self._settings.signing_service_account,
                    iam_endpoint=self._settings.iam_credentials_endpoint,
                )
            return self._signing

    def _blob(self, name: str, bucket: str | None = None) -> Blob:
        return self._get_client().bucket(bucket or self._bucket_name).blob(name)

    async def _run(self, what: str, fn: Callable[[], T], *, forbidden_is: ErrorCode = ErrorCode.MISCONFIGURED) -> T:
        try:
            return await asyncio.to_thread(fn)
        except ImageGenError:
            raise
        except Exception as e:
            raise _translate(e, what, forbidden_is) from e

    def _write_policy(self) -> dict[str, Any]:
        """`retry`/`timeout` for writes: the library's default retries a dead endpoint for 120 s, past any deadline."""
        from google.cloud.storage.retry import DEFAULT_RETRY

        budget = self._settings.storage_timeout_seconds
        return {"retry": DEFAULT_RETRY.with_timeout(budget), "timeout": (min(10.0, budget), budget)}

    # --- the ImageStore protocol -----------------------------------------------------------------------------------

    async def startup_check(self) -> None:
        """The bucket answers and URLs can be signed (one signBlob on keyless runtimes), else `misconfigured`."""

        def probe() -> None:
            client = self._get_client()
            list(client.list_blobs(self._bucket_name, prefix=self._prefix, max_results=1))

        try:
            await self._run(f"bucket {self._bucket_name}", probe)
        except ImageGenError as e:
            if e.code is ErrorCode.MISCONFIGURED:
                raise
            raise ImageGenError(
                ErrorCode.MISCONFIGURED, f"GCS bucket {self._bucket_name} is not reachable: {e.message}"
            ) from e
        try:
            await self._sign_name(self._prefix + _STARTUP_PROBE_NAME, 60)
        except ImageGenError as e:
            if e.code is ErrorCode.MISCONFIGURED:
                raise
            raise ImageGenError(ErrorCode.MISCONFIGURED, f"cannot sign GCS URLs: {e.message}", details=e.details) from e

    async def put(self, data: bytes, *, mime_type: str, metadata: Mapping[str, str]) -> StoredImage:
        if mime_type not in EXTENSIONS:
            raise ImageGenError(ErrorCode.UNSUPPORTED, f"cannot store images of type {mime_type!r}")
        image_id = new_image_id(mime_type)
        name = self._prefix + image_id
        meta = {str(k): str(v) for k, v in metadata.items()}

        def upload() -> datetime:
            blob = self._blob(name)
            blob.cache_control = f"private, max-age={self._settings.url_ttl_seconds}"
            blob.metadata = meta
            # if_generation_match=0: never overwrite an existing object (which also makes retrying it safe).
            blob.upload_from_string(data, content_type=mime_type, if_generation_match=0, **self._write_policy())
            return blob.time_created or datetime.now(UTC)

        # A worker thread cannot be cancelled: if the call is cancelled (client gone, shutdown past its grace)
        # while this upload runs, the object may still land with no response naming it. That orphan is
        # unavoidable; the bucket's lifecycle rule (IMAGEGEN_RETENTION_DAYS) deletes it like any output.
        try:
            created = await self._run(f"upload to gs://{self._bucket_name}", upload)
        except ImageGenError as e:
            if e.code is not ErrorCode.NOT_FOUND:
                raise
            # A missing bucket is a storage failure of this deployment, not a caller's missing input.
            raise ImageGenError(
                ErrorCode.STORAGE_ERROR, f"upload to gs://{self._bucket_name} failed: the bucket does not exist"
            ) from e
        return StoredImage(
            id=image_id,
            uri=f"gs://{self._bucket_name}/{name}",
            mime_type=mime_type,
            size_bytes=len(data),
            created_at=created,
            metadata=meta,
        )

    async def sign(self, image_id: str, *, ttl_seconds: int, base_url: str | None = None) -> SignedUrl:
        self._check_id(image_id)
        return await self._sign_name(self._prefix + image_id, ttl_seconds)

    async def _sign_name(
        self, name: str, ttl_seconds: int, *, method: str = "GET", headers: Mapping[str, str] | None = None
    ) -> SignedUrl:
        """A V4 signed URL for `method` on object `name`; the request must carry exactly `headers`."""
        ttl = max(1, min(int(ttl_seconds), MAX_SIGNED_URL_TTL))

        def generate() -> SignedUrl:
            signing = self._get_signing()
            expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
            url = self._blob(name).generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=ttl),
                method=method,
                headers=dict(headers) if headers else None,  # a copy: the library adds Host to it
                credentials=signing,
            )
            return SignedUrl(url=url, expires_at=expires_at)

        return await self._run("signing a URL", generate)

    async def create_upload(
        self,
        *,
        mime_type: str,
        size_bytes: int,
        ttl_seconds: int,
        metadata: Mapping[str, str],
        base_url: str | None = None,
    ) -> UploadTicket:
        if mime_type not in EXTENSIONS:
            raise ImageGenError(ErrorCode.UNSUPPORTED, f"cannot store uploads of type {mime_type!r}")
        upload_id = new_upload_id(mime_type)
        headers = {
            "Content-Type": mime_type,
            "x-goog-content-length-range": f"0,{int(size_bytes)}",
            "x-goog-if-generation-match": "0",
            **{f"x-goog-meta-{key}": str(value) for key, value in metadata.items()},
        }
        signed = await self._sign_name(UPLOAD_PREFIX + upload_id, ttl_seconds, method="PUT", headers=headers)
        return UploadTicket(id=upload_id, url=signed.url, headers=headers, expires_at=signed.expires_at)

    async def read_upload(self, upload_id: str, *, max_bytes: int, allow: MetadataCheck) -> bytes:
        if not is_upload_id(upload_id):
            raise upload_not_found(upload_id)
        try:
            found = await self._download(self._bucket_name, UPLOAD_PREFIX + upload_id, max_bytes, allow=allow)
        except ImageGenError as e:
            if e.code is ErrorCode.NOT_FOUND:
                raise upload_not_found(upload_id) from e
            raise
        return found.data

    async def read(self, image_id: str, *, max_bytes: int, allow: MetadataCheck | None = None) -> StoredBytes:
        self._check_id(image_id)
        try:
            found = await self._download(self._bucket_name, self._prefix + image_id, max_bytes, allow=allow)
        except ImageGenError as e:
            if e.code is ErrorCode.NOT_FOUND:
                raise output_not_found(image_id) from e
            raise
        if found.mime_type in EXTENSIONS:
            return found
        return StoredBytes(found.data, MIME_BY_EXTENSION[image_id.rsplit(".", 1)[-1]], found.metadata)

    async def metadata(self, image_id: str) -> dict[str, str]:
        self._check_id(image_id)
        name = self._prefix + image_id

        def stat() -> dict[str, str]:
            blob = self._get_client().bucket(self._bucket_name).get_blob(name)
            if blob is None:
                raise output_not_found(image_id)
            return dict(blob.metadata or {})

        return await self._run(f"reading {image_id}", stat)

    async def read_uri(self, uri: str, *, max_bytes: int) -> StoredBytes:
        bucket, name = parse_gs_uri(uri)
        own = bucket == self._bucket_name
        listed = bucket in self._settings.input_buckets
        if own and name.startswith(UPLOAD_PREFIX) and not listed:
            # An upload is read by its id, which checks its owner; its gs:// URI would skip that.
            raise ImageGenError(ErrorCode.NOT_FOUND, "pass an upload by its id (the `id` create_upload returned)")
        if not listed and not (own and name.startswith(self._prefix)):
            raise ImageGenError(
                ErrorCode.FORBIDDEN,
                "gs:// inputs are accepted only from the output bucket's outputs or from IMAGEGEN_INPUT_BUCKETS",
                details={"bucket": bucket},
            )
        return await self._download(bucket, name, max_bytes, forbidden_is=ErrorCode.FORBIDDEN)

    async def _download(
        self,
        bucket: str,
        name: str,
        max_bytes: int,
        *,
        forbidden_is: ErrorCode = ErrorCode.MISCONFIGURED,
        allow: MetadataCheck | None = None,
    ) -> StoredBytes:
        def download() -> StoredBytes:
            blob = self._get_client().bucket(bucket).get_blob(name)
            metadata = dict(blob.metadata or {}) if blob is not None else {}
            if blob is None or (allow is not None and not allow(metadata)):
                raise ImageGenError(ErrorCode.NOT_FOUND, f"gs://{bucket}/{name} does not exist (or has expired)")
            if blob.size is not None and blob.size > max_bytes:
                raise ImageGenError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"gs://{bucket}/{name} is {blob.size} bytes, more than the {max_bytes} allowed",
                    details={"size_bytes": blob.size, "max_bytes": max_bytes},
                )
            # Pinning the generation makes the size check hold for the bytes we download.
            data = blob.download_as_bytes(if_generation_match=blob.generation, end=max_bytes)
            if len(data) > max_bytes:
                raise ImageGenError(ErrorCode.INVALID_ARGUMENT, f"gs://{bucket}/{name} exceeds {max_bytes} bytes")
            mime = (blob.content_type or "application/octet-stream").split(";")[0].strip()
            return StoredBytes(data, mime, metadata)

        return await self._run(f"reading gs://{bucket}/{name}", download, forbidden_is=forbidden_is)

    def resolve_reference(self, ref: str) -> str | None:
        """An output id from an id, `gs://<bucket>/<prefix><id>` or a (signed) URL of that object.

        The URL host is not a trust boundary: a reference only ever resolves to an object under our own
        prefix in our own bucket, which its unguessable id already names.
        """
        ref = ref.strip()
        if is_image_id(ref):
            return ref
        if ref.startswith("gs://"):
            bucket, _, name = ref[len("gs://") :].partition("/")
            return self._id_of(name) if bucket == self._bucket_name else None
        parsed = urllib.parse.urlsplit(ref)
        if parsed.scheme not in ("https", "http") or not parsed.hostname:
            return None
        path = urllib.parse.unquote(parsed.path)
        host = parsed.hostname.lower().rstrip(".")
        if host == f"{self._bucket_name}.storage.googleapis.com":
            return self._id_of(path.removeprefix("/"))
        signed = any(key.lower() == "x-goog-signature" for key in urllib.parse.parse_qs(parsed.query))
        if host in _GOOGLE_STORAGE_HOSTS or signed:
            bucket_part = f"/{self._bucket_name}/"
            return self._id_of(path[len(bucket_part) :]) if path.startswith(bucket_part) else None
        return None

    def _id_of(self, name: str) -> str | None:
        if not name.startswith(self._prefix):
            return None
        image_id = name[len(self._prefix) :]
        return image_id if is_image_id(image_id) else None

    async def delete(self, image_id: str) -> None:
        self._check_id(image_id)

        def remove() -> None:
            from google.api_core import exceptions

            try:
                self._blob(self._prefix + image_id).delete(**self._write_policy())
            except exceptions.NotFound:
                return

        await self._run(f"deleting {image_id}", remove)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    @staticmethod
    def _check_id(image_id: str) -> None:
        if not is_image_id(image_id):
            raise ImageGenError(ErrorCode.NOT_FOUND, "no such image id", details={"image_id": image_id[:100]})

    def __repr__(self) -> str:
        return f"GcsStore(bucket={self._bucket_name!r}, prefix={self._prefix!r})"


def _translate(error: Exception, what: str, forbidden_is: ErrorCode) -> ImageGenError:
    """Google client exceptions → ImageGenError; the message names the operation, never credentials."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    if isinstance(error, gexc.NotFound):
        return ImageGenError(ErrorCode.NOT_FOUND, f"{what}: not found")
    if isinstance(error, gexc.Forbidden | gexc.Unauthorized):
        if forbidden_is is ErrorCode.FORBIDDEN:
            return ImageGenError(ErrorCode.FORBIDDEN, f"{what}: the service may not read it")
        return ImageGenError(
            ErrorCode.MISCONFIGURED,
            f"{what}: permission denied; grant the runtime service account roles/storage.objectAdmin on the bucket",
        )
    if isinstance(error, gexc.PreconditionFailed):
        return ImageGenError(ErrorCode.STORAGE_ERROR, f"{what}: the object changed meanwhile")
    if isinstance(error, auth_exc.DefaultCredentialsError | auth_exc.RefreshError):
        return ImageGenError(ErrorCode.MISCONFIGURED, f"{what}: Google credentials unusable ({type(error).__name__})")
    log.warning("GCS operation failed: %s: %s", what, type(error).__name__, exc_info=error)
    details: dict[str, Any] = {"error": type(error).__name__}
    return ImageGenError(ErrorCode.STORAGE_ERROR, f"{what} failed", details=details)
