"""A human-readable Markdown card for one registered model version.

`render_card` is a pure function of what the registry and the version's artefacts hold:
DescribeModelPackage's answer, the version's evaluation.json (scripts/evaluate.py) and its
data-quality baseline statistics.json (scripts/data_quality.py, Model Monitor format), plus,
when the caller has them, the champion's (the version batch inference used before) and the
training job's hyperparameters and feature attributions. `card_for_version` gathers those from
SageMaker and S3 for a version ARN, with the approval and rollback history the registry holds
now. The renderer itself is scripts/model_card.py's (the ModelCard step writes the card at
registration with it).
"""

from __future__ import annotations

import json

from pipeline_scripts.assets import REPO_ROOT
from pipeline_scripts.contract import METADATA_KEYS
from pipeline_scripts.module_files import load_module
from pipeline_scripts.rollback import AT, REASON, TO, UNDO_REASON, UNDONE_AT

# The one renderer lives in scripts/ (the training pipelines' ModelCard step runs it, and steps
# can only import scripts/); loaded by path, as scripts/ is not a package.
_card = load_module(REPO_ROOT / "scripts" / "model_card.py", "scripts_model_card")
VersionDocs = _card.VersionDocs
_cell = _card._cell


def _approval(package: dict) -> list[str]:
    """What the registry holds: the current status and the rollbacks recorded on the version
    (earlier status changes are in CloudTrail and the notification e-mails, not here)."""
    properties = package.get("CustomerMetadataProperties") or {}
    registered = f"- registered {_time(package.get('CreationTime'))}"
    if created_by := package.get("CreatedBy", {}).get("UserProfileName"):
        registered += f" by {created_by}"
    status = f"- status now: **{package.get('ModelApprovalStatus', 'unknown')}**"
    if description := package.get("ApprovalDescription"):
        status += f" ({description})"
    if "LastModifiedTime" in package:
        status += f", last changed {_time(package['LastModifiedTime'])}"
    lines = [registered, status]
    if AT in properties:
        lines.append(
            f"- rolled back at {properties[AT]}: {properties.get(REASON, '')} "
            f"(batch inference then used {properties.get(TO, 'the previous version')})"
        )
    if UNDONE_AT in properties:
        undo_reason = properties.get(UNDO_REASON, "")
        lines.append(f"- rollback undone at {properties[UNDONE_AT]}: {undo_reason}")
    return lines


def _time(value) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else _cell(value)


def render_card(
    package: dict, evaluation: dict, statistics: dict | None, champion=None, **extra
) -> str:
    """The live card: scripts/model_card.py render_card with the approval history the registry
    holds now (extra: champion, hyperparameters, attributions, purpose,
    champion_attributions; see there)."""
    return _card.render_card(
        package, evaluation, statistics, champion, approval=_approval(package), **extra
    )


def _read_json(s3, uri: str | None) -> dict | None:
    if not uri:
        return None
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _evaluation(s3, package: dict) -> dict:
    uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    return _read_json(s3, uri.get("S3Uri")) or {}


def card_for_version(sagemaker, s3, model_package_arn: str, **extra) -> str:
    """Reads the version, its artefacts and its champion (the newest Approved version created
    before it: what batch inference used when it was registered) and renders the card."""
    package = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    baseline = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
    statistics = _read_json(s3, baseline.get("Statistics", {}).get("S3Uri"))
    champion = None
    pages = sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=package["ModelPackageGroupName"],
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
    )
    champion_package = None
    for summary in (s for page in pages for s in page["ModelPackageSummaryList"]):
        if summary["CreationTime"] < package["CreationTime"]:
            champion_package = sagemaker.describe_model_package(
                ModelPackageName=summary["ModelPackageArn"]
            )
            champion = VersionDocs(champion_package, _evaluation(s3, champion_package))
            break
    # ExplainModel's attributions.json, recorded on versions registered since explanations.
    extra.setdefault("attributions", _importance(s3, package))
    if champion_package is not None:
        extra.setdefault("champion_attributions", _importance(s3, champion_package))
    return render_card(package, _evaluation(s3, package), statistics, champion, **extra)


def _importance(s3, package: dict) -> dict | None:
    uri = (package.get("CustomerMetadataProperties") or {}).get(METADATA_KEYS["attributions"])
    return _card.importance(_read_json(s3, uri))


class ModelCardError(RuntimeError):
    """No such version; the message says which group holds which versions."""


def card_for_version_number(sagemaker, s3, group: str, number: int) -> str:
    """`python -m pipeline_scripts model-card --version N`: the live card of version N."""
    arns = {}
    pages = sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
    for summary in (s for page in pages for s in page["ModelPackageSummaryList"]):
        arns[summary.get("ModelPackageVersion")] = summary["ModelPackageArn"]
    if number not in arns:
        known = ", ".join(str(v) for v in sorted(v for v in arns if v is not None)) or "none"
        raise ModelCardError(
            f"model package group '{group}' has no version {number}; its versions: {known}"
        )
    return card_for_version(sagemaker, s3, arns[number])
