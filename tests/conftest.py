"""Shared pytest configuration: isolation from the developer's environment, anyio on asyncio, settings factory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagegen_mcp.config import Settings
from tests.support.loopback_guard import guard_subprocesses, is_isolated_variable
from tests.support.loopback_guard import install as _stay_on_loopback

_stay_on_loopback()
guard_subprocesses(os.environ)  # every child Python inherits the guard through PYTHONPATH


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's IMAGEGEN_* settings or provider keys (nor hands them to a subprocess)."""
    for name in list(os.environ):
        if is_isolated_variable(name):
            monkeypatch.delenv(name)


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
