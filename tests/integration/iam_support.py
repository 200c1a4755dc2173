"""What the iam-mode authenticator tests share: service URL, peer hosts, a loopback Google-certs server, settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from imagegen_mcp.config import Settings
from tests.fakes.google_certs_server import GoogleCertsServer, SigningKey

SERVICE_URL = "https://imagegen-abc123-ew.a.run.app"
HOSTS: dict[str, Any] = {"client_host": "10.0.0.7", "server_host": "10.0.0.8"}


# Imported by the test modules under these names; the fixtures are `google` and `key`.
@pytest.fixture(scope="module", name="google")
def google_certs_fixture() -> Iterator[GoogleCertsServer]:
    server = GoogleCertsServer(max_age=3600)
    with server.running():
        yield server


@pytest.fixture(scope="module", name="key")
def signing_key_fixture(google: GoogleCertsServer) -> SigningKey:
    return google.publish(SigningKey("kid-current"))


def settings_for(google: GoogleCertsServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"auth": "iam", "public_url": SERVICE_URL, "iam_certs_url": google.url}
    values.update(overrides)
    return Settings(**values)
