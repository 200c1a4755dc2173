"""Every gcloud command the docs show parses with the real gcloud and stops only at authentication (offline)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "infra" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"", "sh", "bash", "shell", "console"}
INLINE = re.compile(r"`(gcloud [^`]+)`")
# What a reader substitutes: the docs' own variables and <placeholders>, with sample values.
SAMPLE_ENV = {
    "PROJECT_ID": "acme-imagegen-dev",
    "PROJECT": "acme-imagegen-dev",
    "REGION": "europe-west1",
    "ENV": "dev",
    "MCP_URL": "https://imagegen-mcp-dev-123456789.europe-west1.run.app/mcp",
    "SERVICE_URL": "https://imagegen-mcp-dev-123456789.europe-west1.run.app",
    "AUDIENCE": "https://imagegen-mcp-dev-123456789.europe-west1.run.app",
    "SA_EMAIL": "imagegen-client-dev@acme-imagegen-dev.iam.gserviceaccount.com",
    "IMAGEGEN_SIGNING_SERVICE_ACCOUNT": "imagegen-run-dev@acme-imagegen-dev.iam.gserviceaccount.com",
    "OPENAI_API_KEY": "sk-doc-sample",
    "OPENROUTER_API_KEY": "sk-or-doc-sample",
    "REPLICATE_API_TOKEN": "r8-doc-sample",
    "GEMINI_API_KEY": "doc-sample",
}
PLACEHOLDERS = {"<env>": "dev", "<project>": "acme-imagegen-dev", "<region>": "europe-west1", "...": "x"}
# gcloud reached the point where it needs credentials: what "stops only at authentication" looks like.
AUTH_STOP = re.compile(
    r"active account selected|gcloud auth login|verification code|sign-in prompts|Reauthentication|"
    r"could not find default credentials|There was a problem refreshing your current auth tokens"
)
PARSE_ERROR = re.compile(
    r"Invalid choice|unrecognized arguments|argument .*: expected|Invalid value for \[|"
    r"must be specified|is required|Bad syntax|ERROR: \(gcloud\) "
)


def _shell_blocks(text: str) -> list[str]:
    """The bodies of fenced shell (or unlabelled) code blocks, fences paired line by line."""
    blocks, body, fence = [], [], None
    for line in text.splitlines():
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence = stripped[3:].strip()
            body = []
        elif fence is not None and stripped == "```":
            if fence in SHELL_FENCES:
                blocks.append("\n".join(body))
            fence = None
        elif fence is not None:
            body.append(line)
    return blocks


def _shell_lines(block: str) -> list[str]:
    lines, current = [], ""
    for raw in block.splitlines():
        line = raw.strip()
        if line.startswith("$ "):
            line = line[2:]
        if current:
            line = current + " " + line
        if line.endswith("\\"):
            current = line[:-1].rstrip()
            continue
        current = ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _gcloud_segments(line: str) -> list[str]:
    """Each gcloud invocation of a shell line, up to its pipe, `&&`, `;`, `)` or trailing comment."""
    segments = []
    for match in re.finditer(r"(?<![\w-])gcloud\s", line):
        rest = line[match.start() :]
        depth, end, quote = 0, len(rest), None
        for i, ch in enumerate(rest):
            if quote:
                if ch == quote:
                    quote = None
                continue
            if ch in "\"'":
                quote = ch
            elif rest.startswith("$(", i):
                depth += 1
            elif ch == ")":
                if depth == 0:
                    end = i
                    break
                depth -= 1
            elif depth == 0 and (ch in "|;" or rest.startswith("&&", i) or rest.startswith(" #", i)):
                end = i
                break
        segments.append(rest[:end].strip())
    return segments


def doc_commands() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        lines = [line for block in _shell_blocks(text) for line in _shell_lines(block)]
        lines += [m.group(1) for m in INLINE.finditer(text)]
        for line in lines:
            for segment in _gcloud_segments(line):
                for placeholder, value in PLACEHOLDERS.items():
                    segment = segment.replace(placeholder, value)
                found.append((doc.relative_to(ROOT).as_posix(), segment))
    return list(dict.fromkeys(found))


COMMANDS = doc_commands()


def test_the_docs_show_gcloud_commands() -> None:
    assert len(COMMANDS) >= 10


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud is not installed on this machine")
@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d}:{c[:60]}" for d, c in COMMANDS])
def test_command_parses_and_stops_at_authentication(doc: str, command: str, tmp_path: Path) -> None:
    config = tmp_path / "gcloud"
    config.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CLOUDSDK_CONFIG": str(config),
        "CLOUDSDK_CORE_PROJECT": SAMPLE_ENV["PROJECT_ID"],
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
        **SAMPLE_ENV,
    }
    # Commands run from the repository root, as the docs say; files a reader would have made are samples.
    workdir = tmp_path / "repo"
    workdir.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {".git", ".venv", ".cache"}:
            (workdir / entry.name).symlink_to(entry)
    (workdir / "api-keys.json").write_text('{"keys": []}')
    (workdir / "keys.json").write_text('{"keys": []}')
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 2 and not PARSE_ERROR.search(output), f"{doc}: `{command}` does not parse:\n{output}"
    assert done.returncode == 0 or AUTH_STOP.search(output), f"{doc}: `{command}` failed before auth:\n{output}"
