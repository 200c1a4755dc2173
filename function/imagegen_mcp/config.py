"""Typed settings: the only module that reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MAX_SIGNED_URL_TTL = 7 * 24 * 3600  # V4 signed URLs cannot live longer than 7 days.
PLACEHOLDER_MODEL = "local/placeholder"

CsvList = Annotated[list[str], NoDecode]
AuthMode = Literal["none", "bearer", "iam", "google-oauth"]
AUTH_MODES: tuple[str, ...] = get_args(AuthMode)


def _default_local_dir() -> Path:
    return Path.home() / ".cache" / "imagegen-mcp" / "outputs"


def _no_auth() -> list[AuthMode]:
    return ["none"]


class QuotaLimits(BaseModel):
    """A budget: images per UTC day and estimated USD per calendar month (UTC); None = unlimited."""

    model_config = ConfigDict(extra="forbid")

    daily_images: int | None = Field(None, ge=0)
    monthly_usd: float | None = Field(None, ge=0)


class Settings(BaseSettings):
    """Every knob of the service. Environment names are `IMAGEGEN_<FIELD>` unless an alias says otherwise."""

    model_config = SettingsConfigDict(env_prefix="IMAGEGEN_", extra="ignore", populate_by_name=True)

    # --- serving -------------------------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface `imagegen-mcp serve` listens on.")
    port: int = Field(
        8080, ge=0, le=65535, validation_alias=AliasChoices("IMAGEGEN_PORT", "PORT"), description="Listen port."
    )
    public_url: str | None = Field(None, description="External base URL (links, allowed Host, token audience).")
    allowed_hosts: CsvList = Field(default_factory=list, description="Extra allowed Host headers (`*.example.com`).")
    cloud_run_service: str | None = Field(
        None, validation_alias=AliasChoices("K_SERVICE"), description="Set by Cloud Run; allows <service>-*.run.app."
    )
    allowed_origins: CsvList = Field(default_factory=list, description="Allowed browser Origins (exact or `*`).")
    max_request_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Largest accepted HTTP request body.")
    request_deadline_seconds: float = Field(
        240.0, gt=0, le=3600, description="Budget of one tool call, upstream retries included (< Cloud Run timeout)."
    )
    shutdown_grace_seconds: float = Field(9.0, ge=0, le=3600, description="In-flight drain time after SIGTERM.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_prompt_chars: int = Field(80, ge=0, description="How many prompt characters logs may carry (0 = none).")

    # --- storage -------------------------------------------------------------------------------------------------
    storage: Literal["local", "gcs"] = Field("local", description="Where outputs go.")
    local_dir: Path = Field(default_factory=_default_local_dir, description="Folder of the local store.")
    bucket: str | None = Field(None, description="GCS bucket of the gcs store.")
    object_prefix: str = Field("outputs/", description="Prefix of output object names in the bucket.")
    input_buckets: CsvList = Field(
        default_factory=list, description="Extra buckets `gs://` inputs may come from (the output bucket always may)."
    )
    url_ttl_seconds: int = Field(3600, ge=1, le=MAX_SIGNED_URL_TTL, description="Lifetime of signed URLs.")
    retention_days: int = Field(7, ge=1, le=3650, description="Days outputs are kept (local: swept; gcs: lifecycle).")
    upload_ttl_seconds: int = Field(
        900, ge=1, le=86400, description="Lifetime of the signed PUT URL create_upload returns (the upload window)."
    )
    upload_retention_days: int = Field(
        1, ge=1, le=30, description="Days uploads are kept (local: swept; gcs: the `uploads/` lifecycle rule)."
    )
    signing_key: SecretStr | None = Field(
        None, description="HMAC key for local `/files` and `/uploads` links (else a key file)."
    )
    signing_service_account: str | None = Field(
        None, description="Service account that signs GCS URLs via IAM signBlob (default: the runtime account)."
    )
    storage_timeout_seconds: float = Field(
        20.0, gt=0, le=600, description="Budget of one GCS upload or delete, retries included (< request deadline)."
    )
    iam_credentials_endpoint: str = Field(
        "https://iamcredentials.googleapis.com", description="IAM Service Account Credentials API (signBlob) base URL."
    )

    # --- secrets -------------------------------------------------------------------------------------------------
    secrets: Literal["env", "secret-manager"] = Field("env", description="Where API keys come from.")
    secret_project: str | None = Field(None, description="Project of the secrets (default: GOOGLE_CLOUD_PROJECT).")
    secret_ttl_seconds: float = Field(300.0, ge=1, description="How long a secret value is cached before refresh.")
    secret_manager_endpoint: str | None = Field(None, description="Secret Manager API endpoint override (tests).")
    openai_key_secret: str = Field("imagegen-openai-api-key", description="Secret id of the OpenAI API key.")
    openrouter_key_secret: str = Field("imagegen-openrouter-api-key", description="Secret id of the OpenRouter key.")
    replicate_key_secret: str = Field("imagegen-replicate-api-token", description="Secret id of the Replicate token.")
    gemini_key_secret: str = Field("imagegen-gemini-api-key", description="Secret id of the Gemini API key.")
    api_keys_secret: str = Field("imagegen-api-keys", description="Secret id of the bearer key hashes (JSON).")
    # The values themselves (env source; with secret-manager an environment value wins), under the vendors' names.
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY"), description="OpenAI API key."
    )
    openrouter_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENROUTER_API_KEY"), description="OpenRouter API key."
    )
    replicate_api_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("REPLICATE_API_TOKEN"), description="Replicate API token."
    )
    gemini_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        description="Gemini Developer API key (GEMINI_API_KEY wins over GOOGLE_API_KEY).",
    )
    api_keys: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("IMAGEGEN_API_KEYS"),
        description="Bearer key hashes (JSON, as `imagegen-mcp keys create` prints) for `auth=bearer`.",
    )

    # --- auth ----------------------------------------------------------------------------------------------------
    auth: Annotated[list[AuthMode], NoDecode] = Field(
        default_factory=_no_auth,
        description="Who may call: `none`, or one or more (comma-separated, any one accepted) of `bearer`, `iam`, "
        "`google-oauth`.",
    )
    allow_unauthenticated: bool = Field(
        False, description="Explicitly allow `auth=none` on a non-loopback interface (you take the risk)."
    )
    iam_audience: CsvList = Field(default_factory=list, description="Accepted ID-token audiences (default public_url).")
    iam_allowed_principals: CsvList = Field(
        default_factory=list, description="Allowed Google emails, `iam` and `google-oauth` (empty = any)."
    )
    iam_allowed_domains: CsvList = Field(
        default_factory=list, description="Allowed email domains / `hd` claims, `iam` and `google-oauth`."
    )
    iam_verify_token: bool = Field(True, description="Verify the Google ID token in the app too.")
    iam_cloud_run_enforced: bool = Field(
        False,
        description="Cloud Run IAM guards the service (--no-allow-unauthenticated): accept ID tokens whose "
        "signature Cloud Run removed after verifying them (claims are still checked).",
    )
    iam_certs_url: str = Field(
        "https://www.googleapis.com/oauth2/v1/certs", description="Where Google's ID-token signing certs are."
    )
    iam_issuers: CsvList = Field(
        default_factory=lambda: ["https://accounts.google.com", "accounts.google.com"],
        description="Accepted ID-token issuers (`iam` and `google-oauth`).",
    )
    oauth_client_id: str | None = Field(
        None,
        description="`google-oauth`: the OAuth client id registered in Google Cloud; tokens must be issued to it.",
    )
    oauth_authorization_server: str = Field(
        "https://accounts.google.com",
        description="`google-oauth`: the authorization server the metadata names (Google's issuer).",
    )
    oauth_tokeninfo_url: str = Field(
        "https://oauth2.googleapis.com/tokeninfo", description="`google-oauth`: Google's token-info endpoint."
    )
    oauth_cache_size: int = Field(
        10_000, ge=1, description="`google-oauth`: access-token verdicts kept in memory (by token hash)."
    )
    oauth_verdict_seconds: float = Field(
        300.0,
        ge=1,
        le=3600,
        description="`google-oauth`: longest an access token's verdict is kept before token-info is asked again "
        "(a token revoked at Google stops working within this).",
    )
    shared_owners: CsvList = Field(
        default_factory=list,
        description="Key ids or principal emails that may use one another's outputs and uploads (empty = each "
        "caller sees only its own).",
    )
    rate_limit_per_minute: float = Field(
        60.0, ge=0, description="Per-caller generate, edit and create_upload calls/min per instance (0 = off)."
    )
    rate_limit_burst: int = Field(10, ge=1, description="Per-caller burst size per instance.")

    # --- models and providers ------------------------------------------------------------------------------------
    default_model: str | None = Field(
        None, description="Model used when a call names none (unset: the catalog default if available)."
    )
    enable_placeholder: bool | None = Field(
        None, description="Offer `local/placeholder` (default: only with local storage)."
    )
    providers: CsvList = Field(
        default_factory=lambda: ["vertex", "gemini", "openai", "openrouter", "replicate"],
        description="Provider preference when a model is offered by several (first live one wins).",
    )
    enabled_models: CsvList = Field(
        default_factory=list, description="Restrict the catalog (curated and discovered) to these ids (empty=all)."
    )
    discovery: bool = Field(
        True, description="List image models that OpenRouter's Models API / the Gemini API name and the catalog lacks."
    )
    discovery_refresh_seconds: float = Field(
        3600.0, ge=1, description="Age after which discovered models are re-fetched (in the background)."
    )
    max_prompt_chars: int = Field(8000, ge=1, le=100_000, description="Longest accepted prompt.")
    max_input_image_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest accepted input image.")
    max_input_pixels: int = Field(50_000_000, ge=1, description="Most pixels an input image may decode to.")
    upstream_timeout_seconds: float = Field(120.0, gt=0, description="Timeout of one upstream HTTP attempt.")
    upstream_max_attempts: int = Field(4, ge=1, le=10, description="Attempts per upstream call (retries + 1).")
    preview_default: bool = Field(
        True, description="Results carry one small inline image (the model sees it) unless a call says preview=false."
    )
    preview_max_px: int = Field(384, ge=16, le=384, description="Long side of the inline preview image.")
    memory_limit_mb: int = Field(
        1024,
        ge=128,
        description="Memory of one instance (Terraform sets it from the Cloud Run limit); sizes the two below.",
    )
    decode_budget_mb: int | None = Field(
        None, ge=16, description="Decoded-image memory all calls share at once (default: half of memory_limit_mb)."
    )
    max_request_pixels: int | None = Field(
        None, ge=1, description="Decoded pixels one call's inputs and outputs may total (default: decode budget / 4 B)."
    )
    decode_wait_seconds: float = Field(
        10.0, ge=0, le=600, description="How long a decode waits for budget before answering `rate_limited`."
    )
    body_budget_mb: int | None = Field(
        None,
        ge=16,
        description="Memory large request bodies (over 1 MiB) may take at once, read and parsed (default: a quarter "
        "of memory_limit_mb); further ones wait unread.",
    )

    openai_base_url: str = Field("https://api.openai.com/v1", description="OpenAI API base URL.")
    openrouter_base_url: str = Field("https://openrouter.ai/api/v1", description="OpenRouter API base URL.")
    replicate_base_url: str = Field("https://api.replicate.com/v1", description="Replicate API base URL.")
    upstream_max_image_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Largest image downloaded from an upstream's output URL."
    )
    openai_moderation: Literal["auto", "low"] = Field("auto", description="OpenAI Images `moderation` level.")
    openrouter_app_title: str = Field("imagegen-mcp", description="`X-Title` app attribution sent to OpenRouter.")
    gemini_base_url: str | None = Field(None, description="Gemini Developer API base URL override.")

    google_cloud_project: str | None = Field(None, validation_alias=AliasChoices("GOOGLE_CLOUD_PROJECT"))
    google_cloud_location: str = Field("global", validation_alias=AliasChoices("GOOGLE_CLOUD_LOCATION"))
    google_vertex_base_url: str | None = Field(None, validation_alias=AliasChoices("GOOGLE_VERTEX_BASE_URL"))
    vertex_enabled: bool = Field(True, description="Offer Vertex AI (needs GOOGLE_CLOUD_PROJECT and ADC).")

    # --- outbound fetching of image URLs -------------------------------------------------------------------------
    fetch_allow_http_hosts: CsvList = Field(
        default_factory=list, description="Hosts plain-http image URLs may be fetched from (default none)."
    )
    fetch_max_redirects: int = Field(3, ge=0, le=10, description="Redirects followed when fetching an image URL.")
    fetch_timeout_seconds: float = Field(20.0, gt=0, description="Connect/read timeout fetching an image URL.")
    fetch_allow_private_hosts: CsvList = Field(
        default_factory=list,
        description="`host[:port]` entries image URLs may reach although they resolve to loopback/private addresses "
        "(a local fake, an internal proxy); link-local (metadata) stays blocked. Default none.",
    )

    # --- jobs and shared state -----------------------------------------------------------------------------------
    state: Literal["local", "firestore"] = Field(
        "local", description="Where job records live: an embedded SQLite file, or Firestore (Native mode)."
    )
    state_path: Path | None = Field(None, description="SQLite state file (default: `state.sqlite3` beside local_dir).")
    firestore_database: str = Field("(default)", description="Firestore database id of `state=firestore`.")
    jobs: Literal["local", "cloud-tasks"] = Field(
        "local", description="Who runs jobs: an in-process worker, or Cloud Tasks calling the internal worker route."
    )
    wait_seconds: float = Field(
        40.0, ge=0, le=300, description="Default `wait_seconds` of generate/edit: how long a call waits for its job."
    )
    job_lease_seconds: float = Field(
        30.0, ge=3, le=600, description="A running job whose worker has not renewed its lease this long is failed."
    )
    job_queue_timeout_seconds: float = Field(
        900.0, ge=10, le=86400, description="A job no worker has picked up this long after creation is failed."
    )
    tasks_queue: str | None = Field(
        None, description="Cloud Tasks queue of `jobs=cloud-tasks`: projects/P/locations/L/queues/Q."
    )
    tasks_service_account: str | None = Field(
        None, description="Service account whose OIDC token Cloud Tasks sends; the only caller of the worker route."
    )
    tasks_worker_url: str | None = Field(
        None, description="Base URL Cloud Tasks calls back (default public_url); also the token audience."
    )
    tasks_endpoint: str | None = Field(None, description="Cloud Tasks API endpoint override (a local fake).")
    tasks_dispatch_deadline_seconds: int = Field(
        300, ge=15, le=1800, description="How long Cloud Tasks waits for the worker route to run one job."
    )

    # --- usage and quotas ----------------------------------------------------------------------------------------
    quota_daily_images: int | None = Field(
        None, ge=0, description="Default images per UTC day of each caller (API key, principal); unset = unlimited."
    )
    quota_monthly_usd: float | None = Field(
        None, ge=0, description="Default estimated USD per calendar month (UTC) of each caller; unset = unlimited."
    )
    quotas: dict[str, QuotaLimits] = Field(
        default_factory=dict,
        description='IAM budgets as JSON, e.g. `{"ann@example.com": {"daily_images": 50}, "example.com": '
        '{"monthly_usd": 200}}`: an email sets that principal\'s own limits, a domain a budget its principals share.',
    )
    usage_retention_days: int = Field(
        400, ge=1, le=3650, description="Days usage records stay in the state store (the log sink keeps its own)."
    )

    @field_validator(
        "allowed_hosts",
        "allowed_origins",
        "input_buckets",
        "iam_audience",
        "iam_allowed_principals",
        "iam_allowed_domains",
        "iam_issuers",
        "shared_owners",
        "providers",
        "enabled_models",
        "fetch_allow_http_hosts",
        "fetch_allow_private_hosts",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("auth", mode="before")
    @classmethod
    def _split_auth(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip().lower() for item in value.split(",") if item.strip()]
        return value

    @field_validator("auth", mode="after")
    @classmethod
    def _check_auth(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"IMAGEGEN_AUTH names no mode: use one of {', '.join(AUTH_MODES)}")
        if len(set(value)) != len(value):
            raise ValueError(f"IMAGEGEN_AUTH names a mode twice: {','.join(value)}")
        if "none" in value and len(value) > 1:
            raise ValueError("IMAGEGEN_AUTH=none cannot be combined with other modes (it accepts everyone)")
        return value

    @field_validator("quotas", mode="after")
    @classmethod
    def _normalize_quota_names(cls, value: dict[str, QuotaLimits]) -> dict[str, QuotaLimits]:
        return {name.strip().lower(): limits for name, limits in value.items()}

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.storage == "gcs" and not self.bucket:
            raise ValueError("IMAGEGEN_STORAGE=gcs needs IMAGEGEN_BUCKET")
        if self.jobs == "cloud-tasks" and not (self.tasks_queue and self.tasks_service_account):
            raise ValueError("IMAGEGEN_JOBS=cloud-tasks needs IMAGEGEN_TASKS_QUEUE and IMAGEGEN_TASKS_SERVICE_ACCOUNT")
        if "google-oauth" in self.auth and not self.oauth_client_id:
            raise ValueError("IMAGEGEN_AUTH=google-oauth needs IMAGEGEN_OAUTH_CLIENT_ID (the OAuth client's id)")
        if self.public_url is not None:
            self.public_url = self.public_url.rstrip("/")
            if not self.public_url.startswith(("https://", "http://")):
                raise ValueError("IMAGEGEN_PUBLIC_URL must be an absolute http(s) URL")
        return self

    @property
    def auth_label(self) -> str:
        """The modes as `IMAGEGEN_AUTH` spells them (`google-oauth,bearer`), for logs and messages."""
        return ",".join(self.auth)

    @property
    def placeholder_enabled(self) -> bool:
        """The offline model is on by default only where outputs stay on this machine."""
        if self.enable_placeholder is not None:
            return self.enable_placeholder
        return self.storage == "local"

    @property
    def decode_budget_bytes(self) -> int:
        return (self.decode_budget_mb or self.memory_limit_mb // 2) * 1024 * 1024

    @property
    def body_budget_bytes(self) -> int:
        return (self.body_budget_mb or self.memory_limit_mb // 4) * 1024 * 1024

    @property
    def request_pixel_cap(self) -> int:
        return self.max_request_pixels or self.decode_budget_bytes // 4

    @property
    def state_file(self) -> Path:
        return self.state_path or self.local_dir.parent / "state.sqlite3"

    @property
    def secrets_project(self) -> str | None:
        return self.secret_project or self.google_cloud_project
