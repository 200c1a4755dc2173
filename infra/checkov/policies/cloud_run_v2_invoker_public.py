"""CKV_IMAGEGEN_1: Cloud Run v2 invoker bindings must not name allUsers / allAuthenticatedUsers.

Checkov's built-in CKV_GCP_102 only covers the v1 google_cloud_run_service_iam_* resources.
"""

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}


class CloudRunV2InvokerNotPublic(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure Cloud Run v2 services are not invokable by allUsers or allAuthenticatedUsers",
            id="CKV_IMAGEGEN_1",
            categories=[CheckCategories.IAM],
            supported_resources=["google_cloud_run_v2_service_iam_member", "google_cloud_run_v2_service_iam_binding"],
        )

    def scan_resource_conf(self, conf: dict) -> CheckResult:
        members: list = []
        for key in ("member", "members"):
            value = conf.get(key)
            if not value:
                continue
            # python-hcl2 wraps attribute values in a list; members is a list itself.
            value = value[0] if isinstance(value, list) and len(value) == 1 else value
            members.extend(value if isinstance(value, list) else [value])
        for member in members:
            if isinstance(member, str) and member.strip() in PUBLIC_MEMBERS:
                return CheckResult.FAILED
        return CheckResult.PASSED


check = CloudRunV2InvokerNotPublic()
