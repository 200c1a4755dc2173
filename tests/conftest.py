"""Shared pytest configuration: anyio on asyncio, settings factory, in-process deps."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagegen_mcp.config import Settings
from tests.support.loopback_guard import install as _stay_on_loopback

_stay_on_loopback()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings isolated from the environment: local store in tmp_path, env secrets, no auth."""

    def factory(**overrides: object) -> Settings:
        values: dict[str, object] = {"local_dir": tmp_path / "outputs", "rate_limit_per_minute": 0}
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return factory
