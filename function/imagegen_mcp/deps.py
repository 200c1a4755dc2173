"""build_deps(settings): the only place that picks backends (store, secrets, providers, auth, state, jobs)."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .access.ratelimit import RateLimiter
from .catalog import Catalog, load_catalog
from .config import PLACEHOLDER_MODEL, Settings
from .errors import ImageGenError
from .images.budget import DecodeBudget, return_large_frees_to_os
from .providers.base import ImageProvider, ProviderContext
from .providers.discovery import build_discovery
from .providers.http_clients import HttpClients
from .providers.routing import Router

if TYPE_CHECKING:
    from .access.base import Authenticator
    from .images.fetcher import GuardedFetcher
    from .jobs.queue import JobQueue
    from .secrets.base import SecretSource
    from .state.base import StateStore
    from .storage.base import ImageStore

log = logging.getLogger(__name__)


class _Closable(Protocol):
    async def aclose(self) -> None: ...


# provider name -> "module:Class"; modules are imported here, their heavy SDKs only on first use.
PROVIDER_CLASSES: dict[str, str] = {
    "placeholder": "imagegen_mcp.providers.placeholder:PlaceholderProvider",
    "vertex": "imagegen_mcp.providers.vertex:VertexProvider",
    "gemini": "imagegen_mcp.providers.vertex:GeminiApiProvider",
    "openai": "imagegen_mcp.providers.openai_images:OpenAIImagesProvider",
    "openrouter": "imagegen_mcp.providers.openrouter:OpenRouterProvider",
    "replicate": "imagegen_mcp.providers.replicate:ReplicateProvider",
}


def _load(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@dataclass
class Deps:
    """Everything a request needs, built once per process."""

    settings: Settings
    catalog: Catalog
    store: ImageStore
    secrets: SecretSource
    http: HttpClients
    fetcher: GuardedFetcher
    providers: dict[str, ImageProvider]
    router: Router
    auth: Authenticator
    budget: DecodeBudget
    state: StateStore
    job_queue: JobQueue
    rate_limiter: RateLimiter  # disabled (every check passes) at IMAGEGEN_RATE_LIMIT_PER_MINUTE=0

    async def effective_default_model(self) -> str:
        """The configured default; unset, the catalog default if live, else the placeholder where it is enabled."""
        if self.settings.default_model:
            return self.settings.default_model
        preferred = self.catalog.default_model
        if self.settings.placeholder_enabled and self.catalog.find(PLACEHOLDER_MODEL) is not None:
            try:
                await self.router.route(preferred)
            except ImageGenError:  # not available here (an answer); anything else is a defect and propagates
                return PLACEHOLDER_MODEL
        return preferred

    async def aclose(self) -> None:
        closers: list[_Closable] = [self.job_queue, self.router, *self.providers.values(), self.store, self.secrets]
        for closer in (*closers, self.http, self.fetcher, self.auth, self.state):
            try:
                await closer.aclose()
            except Exception:
                log.exception("error while closing %r", closer)


def build_store(settings: Settings) -> ImageStore:
    if settings.storage == "gcs":
        from .storage.gcs import GcsStore

        return GcsStore(settings)
    from .storage.local import LocalStore

    return LocalStore(settings)


def build_secrets(settings: Settings) -> SecretSource:
    if settings.secrets == "secret-manager":
        from .secrets.secret_manager import SecretManagerSource

        return SecretManagerSource(settings)
    from .secrets.base import EnvSecretSource

    return EnvSecretSource.from_settings(settings)


def build_state(settings: Settings) -> StateStore:
    if settings.state == "firestore":
        from .state.firestore import FirestoreStateStore

        return FirestoreStateStore(settings)
    from .state.sqlite import SQLiteStateStore

    return SQLiteStateStore(settings.state_file)


def build_job_queue(settings: Settings) -> JobQueue:
    if settings.jobs == "cloud-tasks":
        from .jobs.cloud_tasks import CloudTasksQueue

        return CloudTasksQueue(settings)
    from .jobs.queue import LocalJobQueue

    return LocalJobQueue()


def build_auth(settings: Settings, secrets: SecretSource) -> Authenticator:
    from .access.auth import build_authenticator

    return build_authenticator(settings, secrets)


def build_deps(
    settings: Settings,
    *,
    secrets: SecretSource | None = None,
    fetcher: GuardedFetcher | None = None,
    catalog: Catalog | None = None,
) -> Deps:
    """Wire the backends `settings` asks for.

    `secrets`, `fetcher` and `catalog` may be given (a secret source built elsewhere; a fetcher with an injected
    resolver or connector, as the SSRF and provider suites use; a catalog of made-up models with made-up prices);
    every other part follows from `settings` alone.
    """
    from .images.fetcher import GuardedFetcher

    catalog = catalog or load_catalog().restricted_to(settings.enabled_models, allow_unknown=settings.discovery)
    if not settings.placeholder_enabled:
        catalog = Catalog([m for m in catalog if m.id != PLACEHOLDER_MODEL], catalog.default_model)
    secrets = secrets or build_secrets(settings)
    store = build_store(settings)
    http = HttpClients(settings)
    fetcher = fetcher or GuardedFetcher.from_settings(settings)
    budget = DecodeBudget.from_settings(settings)  # one per process
    return_large_frees_to_os()
    ctx = ProviderContext(settings=settings, secrets=secrets, http=http, fetcher=fetcher, budget=budget)

    providers: dict[str, ImageProvider] = {}
    wanted = set(settings.providers) | ({"placeholder"} if settings.placeholder_enabled else set())
    for name, path in PROVIDER_CLASSES.items():
        if name in wanted:
            providers[name] = _load(path)(ctx)
    preference = [*settings.providers, "placeholder"] if settings.placeholder_enabled else list(settings.providers)
    discovery = build_discovery(ctx, providers, known=load_catalog().ids())
    router = Router(catalog, providers, preference, discovery)
    auth = build_auth(settings, secrets)
    state = build_state(settings)
    job_queue = build_job_queue(settings)
    rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    return Deps(
        settings,
        catalog,
        store,
        secrets,
        http,
        fetcher,
        providers,
        router,
        auth,
        budget,
        state,
        job_queue,
        rate_limiter,
    )
