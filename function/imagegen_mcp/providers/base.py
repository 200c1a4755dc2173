"""The provider seam: what every upstream adapter takes, returns and promises."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..catalog import GenerationOptions, ModelSpec
from ..deadline import Deadline
from ..images.types import InputImage

if TYPE_CHECKING:
    from ..config import Settings
    from ..images.budget import DecodeBudget
    from ..images.fetcher import GuardedFetcher
    from ..secrets.base import SecretSource
    from .http_clients import HttpClients

ProgressFn = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class ImageRequest:
    """One generation or edit, already validated against the model's capabilities."""

    prompt: str
    model: ModelSpec
    upstream_id: str
    options: GenerationOptions
    deadline: Deadline
    images: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    progress: ProgressFn | None = None

    @property
    def is_edit(self) -> bool:
        return bool(self.images)

    async def report(self, message: str) -> None:
        if self.progress is not None:
            await self.progress(message)


@dataclass(frozen=True)
class ProducedImage:
    """One image as the upstream returned it (any format; the pipeline transcodes to the asked format)."""

    data: bytes
    mime_type: str


@dataclass
class ProviderResult:
    images: list[ProducedImage]
    text: str | None = None
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None = None


@dataclass(frozen=True)
class ProviderContext:
    """Shared, process-wide resources handed to each adapter by `build_deps`."""

    settings: Settings
    secrets: SecretSource
    http: HttpClients
    fetcher: GuardedFetcher
    budget: DecodeBudget | None = None  # decoded-image memory of the process (adapters that decode take from it)


@runtime_checkable
class ImageProvider(Protocol):
    """An upstream image API. Adapters translate vendor errors to `ImageGenError` at this boundary."""

    name: str

    async def availability(self) -> Availability:
        """Whether this deployment can call the upstream (configured, key present); must be cheap after warm-up."""
        ...

    async def generate(self, request: ImageRequest) -> ProviderResult:
        """Produce `request.options.n` images (or fewer only with an error); raise `ImageGenError` on failure."""
        ...

    async def aclose(self) -> None: ...
