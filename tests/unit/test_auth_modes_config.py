"""IMAGEGEN_AUTH as a list of modes: parsing, refusals, and the single values that keep working."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from imagegen_mcp.config import Settings


def settings(monkeypatch: pytest.MonkeyPatch, auth: str, **env: str) -> Settings:
    monkeypatch.setenv("IMAGEGEN_AUTH", auth)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_single_modes_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().auth == ["none"]
    assert settings(monkeypatch, "bearer").auth == ["bearer"]
    assert settings(monkeypatch, "iam").auth == ["iam"]
    combined = settings(
        monkeypatch, " Google-OAuth , bearer ", IMAGEGEN_OAUTH_CLIENT_ID="123.apps.googleusercontent.com"
    )
    assert combined.auth == ["google-oauth", "bearer"] and combined.auth_label == "google-oauth,bearer"
    assert settings(monkeypatch, "iam,bearer").auth == ["iam", "bearer"]
    assert Settings(auth="iam").auth == ["iam"]  # a plain string in code, as tests and worker_route pass it
    assert Settings(auth=["bearer", "iam"]).auth == ["bearer", "iam"]


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("none,bearer", "cannot be combined"),
        ("bearer,none", "cannot be combined"),
        ("bearer,bearer", "twice"),
        ("oauth", "literal"),
        ("bearer,iam,kerberos", "literal"),
        ("", "names no mode"),
        (" , ", "names no mode"),
    ],
)
def test_refused_lists(monkeypatch: pytest.MonkeyPatch, value: str, complaint: str) -> None:
    with pytest.raises(ValidationError) as info:
        settings(monkeypatch, value)
    assert complaint in str(info.value).lower()


def test_google_oauth_needs_the_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as info:
        settings(monkeypatch, "google-oauth,bearer")
    assert "IMAGEGEN_OAUTH_CLIENT_ID" in str(info.value)
