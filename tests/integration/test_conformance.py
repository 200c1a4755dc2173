"""The official MCP conformance suite (@modelcontextprotocol/conformance) against the real server over HTTP.

Only the scenarios that apply to this server run; docs/conformance.md lists the others and why they cannot apply.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.node_tools import conformance_command, npm_available
from tests.support.servers import ServerHandle, start_server

pytestmark = [pytest.mark.npm, pytest.mark.skipif(not npm_available(), reason="needs npm for the conformance suite")]

# Keep in step with docs/conformance.md.
APPLICABLE = (
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "dns-rebinding-protection",
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ServerHandle]:
    with start_server({}) as handle:
        yield handle


@pytest.fixture(scope="module")
def suite() -> list[str]:
    return conformance_command()


@pytest.mark.parametrize("scenario", APPLICABLE)
def test_conformance_scenario(endpoint: ServerHandle, suite: list[str], scenario: str, tmp_path: Path) -> None:
    completed = subprocess.run(
        [*suite, "server", "--url", endpoint.mcp_url, "--scenario", scenario, "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    report = completed.stdout[-3000:] + completed.stderr[-2000:]
    [checks_file] = tmp_path.glob("*/checks.json")
    checks = json.loads(checks_file.read_text())
    assert checks, f"{scenario} ran no checks:\n{report}"
    failed = [c for c in checks if c["status"] not in ("SUCCESS", "INFO")]
    assert failed == [], f"{scenario}:\n{json.dumps(failed, indent=2)[:3000]}"
    assert completed.returncode == 0, report


def test_applicable_scenarios_exist_in_the_suite(suite: list[str]) -> None:
    listing = subprocess.run([*suite, "list", "--server"], capture_output=True, text=True, timeout=120, check=True)
    names = {line.strip()[2:].split(" ")[0] for line in listing.stdout.splitlines() if line.strip().startswith("- ")}
    assert set(APPLICABLE) <= names
    documented = (Path(__file__).resolve().parents[2] / "docs" / "conformance.md").read_text()
    for name in names:
        assert f"`{name}`" in documented, f"docs/conformance.md does not say whether {name} applies"
