"""Keeps test processes on loopback: name lookups and connections to anything else fail before a packet leaves.

Installed for the pytest process (tests/conftest.py) and, through `loopback_site/sitecustomize.py`, for every
server subprocess the tests start. It also switches off google-auth's regional-access-boundary lookup, a
background call to iamcredentials.googleapis.com that service-account credentials make after a token refresh.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import ipaddress
import os
import socket
import sys
from collections.abc import MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any

SITE = Path(__file__).resolve().parent / "loopback_site"
# Settings and provider keys a developer may have exported; tests must neither read them nor pass them on.
_ISOLATED_PREFIXES = ("IMAGEGEN_", "OPENAI_", "OPENROUTER_", "REPLICATE_", "GEMINI_", "GOOGLE_", "K_SERVICE")
_ISOLATED_NAMES = {"PORT", "STORAGE_EMULATOR_HOST", "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT"}
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_installed = False


def _is_loopback(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def is_isolated_variable(name: str) -> bool:
    """Whether an environment variable is a setting or provider credential the tests must not inherit."""
    if name == "IMAGEGEN_DEV_VENV":  # where dev.py keeps the venv: not a setting of the service
        return False
    return name.startswith(_ISOLATED_PREFIXES) or name in _ISOLATED_NAMES


def guard_subprocesses(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Put the guard's sitecustomize first on `env`'s PYTHONPATH, so Python started with `env` installs the guard."""
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(SITE)]
    env["PYTHONPATH"] = os.pathsep.join([str(SITE), *parts])
    return env


def unguarded(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """`env` without the guard, for the one kind of child that must reach a registry: pip building tool venvs."""
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(SITE)]
    if parts:
        env["PYTHONPATH"] = os.pathsep.join(parts)
    else:
        env.pop("PYTHONPATH", None)
    return env


class NonLoopbackBlocked(OSError):
    """Raised instead of resolving or connecting to anything off loopback."""


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"test sandbox: {host!r} is not a loopback address")
        return real_getaddrinfo(host, *args, **kwargs)

    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def _check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise NonLoopbackBlocked(f"test sandbox: connection to {address[0]!r} refused (not loopback)")

    def connect(self: socket.socket, address: Any) -> None:
        _check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    _disable_regional_access_boundary_lookup()


def _disable_regional_access_boundary_lookup() -> None:
    """Patch google.auth's credentials when (if ever) they are imported: importing them here would cost every
    guarded process the import, and a test checks that constructing providers does not import google.auth."""
    module = sys.modules.get(_CREDENTIALS)
    if module is not None:
        _patch_credentials(module)
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


_CREDENTIALS = "google.auth.credentials"


def _patch_credentials(module: ModuleType) -> None:
    for cls in vars(module).values():
        if isinstance(cls, type) and hasattr(cls, "_is_regional_access_boundary_lookup_required"):
            cls._is_regional_access_boundary_lookup_required = lambda self: False  # type: ignore[method-assign]


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the real loader of google.auth.credentials so the patch follows the import."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != _CREDENTIALS:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        real_exec = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            real_exec(module)
            _patch_credentials(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
