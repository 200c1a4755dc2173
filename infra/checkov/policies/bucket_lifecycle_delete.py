"""CKV_IMAGEGEN_2: every GCS bucket has a lifecycle rule that deletes objects after an age.

Generated images must not pile up forever; checkov has no built-in check for this.
"""

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


def _first(value):
    while isinstance(value, list) and value:
        value = value[0]
    return value


class BucketLifecycleDelete(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure GCS buckets have a lifecycle rule that deletes objects after an age",
            id="CKV_IMAGEGEN_2",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["google_storage_bucket"],
        )

    def scan_resource_conf(self, conf: dict) -> CheckResult:
        rules = conf.get("lifecycle_rule") or []
        for rule in rules:
            rule = _first(rule) if not isinstance(rule, dict) else rule
            if not isinstance(rule, dict):
                continue
            action = _first(rule.get("action")) or {}
            condition = _first(rule.get("condition")) or {}
            if not isinstance(action, dict) or not isinstance(condition, dict):
                continue
            if _first(action.get("type")) == "Delete" and _first(condition.get("age")) is not None:
                return CheckResult.PASSED
        return CheckResult.FAILED


check = BucketLifecycleDelete()
