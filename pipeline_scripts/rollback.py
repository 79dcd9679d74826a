"""Roll back the model batch inference uses, and undo the rollback.

Batch inference uses the newest Approved version of the model package group, chosen when it
runs (code/model_resolver: ListModelPackages filtered on Approved, sorted by CreationTime,
descending). Rolling back therefore means rejecting that version: the previous Approved one
becomes the newest, and the next batch uses it with no CI run. The rollback is recorded on the
rejected version itself, so undo works from any machine, after any restart:

    ApprovalDescription          "Rolled back to version 3: <reason>"
    rollback_at                  when (UTC, ISO 8601 with microseconds: orders rollbacks)
    rollback_reason              the reason given
    rollback_to                  ARN of the version batch inference uses instead

Undo re-approves the version of the most recent rollback not yet undone and records
`rollback_undone_at` and `rollback_undo_reason` on it. A second rollback while the current
version is itself the result of a rollback is refused unless `further` is set: a retried or
repeated command must not silently walk back through the registry.

Uses boto3's default credential chain and honours AWS_ENDPOINT_URL, like upsert.
IAM: sagemaker:DescribeModelPackageGroup, ListModelPackages, DescribeModelPackage,
UpdateModelPackage; s3:GetObject on the versions' evaluation.json (only to print metrics).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.exceptions import ClientError

AT, REASON, TO = "rollback_at", "rollback_reason", "rollback_to"
UNDONE_AT, UNDO_REASON = "rollback_undone_at", "rollback_undo_reason"
DEFAULT_REASON = "no reason given"

# botocore sagemaker model, shape CustomerMetadataMap: at most 50 entries; values (shape
# CustomerMetadataValue) 1-256 characters matching ^([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)$.
MAX_PROPERTIES = 50
MAX_VALUE_LENGTH = 256
VALUE_PUNCTUATION = set("_.:/=+-@")


class RollbackError(RuntimeError):
    """Nothing was changed; the message says why and what to do."""


@dataclass(frozen=True)
class Version:
    """One model version as DescribeModelPackage returns it, plus its evaluation metrics."""

    package: dict
    metrics: str

    @property
    def arn(self) -> str:
        return self.package["ModelPackageArn"]

    @property
    def number(self) -> int:
        return self.package["ModelPackageVersion"]

    @property
    def properties(self) -> dict:
        return self.package.get("CustomerMetadataProperties") or {}

    @property
    def active_rollback(self) -> bool:
        """Rejected by a rollback that was not undone since."""
        at = self.properties.get(AT)
        return (
            self.package["ModelApprovalStatus"] == "Rejected"
            and at is not None
            and at > self.properties.get(UNDONE_AT, "")
        )

    def line(self) -> str:
        created = self.package["CreationTime"].astimezone(UTC).isoformat(timespec="seconds")
        return f"version {self.number} (created {created}; {self.metrics})"


def check_reason(reason: str) -> str:
    """The reason, if SageMaker accepts it as a metadata value; else a one-line error."""
    if not reason or len(reason) > MAX_VALUE_LENGTH:
        raise RollbackError(
            f"--reason: expected 1 to {MAX_VALUE_LENGTH} characters, got {len(reason)}"
        )
    # \p{L}, \p{Z}, \p{N} are the Unicode general categories L*, Z*, N*. Characters this
    # Python's Unicode database does not know (Cn) are refused: they may not be letters.
    bad = sorted({c for c in reason if unicodedata.category(c)[0] not in "LZN"} - VALUE_PUNCTUATION)
    if bad:
        raise RollbackError(
            f"--reason: character(s) {' '.join(repr(c) for c in bad)} not allowed (SageMaker "
            "metadata values allow letters, digits, spaces and _ . : / = + - @), got "
            f"{reason!r}"
        )
    return reason


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _metrics(s3, package: dict) -> str:
    """'mse 4.61, rmse 2.15, ...' from the version's evaluation.json, or why not."""
    uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    if not uri:
        return "no evaluation metrics registered"
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        values = {name: m["value"] for name, m in report["regression_metrics"].items()}
    except ClientError as error:
        return f"metrics unreadable: {error.response['Error']['Code']} on {uri}"
    except (ValueError, KeyError, TypeError):
        return f"metrics unreadable: {uri} is not an evaluation.json"
    return ", ".join(
        f"{name} {value:.4g}" if isinstance(value, int | float) else f"{name} {value}"
        for name, value in values.items()
    )


class Registry:
    """The model package group, read and changed the way batch inference sees it."""

    def __init__(self, sagemaker, s3, group: str):
        self.sagemaker, self.s3, self.group = sagemaker, s3, group
        try:
            sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError as error:
            # moto and AWS answer ValidationException for a missing group.
            if error.response["Error"]["Code"] not in ("ValidationException", "ResourceNotFound"):
                raise
            raise RollbackError(
                f"model package group '{group}' does not exist "
                f"({error.response['Error']['Message']}); nothing to roll back"
            ) from None

    def arns(self, status: str) -> list[str]:
        """Versions with that approval status, newest first: the model resolver's order."""
        paginator = self.sagemaker.get_paginator("list_model_packages")
        pages = paginator.paginate(
            ModelPackageGroupName=self.group,
            ModelApprovalStatus=status,
            SortBy="CreationTime",
            SortOrder="Descending",
        )
        return [s["ModelPackageArn"] for page in pages for s in page["ModelPackageSummaryList"]]

    def version(self, arn: str, metrics: bool = True) -> Version:
        package = self.sagemaker.describe_model_package(ModelPackageName=arn)
        return Version(package, _metrics(self.s3, package) if metrics else "metrics not read")

    def active_rollbacks(self) -> list[Version]:
        """Versions rejected by a rollback not undone yet, most recent rollback first."""
        rejected = [self.version(arn, metrics=False) for arn in self.arns("Rejected")]
        active = [v for v in rejected if v.active_rollback]
        return sorted(active, key=lambda v: v.properties[AT], reverse=True)

    def update(self, version: Version, status: str, description: str, recorded: dict) -> None:
        properties = {**version.properties, **recorded}
        for key, value in recorded.items():
            if not value or len(value) > MAX_VALUE_LENGTH:
                raise RollbackError(
                    f"{version.arn}: metadata {key}={value!r}: expected 1 to "
                    f"{MAX_VALUE_LENGTH} characters"
                )
        if len(properties) > MAX_PROPERTIES:
            raise RollbackError(
                f"{version.arn}: recording the rollback needs {len(properties)} metadata "
                f"properties, SageMaker allows {MAX_PROPERTIES}"
            )
        self.sagemaker.update_model_package(
            ModelPackageArn=version.arn,
            ModelApprovalStatus=status,
            ApprovalDescription=description,
            # AWS merges the map given into the version's (keys are removed only with
            # CustomerMetadataPropertiesToRemove: botocore shape UpdateModelPackageInput);
            # moto 5.2.5 replaces the whole map. Sending every key is right for both.
            CustomerMetadataProperties=properties,
        )


Confirm = Callable[[str], bool]


def rollback(
    registry: Registry, reason: str, confirm: Confirm, out=print, further: bool = False
) -> None:
    """Rejects the version batch inference uses, so it uses the previous Approved one."""
    reason = check_reason(reason)
    group = registry.group
    approved = registry.arns("Approved")
    if len(approved) < 2:
        what = "no Approved version" if not approved else "only one Approved version"
        raise RollbackError(
            f"model package group '{group}' has {what}: nothing to roll back to (approve an "
            "earlier version in the model registry first)"
        )
    current, previous = registry.version(approved[0]), registry.version(approved[1])
    undone_by = next(
        (v for v in registry.active_rollbacks() if v.properties.get(TO) == current.arn), None
    )
    if undone_by is not None and not further:
        raise RollbackError(
            f"version {current.number} is already in use because version {undone_by.number} "
            f"was rolled back at {undone_by.properties[AT]} "
            f"({undone_by.properties.get(REASON, DEFAULT_REASON)}); nothing changed: pass "
            f"--further to also reject version {current.number} and use version "
            f"{previous.number}, or --undo to restore version {undone_by.number}"
        )
    out(f"model package group '{group}': batch inference uses the newest Approved version")
    out(f"  now:   {current.line()}")
    out(f"  after: {previous.line()}")
    if not confirm(f"Reject version {current.number} and use version {previous.number}?"):
        raise RollbackError("not confirmed; nothing changed (pass --yes to skip the prompt)")
    registry.update(
        current,
        "Rejected",
        f"Rolled back to version {previous.number}: {reason}",
        {AT: _now(), REASON: reason, TO: previous.arn},
    )
    _report(registry, out, f"version {current.number}: Approved -> Rejected ({reason})")
    out(f"  undo: make rollback UNDO=1 or --undo (re-approves version {current.number})")


def undo(registry: Registry, reason: str, confirm: Confirm, out=print) -> None:
    """Re-approves the version the most recent (not yet undone) rollback rejected."""
    reason = check_reason(reason)
    rollbacks = registry.active_rollbacks()
    if not rollbacks:
        raise RollbackError(
            f"model package group '{registry.group}' has no rollback to undo (no Rejected "
            f"version carries a '{AT}' newer than its '{UNDONE_AT}')"
        )
    target = registry.version(rollbacks[0].arn)
    out(
        f"model package group '{registry.group}': undo the rollback of {target.line()} at "
        f"{target.properties[AT]} ({target.properties.get(REASON, DEFAULT_REASON)})"
    )
    if not confirm(f"Re-approve version {target.number}?"):
        raise RollbackError("not confirmed; nothing changed (pass --yes to skip the prompt)")
    registry.update(
        target,
        "Approved",
        f"Rollback undone: {reason}",
        {UNDONE_AT: _now(), UNDO_REASON: reason},
    )
    _report(registry, out, f"version {target.number}: Rejected -> Approved ({reason})")


def _report(registry: Registry, out, change: str) -> None:
    """What changed, and what the next batch uses, read back from the registry."""
    out(f"changed: {change}")
    approved = registry.arns("Approved")
    using = f"version {registry.version(approved[0], False).number}" if approved else "none"
    out(f"  next batch-inference run uses: {using} (the newest Approved; no CI run needed)")
