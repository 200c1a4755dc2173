"""Pytest fixtures around the fake-gcs-server launcher: import them into a conftest to use them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .gcs_server import create_bucket, start_fake_gcs

FAKE_GCS_BUCKET = "imagegen-test-outputs"


@pytest.fixture(scope="session")
def fake_gcs_server() -> Iterator[str]:
    """One fake-gcs-server per test session with the bucket `FAKE_GCS_BUCKET`; yields its base URL."""
    with start_fake_gcs((FAKE_GCS_BUCKET,)) as base_url:
        yield base_url


@pytest.fixture
def fake_gcs(fake_gcs_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session fake-gcs-server with `STORAGE_EMULATOR_HOST` pointing at it for this test."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs_server)
    return fake_gcs_server


__all__ = ["FAKE_GCS_BUCKET", "create_bucket", "fake_gcs", "fake_gcs_server"]
