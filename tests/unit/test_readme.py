"""The README stays true: its generated tables match the code, and it names the two set-up commands."""

from __future__ import annotations

from pathlib import Path

from imagegen_mcp.config import Settings
from imagegen_mcp.doc_tables import _env_names, capability_matrix, config_table

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_configuration_table_matches_settings() -> None:
    assert config_table() in README, "regenerate with: imagegen-mcp docs update"
    for name, field in Settings.model_fields.items():
        for env in _env_names(name, field):
            assert f"`{env}`" in README


def test_capability_matrix_matches_catalog() -> None:
    assert capability_matrix() in README, "regenerate with: imagegen-mcp docs update"


def test_two_setup_commands_and_ci_agree() -> None:
    assert "python3 dev.py serve" in README and "python3 dev.py test" in README
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text(encoding="utf-8")
    assert "dev.py test" in ci
