"""Install the stand-in Google provider for offline `terraform init/validate/plan`, cached in .cache.

- schema: PyPI `cdktn-provider-google` (SCHEMA_PACKAGE) fetched with `pip download` and turned
  into JSON once per package version (.cache/tfstub/google-schema-<version>.json);
- a venv with grpcio/msgpack (.cache/tfstub-venv) and stubs generated from the vendored
  tfplugin6.proto (.cache/tfstub/gen-<proto hash>);
- a filesystem mirror holding a launcher named as the provider binary, and a CLI config whose
  provider_installation uses only that mirror for hashicorp/google.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import schema_extract  # noqa: E402
import tooling  # noqa: E402

SCHEMA_PACKAGE = "cdktn-provider-google"
SCHEMA_PACKAGE_VERSION = "19.0.0"
PROVIDER_VERSION = "7.31.0"  # the google provider release SCHEMA_PACKAGE_VERSION was generated from
SOURCE = "registry.terraform.io/hashicorp/google"
STUB_DIR = tooling.CACHE_DIR / "tfstub"


def schema_file() -> Path:
    """The provider schema as JSON, extracted once per package version."""
    target = STUB_DIR / f"google-schema-{SCHEMA_PACKAGE_VERSION}.json"
    if target.exists():
        return target
    with tooling.locked("tfstub-schema"):
        if target.exists():
            return target
        wheels = STUB_DIR / "wheels"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--dest",
                str(wheels),
                f"{SCHEMA_PACKAGE}=={SCHEMA_PACKAGE_VERSION}",
            ],
            check=True,
            env=tooling.pip_env(),  # pip must reach the registry; the loopback guard stays on everything else
        )
        wheel = next(wheels.glob(f"cdktn_provider_google-{SCHEMA_PACKAGE_VERSION}-*.whl"))
        schema = schema_extract.extract(wheel)
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps(schema))
        partial.replace(target)
        wheel.unlink()
    return target


def _generated(python: str) -> Path:
    proto = HERE / "tfplugin6.proto"
    out = STUB_DIR / f"gen-{hashlib.sha256(proto.read_bytes()).hexdigest()[:16]}"
    if (out / "tfplugin6_pb2_grpc.py").exists():
        return out
    with tooling.locked("tfstub-gen"):
        if not (out / "tfplugin6_pb2_grpc.py").exists():
            out.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    python,
                    "-m",
                    "grpc_tools.protoc",
                    f"-I{HERE}",
                    f"--python_out={out}",
                    f"--grpc_python_out={out}",
                    str(proto),
                ],
                check=True,
            )
    return out


def cli_config() -> Path:
    """A Terraform CLI config file installing hashicorp/google from the stand-in mirror only."""
    python = tooling.tfstub_python()
    gen = _generated(python)
    schema = schema_file()
    mirror = STUB_DIR / "mirror"
    binary_dir = mirror / SOURCE / PROVIDER_VERSION / "linux_amd64"
    launcher = binary_dir / f"terraform-provider-google_v{PROVIDER_VERSION}"
    script = f'#!/bin/sh\nexec "{python}" "{HERE / "server.py"}" "{schema}" "{gen}"\n'
    with tooling.locked("tfstub-mirror"):
        if not launcher.exists() or launcher.read_text() != script:
            binary_dir.mkdir(parents=True, exist_ok=True)
            launcher.write_text(script)
            launcher.chmod(0o755)
        config = STUB_DIR / "terraformrc"
        text = (
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["{SOURCE}"]\n  }}\n'
            f'  direct {{\n    exclude = ["{SOURCE}"]\n  }}\n'
            "}\n"
        )
        if not config.exists() or config.read_text() != text:
            config.write_text(text)
    return config
