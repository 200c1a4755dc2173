"""Processes of a run: the endpoint or the floor (uvicorn / functions-framework), the fake upstream, RSS sampling."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import psutil

from tests.support.servers import ServerHandle, _command, free_port, scratch_dir, stop_server

ROOT = Path(__file__).resolve().parents[1]
# Where each app's entry module lives: `main` (function/) serves the endpoint, `floor_app` (bench/) the floor.
APP_DIRS = {"imagegen": ROOT / "function", "floor": ROOT / "bench"}
ENTRY_MODULES = {"imagegen": "main", "floor": "floor_app"}
_STRIPPED_ENV = ("IMAGEGEN_", "GOOGLE_", "OPENAI", "OPENROUTER", "REPLICATE", "STORAGE_EMULATOR_HOST", "GEMINI")


def server_command(app: str, entry: str, port: int) -> list[str]:
    """The tests' command line for the endpoint (tests/support/servers.py), pointed at the floor when asked.

    Deriving the floor's command from the endpoint's keeps both started exactly the same way.
    """
    command = _command(entry, port)
    if app == "imagegen":
        return command
    swap = {
        "main:app": "floor_app:app",
        str(APP_DIRS["imagegen"]): str(APP_DIRS["floor"]),
        str(APP_DIRS["imagegen"] / "main.py"): str(APP_DIRS["floor"] / "floor_app.py"),
    }
    floor = [swap.get(part, part) for part in command]
    if floor == command or app != "floor":
        raise ValueError(f"cannot derive a command for app {app!r} from {command}")
    return floor


def compile_like_the_image() -> None:
    """Byte-compile both apps' own sources, as the image does (Dockerfile: `python -m compileall -q function`).

    With PYTHONDONTWRITEBYTECODE set (as here and in the image) nothing caches them otherwise, and every spawn
    would compile the endpoint's ~150 modules from source: a cost Cloud Run's first user does not pay.
    """
    import compileall

    for directory in APP_DIRS.values():
        compileall.compile_dir(str(directory), quiet=1)


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_ENV)}
    env.update({"PYTHONUNBUFFERED": "1", "WORKERS": "1"})
    env.update(extra or {})
    return env


@dataclass
class Proc(ServerHandle):
    """A spawned process (the tests' ServerHandle) plus when it was spawned (perf_counter)."""

    spawned_at: float = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        return rss_of_tree(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU of the process tree so far (what a call costs the server, whatever the machine's load)."""
        return cpu_of_tree(self.pid)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"process exited with {self.process.returncode}:\n{self.logs()[-4000:]}")


def rss_of_tree(pid: int) -> int:
    """RSS of a process plus its children (functions-framework may fork a worker)."""
    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total
    except psutil.Error:
        return 0


def cpu_of_tree(pid: int) -> float:
    try:
        proc = psutil.Process(pid)
        processes = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for each in processes:
        with contextlib.suppress(psutil.Error):
            times = each.cpu_times()
            total += times.user + times.system
    return total


@contextlib.contextmanager
def spawn(command: list[str], env: dict[str, str], *, port: int, name: str) -> Iterator[Proc]:
    workdir = scratch_dir(f"bench-{name}-")
    env = {**env, "BENCH_FLOOR_OUT": str(workdir / "floor-payload")}  # where the floor writes (bench/floor_app.py)
    log_path = workdir / "process.log"
    with open(log_path, "wb") as log_file:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=str(workdir), env=env, stdout=log_file, stderr=subprocess.STDOUT)
    proc = Proc(f"http://127.0.0.1:{port}", process, log_path, env, spawned_at=started)
    try:
        yield proc
    finally:
        # The folder goes when the bench exits (scratch_dir), not here: deleting a warm run's thousands of outputs
        # made ext4 skip past the just-deleted inodes for every file created in the next ~30 s (open() measured at
        # 0.7 ms instead of 0.1 ms), which a later scenario then paid on its event loop.
        stop_server(proc)


def wait_healthy(proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        proc.check_alive()
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(f"{proc.base_url}/healthz", timeout=1.0, trust_env=False).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.base_url} did not become healthy:\n{proc.logs()[-4000:]}")
        time.sleep(0.05)


def private_local_dir(prefix: str) -> str:
    """A new output folder alone in its own temporary folder, where the endpoint's state file goes beside it.

    The SQLite state file defaults to `state.sqlite3` in the output folder's parent: an output folder made straight
    under /tmp would share /tmp/state.sqlite3 with every other server and run on the machine (lock waits, a file
    that only grows).
    """
    return str(scratch_dir(prefix) / "outputs")


@contextlib.contextmanager
def start_server(app: str, env: dict[str, str], entry: str = "uvicorn") -> Iterator[Proc]:
    """The endpoint or the floor, healthy, for the block; `env` adds to a cleaned copy of this environment."""
    port = free_port()
    full_env = base_env(env)
    if "IMAGEGEN_LOCAL_DIR" not in full_env:
        full_env["IMAGEGEN_LOCAL_DIR"] = private_local_dir("bench-outputs-")
    with spawn(server_command(app, entry, port), full_env, port=port, name=app) as proc:
        wait_healthy(proc)
        yield proc


@contextlib.contextmanager
def start_fake_upstream(image_bytes: int, delay: float = 0.0) -> Iterator[FakeUpstream]:
    port = free_port()
    command = [sys.executable, "-m", "bench.fake_upstream", "--port", str(port), "--image-bytes", str(image_bytes)]
    env = base_env({"PYTHONPATH": str(ROOT)})
    with spawn([*command, "--delay", str(delay)], env, port=port, name="upstream") as proc:
        wait_healthy(proc)
        yield FakeUpstream(proc)


class FakeUpstream:
    """Handle on the fake OpenAI Images process: its base URL for the endpoint, and its knobs."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc

    @property
    def base_url(self) -> str:
        return f"{self.proc.base_url}/v1"

    def configure(self, **changes: Any) -> dict[str, Any]:
        response = httpx2.post(f"{self.proc.base_url}/_bench/config", json=changes, timeout=60.0, trust_env=False)
        response.raise_for_status()
        return response.json()


class RssSampler:
    """Samples a process tree's RSS every `interval` seconds in a thread; `peak` is the largest sample."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_of_tree(self.pid))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_of_tree(self.pid))
