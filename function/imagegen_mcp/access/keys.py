"""Bearer API keys: creation, the stored hash-record format, and constant-time lookup by hash."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import ErrorCode, ImageGenError

KEY_PREFIX = "igm_"
# igm_<key id>_<secret>: the id is readable without the hash (logs, support), the secret is 256 random bits.
_KEY_RE = re.compile(r"^igm_(k_[0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


@dataclass(frozen=True)
class KeyRecord:
    """One issued key as stored in the API-keys secret (never the key itself)."""

    id: str
    sha256: str
    label: str | None = None
    expires_at: datetime | None = None
    models: frozenset[str] | None = None
    disabled: bool = False
    daily_images: int | None = None  # quota: images per UTC day (None: the deployment default)
    monthly_usd: float | None = None  # quota: estimated USD per calendar month (None: the deployment default)

    def active(self, now: datetime) -> bool:
        return not self.disabled and (self.expires_at is None or now < self.expires_at)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "sha256": self.sha256,
            "label": self.label,
            "expires_at": _format_time(self.expires_at) if self.expires_at else None,
            "models": sorted(self.models) if self.models is not None else None,
            "disabled": self.disabled,
        }
        # Quotas only where set: a key without its own limits draws on the deployment default.
        if self.daily_images is not None:
            body["daily_images"] = self.daily_images
        if self.monthly_usd is not None:
            body["monthly_usd"] = self.monthly_usd
        return body


def hash_key(key: str) -> str:
    """The stored form of a key: lowercase hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The key id embedded in a well-formed key, else None (safe to log: it is not secret)."""
    match = _KEY_RE.match(key)
    return match.group(1) if match else None


def create_api_key(
    label: str | None,
    *,
    expires_days: float | None = None,
    models: Iterable[str] | None = None,
    daily_images: int | None = None,
    monthly_usd: float | None = None,
    now: datetime | None = None,
) -> tuple[str, KeyRecord]:
    """A fresh key (shown once, never stored) and the record to add to the API-keys secret."""
    if expires_days is not None and expires_days <= 0:
        raise ImageGenError(ErrorCode.INVALID_ARGUMENT, "expires_days must be positive")
    if daily_images is not None and daily_images < 0:
        raise ImageGenError(ErrorCode.INVALID_ARGUMENT, "daily_images must be 0 or more")
    if monthly_usd is not None and monthly_usd < 0:
        raise ImageGenError(ErrorCode.INVALID_ARGUMENT, "monthly_usd must be 0 or more")
    key_id = "k_" + secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    issued = now or datetime.now(UTC)
    record = KeyRecord(
        id=key_id,
        sha256=hash_key(key),
        label=label or None,
        expires_at=issued + timedelta(days=expires_days) if expires_days is not None else None,
        models=frozenset(m.strip() for m in models if m.strip()) if models is not None else None,
        daily_images=daily_images,
        monthly_usd=monthly_usd,
    )
    return key, record


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _bad(message: str) -> ImageGenError:
    # The message names positions and fields only: the document holds hashes that are not for logs.
    return ImageGenError(ErrorCode.MISCONFIGURED, f"API-keys secret: {message}")


def _parse_record(index: int, item: Any) -> KeyRecord:
    if not isinstance(item, dict):
        raise _bad(f"keys[{index}] is not an object")
    key_id, digest = item.get("id"), item.get("sha256")
    if not isinstance(key_id, str) or not _ID_RE.match(key_id):
        raise _bad(f"keys[{index}].id is missing or not a short identifier")
    if not isinstance(digest, str) or not _SHA256_RE.match(digest.lower()):
        raise _bad(f"keys[{index}] ({key_id}): sha256 must be 64 hex characters")
    label = item.get("label")
    if label is not None and not isinstance(label, str):
        raise _bad(f"keys[{index}] ({key_id}): label must be a string or null")
    expires_at = None
    raw_expiry = item.get("expires_at")
    if raw_expiry is not None:
        try:
            expires_at = datetime.fromisoformat(str(raw_expiry))
        except ValueError:
            raise _bad(f"keys[{index}] ({key_id}): expires_at must be an RFC 3339 time or null") from None
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
    models = item.get("models")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        raise _bad(f"keys[{index}] ({key_id}): models must be a list of model ids or null")
    disabled = item.get("disabled", False)
    if not isinstance(disabled, bool):
        raise _bad(f"keys[{index}] ({key_id}): disabled must be true or false")
    daily_images = item.get("daily_images")
    if daily_images is not None and (type(daily_images) is not int or daily_images < 0):
        raise _bad(f"keys[{index}] ({key_id}): daily_images must be a whole number >= 0 or null")
    monthly_usd = item.get("monthly_usd")
    if monthly_usd is not None and (type(monthly_usd) not in (int, float) or monthly_usd < 0):
        raise _bad(f"keys[{index}] ({key_id}): monthly_usd must be a number >= 0 or null")
    return KeyRecord(
        id=key_id,
        sha256=digest.lower(),
        label=label,
        expires_at=expires_at,
        models=frozenset(models) if models is not None else None,
        disabled=disabled,
        daily_images=daily_images,
        monthly_usd=float(monthly_usd) if monthly_usd is not None else None,
    )


def parse_key_file(text: str) -> list[KeyRecord]:
    """Parse `{"keys": [...]}`; a malformed document is a `misconfigured` error, never a silent empty list."""
    try:
        document = json.loads(text)
    except ValueError:
        raise _bad("not valid JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _bad('expected an object {"keys": [...]}')
    records = [_parse_record(i, item) for i, item in enumerate(document["keys"])]
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise _bad(f"key id {record.id} appears twice")
        seen.add(record.id)
    return records


class KeyRing:
    """The live set of key records; `match` costs the same whichever record (if any) matches."""

    def __init__(self, records: Iterable[KeyRecord]) -> None:
        self.records = tuple(records)
        self._digests = tuple(bytes.fromhex(r.sha256) for r in self.records)

    def match(self, key: str) -> KeyRecord | None:
        presented = hashlib.sha256(key.encode("utf-8")).digest()
        found: KeyRecord | None = None
        # No early exit: every stored digest is compared, so timing does not tell which slot matched.
        for record, digest in zip(self.records, self._digests, strict=True):
            if hmac.compare_digest(presented, digest):
                found = record
        return found


def add_record(document: str | None, record: KeyRecord) -> str:
    """The API-keys document with `record` appended (a new document when `document` is empty)."""
    existing = parse_key_file(document) if document and document.strip() else []
    if any(r.id == record.id for r in existing):
        raise ImageGenError(ErrorCode.INVALID_ARGUMENT, f"key id {record.id} is already in the document")
    return json.dumps({"keys": [r.to_json() for r in (*existing, record)]}, indent=2) + "\n"


def describe_new_key(key: str, record: KeyRecord, *, secret_id: str | None = None) -> str:
    """What `imagegen-mcp keys create` prints: the key once, the record, and how to store it in `secret_id`."""
    if secret_id is None:
        from ..config import Settings

        secret_id = str(Settings.model_fields["api_keys_secret"].default)
    record_json = json.dumps(record.to_json(), indent=2)
    return (
        f"API key (shown once; give it to the client, it is not stored anywhere):\n\n  {key}\n\n"
        f'Record to add to the "keys" list of the API-keys secret (hash only):\n\n{record_json}\n\n'
        "Store it (keep the existing records: several keys may be live during rotation):\n\n"
        f'  gcloud secrets versions access latest --secret={secret_id} > keys.json   # or start from {{"keys": []}}\n'
        '  # add the record above to the "keys" list in keys.json\n'
        f"  gcloud secrets versions add {secret_id} --data-file=keys.json && rm keys.json\n\n"
        "Running instances pick the new version up within IMAGEGEN_SECRET_TTL_SECONDS; no redeploy is needed.\n"
        "Locally (IMAGEGEN_SECRETS=env) put the document in IMAGEGEN_API_KEYS instead.\n"
    )
