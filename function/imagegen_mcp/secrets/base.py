"""The secrets seam: where third-party API keys and bearer-key hashes come from (protocol + environment source)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..config import Settings

# Logical secret names used by the code; each source maps them to its own names.
OPENAI = "openai"
OPENROUTER = "openrouter"
REPLICATE = "replicate"
GEMINI = "gemini"
API_KEYS = "api_keys"

# Environment variable names of the env source (the vendors' own conventional names) and the `Settings` fields
# config.py reads them into (also from a `--config` env file).
ENV_NAMES: Mapping[str, tuple[str, ...]] = {
    OPENAI: ("OPENAI_API_KEY",),
    OPENROUTER: ("OPENROUTER_API_KEY",),
    REPLICATE: ("REPLICATE_API_TOKEN",),
    GEMINI: ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    API_KEYS: ("IMAGEGEN_API_KEYS",),
}
SETTINGS_FIELDS: Mapping[str, str] = {
    OPENAI: "openai_api_key",
    OPENROUTER: "openrouter_api_key",
    REPLICATE: "replicate_api_token",
    GEMINI: "gemini_api_key",
    API_KEYS: "api_keys",
}


@runtime_checkable
class SecretSource(Protocol):
    """Returns a secret's current value, `None` when it is not configured at all.

    Raises `ImageGenError(misconfigured)` when it is configured but cannot be read; never logs values.
    """

    async def get(self, name: str) -> str | None: ...

    def describe(self, name: str) -> str:
        """Where `name` is looked up, for operator-facing messages (never the value)."""
        ...

    async def aclose(self) -> None: ...


class EnvSecretSource:
    """Secrets from environment variables via `Settings` (local default; Cloud Run secret env vars land here too)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = dict(environ)

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> EnvSecretSource:
        """The values config.py read (environment or `--config` file); `environ` replaces them (tests)."""
        if environ is not None:
            return cls({k: v for k, v in environ.items() if any(k in names for names in ENV_NAMES.values())})
        values: dict[str, str] = {}
        for name, field in SETTINGS_FIELDS.items():
            secret = getattr(settings, field)
            if secret is not None:
                values[ENV_NAMES[name][0]] = secret.get_secret_value()
        return cls(values)

    async def get(self, name: str) -> str | None:
        for env_name in ENV_NAMES.get(name, ()):
            value = self._environ.get(env_name, "").strip()
            if value:
                return value
        return None

    def describe(self, name: str) -> str:
        return " or ".join(ENV_NAMES.get(name, (name,)))

    async def aclose(self) -> None:
        return None
