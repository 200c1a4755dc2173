#!/usr/bin/env python3
"""Plan checks that need a root variable, which terraform-compliance cannot compare to.

Reads the one-line `terraform show -json` plan and fails (exit 1) when:
- auth_mode lists "iam" and any Cloud Run invoker binding names allUsers or
  allAuthenticatedUsers (IAM mode is never public);
- allUsers is granted unless auth_mode lists only "bearer" / "google-oauth" (the app's own
  checks) AND allow_public_invoker = true;
- the Cloud Run service's ingress differs from the root variable `ingress`
  (ingress as configured for the environment);
- the service's shape differs from the root variable `deploy_as`: "function" needs
  a build_config with the entry point `mcp` (function/main.py), "service" none; and,
  given `--deploy-as X` (the pipeline's _DEPLOY_AS), X differs from `deploy_as`, so
  the pipeline can never deploy one shape onto a service planned as the other;
- an IAM binding's member is unknown in the plan (known after apply: a service
  account created in the same plan) and its configuration expression is anything
  but a reference to a google_service_account of the same module. The features
  check every member the plan knows; this covers the ones it cannot know yet, so
  a first-ever plan is checked as strictly as a steady-state one.

Standard library only.  Usage: python3 plan_checks.py tfplan.json [--deploy-as service|function]
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}
SHAPES = ("service", "function")
FUNCTION_TARGET = "mcp"
# A service account of this module, or the Google-managed writer identity of a log sink this module creates.
SERVICE_ACCOUNT_REF = re.compile(
    r"^(google_service_account\.\w+(\.(member|email))?|google_logging_project_sink\.\w+(\.writer_identity)?)$"
)


def resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from resources(child)


def variable(plan: dict[str, Any], name: str, default: Any = None) -> Any:
    return plan.get("variables", {}).get(name, {}).get("value", default)


def configured(module: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(module address, configuration resource) for every module of the configuration section."""
    for res in module.get("resources", []):
        yield prefix, res
    for name, call in module.get("module_calls", {}).items():
        yield from configured(call.get("module", {}), f"{prefix}.module.{name}" if prefix else f"module.{name}")


def unknown_members(plan: dict[str, Any]) -> list[str]:
    """Bindings whose member is known only after apply must name a service account of the same module."""
    expressions = {
        (module, res["type"], res["name"]): res.get("expressions", {})
        for module, res in configured(plan.get("configuration", {}).get("root_module", {}))
    }
    problems = []
    for change in plan.get("resource_changes", []):
        unknown = (change.get("change") or {}).get("after_unknown") or {}
        if not change["type"].endswith("_iam_member") or unknown.get("member") is not True:
            continue
        key = (change.get("module_address", ""), change["type"], change["name"])
        refs = expressions.get(key, {}).get("member", {}).get("references", [])
        if not refs or not all(SERVICE_ACCOUNT_REF.match(ref) for ref in refs):
            problems.append(f"{change['address']}: member known only after apply, not a service account here: {refs}")
    return problems


def shape_problems(res: dict[str, Any], deploy_as: str) -> list[str]:
    """The planned service carries a build_config exactly when it is the function shape."""
    build = (res.get("values") or {}).get("build_config") or []
    if deploy_as == "function":
        if len(build) != 1 or build[0].get("function_target") != FUNCTION_TARGET:
            return [f"{res['address']}: deploy_as=function needs build_config with function_target {FUNCTION_TARGET!r}"]
    elif build:
        return [f"{res['address']}: deploy_as={deploy_as} but the service has a build_config"]
    return []


def check(plan: dict[str, Any], deploy_as_arg: str | None = None) -> list[str]:
    problems: list[str] = []
    deploy_as = variable(plan, "deploy_as", "service")
    if deploy_as not in SHAPES:
        problems.append(f"deploy_as {deploy_as!r} is not one of {SHAPES}")
    if deploy_as_arg is not None and deploy_as_arg != deploy_as:
        problems.append(f"the pipeline deploys {deploy_as_arg!r} but the plan's deploy_as is {deploy_as!r}")
    auth_modes = str(variable(plan, "auth_mode", "iam")).split(",")
    allow_public = bool(variable(plan, "allow_public_invoker", False))
    ingress = variable(plan, "ingress")
    planned = list(resources(plan.get("planned_values", {}).get("root_module", {})))

    for res in planned:
        values = res.get("values") or {}
        if res.get("type") in ("google_cloud_run_v2_service_iam_member", "google_cloud_run_v2_service_iam_binding"):
            members = [values.get("member")] if "member" in values else list(values.get("members") or [])
            public = sorted(m for m in members if m in PUBLIC_MEMBERS)
            if not public or values.get("role") != "roles/run.invoker":
                continue
            if "iam" in auth_modes:
                problems.append(f"{res['address']}: {public} invoker in IAM mode")
            elif "allAuthenticatedUsers" in public:
                problems.append(f"{res['address']}: allAuthenticatedUsers is never a valid invoker")
            elif not (set(auth_modes) <= {"bearer", "google-oauth"} and allow_public):
                problems.append(
                    f"{res['address']}: allUsers invoker without auth_mode bearer/google-oauth and allow_public_invoker"
                )
        if res.get("type") == "google_cloud_run_v2_service" and ingress is not None:
            if values.get("ingress") != ingress:
                problems.append(f"{res['address']}: ingress {values.get('ingress')!r} != configured {ingress!r}")
        if res.get("type") == "google_cloud_run_v2_service":
            problems.extend(shape_problems(res, deploy_as))
    problems.extend(unknown_members(plan))
    if not any(r.get("type") == "google_cloud_run_v2_service" for r in planned):
        problems.append("no google_cloud_run_v2_service in the plan")
    return problems


def main(argv: list[str]) -> int:
    args = argv[1:]
    deploy_as_arg = None
    if len(args) == 3 and args[1] == "--deploy-as":
        deploy_as_arg = args.pop(2)
        args.pop(1)
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        plan = json.load(f)
    problems = check(plan, deploy_as_arg)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if problems:
        return 1
    print("plan checks passed (public invoker vs auth mode, ingress as configured, shape, members known after apply)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
