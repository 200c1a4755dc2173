"""Shared pytest configuration: isolation from the developer's environment, anyio on asyncio, settings factory."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from imagegen_mcp.config import Settings
from tests.support.loopback_guard import guard_subprocesses, is_isolated_variable
from tests.support.loopback_guard import install as _stay_on_loopback

_stay_on_loopback()
guard_subprocesses(os.environ)  # every child Python inherits the guard through PYTHONPATH
# Cleared for the whole session here (module and session fixtures start before any per-test fixture runs) and
# again around every test (below), in case a test or fixture sets one in os.environ directly.
for _name in [n for n in os.environ if is_isolated_variable(n)]:
    del os.environ[_name]


_TOOLS_THREAD = pytest.StashKey[threading.Thread]()


def _runs_infra_tests(config: pytest.Config) -> bool:
    if "not infra" in (config.option.markexpr or ""):
        return False
    infra = (Path(__file__).resolve().parent / "infra").resolve()
    targets = [Path(str(arg).split("::", 1)[0]).resolve() for arg in config.args] or [infra.parent]
    return any(t == infra or infra in t.parents or t in infra.parents for t in targets)


def pytest_sessionstart(session: pytest.Session) -> None:
    """In the controller (not in xdist workers): build stale infra tools in the background, saying so."""
    if hasattr(session.config, "workerinput"):
        return
    from tests.infra import tooling

    # The terminal as it is now (capture is suspended in this hook): the build thread writes there even while a
    # test runs with its output captured.
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    tooling.set_announcer(lambda line: print(f"\n{line}", file=terminal, flush=True))
    if _runs_infra_tests(session.config) and not session.config.option.collectonly:
        session.config.stash[_TOOLS_THREAD] = tooling.prepare_in_background()


def pytest_sessionfinish(session: pytest.Session) -> None:
    thread = session.config.stash.get(_TOOLS_THREAD, None)
    if thread is not None:
        thread.join(timeout=600)


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


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """host:port of a Firestore emulator shared by the whole run (xdist workers included); sets no env itself."""
    from tests.support.firestore_emulator import shared_emulator

    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's base is <run>/popen-gwN: their common parent belongs to this run only.
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with shared_emulator(root / "firestore") as host:
        yield host
