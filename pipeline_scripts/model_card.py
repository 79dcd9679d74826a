"""A human-readable Markdown card for one registered model version.

`render_card` is a pure function of what the registry and the version's artefacts hold:
DescribeModelPackage's answer, the version's evaluation.json (scripts/evaluate.py) and its
data-quality baseline statistics.json (scripts/data_quality.py, Model Monitor format), plus,
when the caller has them, the champion's (the version batch inference used before) and the
training job's hyperparameters and feature attributions. `card_for_version` gathers those from
SageMaker and S3 for a version ARN. Nothing here changes the pipelines.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from pipeline_scripts.rollback import AT, REASON, TO, UNDO_REASON, UNDONE_AT

# Metric -> True when a higher value is better (evaluation.json regression_metrics).
HIGHER_IS_BETTER = {"mse": False, "rmse": False, "mae": False, "r2": True}
LINEAGE = (
    ("git_commit", "code commit"),
    ("training_data_url", "training data"),
    ("training_data_version", "training data version"),
    ("pipeline_execution_arn", "pipeline execution"),
    ("transform_uri", "fitted transform"),
)
MAX_CATEGORIES = 5


@dataclass(frozen=True)
class VersionDocs:
    """One version: its DescribeModelPackage answer and its evaluation.json."""

    package: dict
    evaluation: dict

    @property
    def number(self) -> int:
        return self.package["ModelPackageVersion"]

    def metric(self, name: str, section: str = "regression_metrics"):
        return self.evaluation.get(section, {}).get(name, {}).get("value")


def _cell(value) -> str:
    """A Markdown table cell: numbers to 4 significant digits, pipes and newlines escaped."""
    if isinstance(value, float):
        text = f"{value:.4g}" if math.isfinite(value) else str(value)
    elif value is None or value == "":
        text = "–"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _compare(name: str, challenger, champion) -> str:
    if not all(isinstance(v, int | float) for v in (challenger, champion)):
        return "not comparable"
    if challenger == champion:
        return "same"
    better = (challenger > champion) == HIGHER_IS_BETTER.get(name, False)
    change = f"{abs(challenger - champion) / abs(champion):.1%}" if champion else "from 0"
    return f"{'better' if better else 'worse'} ({change})"


def _metrics(version: VersionDocs, champion: VersionDocs | None) -> list[str]:
    names = list(version.evaluation.get("regression_metrics", {}))
    if not names:
        return ["No evaluation metrics were found for this version."]
    header = ["metric", f"version {version.number}", "± sd", "mean predictor"]
    if champion:
        header += [f"champion (version {champion.number})", "this version is"]
    rows = []
    for name in names:
        value = version.metric(name)
        sd = version.evaluation["regression_metrics"][name].get("standard_deviation")
        row = [name, value, sd, version.metric(name, "baseline_mean_predictor")]
        if champion:
            row += [champion.metric(name), _compare(name, value, champion.metric(name))]
        rows.append(row)
    lines = _table(header, rows)
    if not champion:
        lines.append("\nNo champion: no other version was Approved when this card was made.")
    return lines


def _baseline(statistics: dict | None) -> list[str]:
    if not statistics:
        return ["No data-quality baseline was found for this version."]
    total = statistics.get("dataset", {}).get("item_count")
    lines = [f"{_cell(total)} training records profiled.", ""]
    rows = []
    for feature in statistics.get("features", []):
        numeric = feature.get("numerical_statistics")
        stats = numeric or feature.get("string_statistics", {})
        common = stats.get("common", {})
        present, missing = common.get("num_present", 0), common.get("num_missing", 0)
        missing_share = f"{missing / (present + missing):.1%}" if present + missing else None
        if numeric:
            summary = (
                f"mean {_cell(numeric.get('mean'))}, sd {_cell(numeric.get('std_dev'))}, "
                f"range {_cell(numeric.get('min'))} to {_cell(numeric.get('max'))}"
            )
        else:
            buckets = stats.get("distribution", {}).get("categorical", {}).get("buckets", [])
            top = sorted(buckets, key=lambda b: -b["count"])[:MAX_CATEGORIES]
            shares = ", ".join(f"{b['value']} {b['count'] / present:.0%}" for b in top if present)
            summary = f"{_cell(stats.get('distinct_count'))} distinct: {shares}"
        rows.append([feature["name"], feature.get("inferred_type"), missing_share, summary])
    return lines + _table(["feature", "type", "missing", "distribution"], rows)


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
    package: dict,
    evaluation: dict,
    statistics: dict | None,
    champion: VersionDocs | None = None,
    hyperparameters: dict | None = None,
    attributions: dict | None = None,
    purpose: str | None = None,
) -> str:
    """The Markdown card. `attributions`: feature -> mean |contribution| (larger = more
    influence), e.g. from xgboost pred_contribs; `purpose`: e.g. the group's description."""
    version = VersionDocs(package, evaluation)
    properties = package.get("CustomerMetadataProperties") or {}
    container = (package.get("InferenceSpecification", {}).get("Containers") or [{}])[0]
    group = package.get("ModelPackageGroupName", "")
    lines = [f"# Model card: {group} version {version.number}", ""]
    lines += ["## Purpose", "", purpose or package.get("ModelPackageDescription") or "–", ""]
    lines += ["## Lineage", ""]
    lines += [f"- {label}: {_cell(properties.get(key))}" for key, label in LINEAGE]
    lines += [f"- model artefact: {_cell(container.get('ModelDataUrl'))}"]
    lines += [f"- container image: {_cell(container.get('Image'))}", ""]
    lines += ["## Hyperparameters", ""]
    if hyperparameters:
        lines += _table(["name", "value"], [[k, v] for k, v in sorted(hyperparameters.items())])
    else:
        lines.append("Not recorded on the version.")
    lines += ["", "## Metrics (test split)", ""] + _metrics(version, champion)
    lines += ["", "## Data-quality baseline", ""] + _baseline(statistics)
    lines += ["", "## Explanations", ""]
    if attributions:
        ranked = sorted(attributions.items(), key=lambda item: -item[1])
        lines += _table(["feature", "mean abs. contribution"], [[k, v] for k, v in ranked])
    else:
        lines.append("No feature attributions recorded for this version.")
    lines += ["", "## Approval history", ""] + _approval(package)
    return "\n".join(lines) + "\n"


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
    for summary in (s for page in pages for s in page["ModelPackageSummaryList"]):
        if summary["CreationTime"] < package["CreationTime"]:
            other = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            champion = VersionDocs(other, _evaluation(s3, other))
            break
    return render_card(package, _evaluation(s3, package), statistics, champion, **extra)
