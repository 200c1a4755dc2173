"""The gallery's CSP resource domains: exactly the origins this deployment's image links use."""

from __future__ import annotations

import pytest

from imagegen_mcp.config import Settings
from imagegen_mcp.ui.app import image_origins


def test_gcs_links_are_signed_storage_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    settings = Settings(storage="gcs", bucket="b", public_url="https://imagegen.example.run.app")
    assert image_origins(settings, "https://imagegen.example.run.app") == ["https://storage.googleapis.com"]


def test_gcs_emulator_origin_is_added_when_the_library_uses_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:4443")
    settings = Settings(storage="gcs", bucket="b")
    assert image_origins(settings, None) == ["https://storage.googleapis.com", "http://127.0.0.1:4443"]


def test_local_links_use_the_public_url_then_the_request_base() -> None:
    assert image_origins(Settings(public_url="https://img.example.com/base/"), "http://other:1") == [
        "https://img.example.com"
    ]
    assert image_origins(Settings(), "http://localhost:8123") == ["http://localhost:8123"]
    assert image_origins(Settings(port=9000), None) == ["http://127.0.0.1:9000"]
