"""Shared pytest configuration: anyio on asyncio, settings factory, in-process deps."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """host:port of a Firestore emulator shared by the whole run (xdist workers included); sets no env itself."""
    from tests.support.firestore_emulator import shared_emulator

    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's base is <run>/popen-gwN: their common parent belongs to this run only.
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with shared_emulator(root / "firestore") as host:
        yield host
