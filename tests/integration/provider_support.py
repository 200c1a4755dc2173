"""Helpers for the third-party provider tests: a real ProviderContext wired to loopback fakes."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import pytest

from imagegen_mcp.catalog import GenerationOptions, check_options, load_catalog
from imagegen_mcp.config import Settings
from imagegen_mcp.deadline import Deadline
from imagegen_mcp.images.fetcher import GuardedFetcher
from imagegen_mcp.images.types import InputImage
from imagegen_mcp.providers.base import ImageRequest, ProviderContext
from imagegen_mcp.providers.http_clients import HttpClients
from imagegen_mcp.providers.upstream_http import KeyedProvider
from imagegen_mcp.secrets.base import EnvSecretSource
from tests.fakes.http_fake import PUBLIC_HOST, PUBLIC_IP, FakeApi, make_image
from tests.fakes.ssrf_lab import FakeResolver, RecordingConnector

F = TypeVar("F", bound=FakeApi)
P = TypeVar("P", bound=KeyedProvider)


def fake_fixture(start: Callable[[], AbstractContextManager[tuple[str, F]]]) -> Any:
    """The per-test `fake` fixture of a provider suite: runs the fake `start` gives, yields (base URL, fake)."""

    @pytest.fixture(name="fake")
    def fixture() -> Iterator[tuple[str, F]]:
        with start() as started:
            yield started

    return fixture


def keyed_provider(
    cls: type[P],
    started: tuple[str, FakeApi],
    key_variable: str,
    base_url_setting: str,
    key: str | None,
    **settings: object,
) -> P:
    """Provider `cls` pointed at a running fake, its key (if any) in `key_variable` of the secret source."""
    base_url, fake = started
    environ = {key_variable: key} if key else {}
    return cls(make_ctx(fake, environ, **{base_url_setting: base_url}, **settings))


def routed_fetcher(fake: FakeApi) -> tuple[GuardedFetcher, RecordingConnector]:
    """The production fetcher, with DNS answering a public IP for the fake's host and connections going to loopback."""
    connector = RecordingConnector(origin_port=lambda: fake.port)
    fetcher = GuardedFetcher(
        allow_http_hosts=[f"{PUBLIC_HOST}:{fake.port}"],
        resolver=FakeResolver({PUBLIC_HOST: [PUBLIC_IP]}),
        connector=connector,
        timeout_seconds=5.0,
    )
    return fetcher, connector


def make_ctx(fake: FakeApi, environ: dict[str, str], **settings: object) -> ProviderContext:
    values: dict[str, object] = {"upstream_max_attempts": 3, "upstream_timeout_seconds": 5.0, **settings}
    base = Settings(**values)  # type: ignore[arg-type]
    fetcher, _ = routed_fetcher(fake)
    return ProviderContext(settings=base, secrets=EnvSecretSource(environ), http=HttpClients(base), fetcher=fetcher)


def input_image(width: int = 40, height: int = 30, fmt: str = "PNG") -> InputImage:
    mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt]
    return InputImage(data=make_image(width, height, fmt, (200, 30, 30)), mime_type=mime, width=width, height=height)


def request_for(
    model_id: str,
    provider: str,
    prompt: str = "a red bicycle leaning on a wall",
    *,
    images: tuple[InputImage, ...] = (),
    mask: InputImage | None = None,
    deadline: float = 30.0,
    **options: object,
) -> ImageRequest:
    """A request validated against the shipped catalog exactly as the tools validate it."""
    spec = load_catalog().get(model_id)
    offer = spec.offer_for(provider)
    assert offer is not None, f"{model_id} has no {provider} offer"
    opts = GenerationOptions(**options)  # type: ignore[arg-type]
    check_options(spec, opts, inputs=len(images), mask=mask is not None)
    return ImageRequest(
        prompt=prompt,
        model=spec,
        upstream_id=offer.upstream_id,
        options=opts,
        deadline=Deadline(deadline),
        images=images,
        mask=mask,
    )


def image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return img.size


def assert_secret_absent(caplog_records: list[logging.LogRecord], secret: str, *texts: str) -> None:
    """Neither the log (messages and structured fields) nor the given texts contain the key."""
    for record in caplog_records:
        assert secret not in record.getMessage()
        assert secret not in repr(getattr(record, "fields", ""))
    for text in texts:
        assert secret not in text
