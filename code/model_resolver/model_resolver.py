"""Lambda: resolve the newest Approved model version of a model package group.

Called by the inference pipeline's Lambda step so the model is chosen when the pipeline
*runs*, not when CI renders the definition: approving a version in the model registry is
enough for the next batch run to use it.

event:   {"model_package_group_name": str}
returns: {"model_package_arn", "model_package_version", "model_data_url", "image_uri",
          "transform_uri", "baseline_statistics_uri", "baseline_constraints_uri"}  (all str;
          the keys become the Lambda step's OutputParameters)
IAM:     sagemaker:ListModelPackages, sagemaker:DescribeModelPackage,
         sagemaker:DescribeModelPackageGroup (the last one only on the error path)
"""

import json
import logging
import re

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

# Output key -> dotted path into the DescribeModelPackage response (digits index lists).
REQUIRED_FIELDS = {
    "model_package_version": "ModelPackageVersion",
    "model_data_url": "InferenceSpecification.Containers.0.ModelDataUrl",
    "image_uri": "InferenceSpecification.Containers.0.Image",
    "transform_uri": "CustomerMetadataProperties.transform_uri",
    "baseline_statistics_uri": "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri",
    "baseline_constraints_uri": "DriftCheckBaselines.ModelDataQuality.Constraints.S3Uri",
}


class ModelResolutionError(RuntimeError):
    """No usable approved model; the message says what is wrong and how to fix it."""


def _log(message: str, **fields) -> None:
    logger.info(json.dumps({"message": message, **fields}, default=str))


def _dig(document: dict, path: str):
    """Follow a dotted path into nested dicts/lists; None as soon as a step is missing."""
    value = document
    for step in path.split("."):
        try:
            value = value[int(step)] if step.isdigit() else value[step]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _list_pages(sagemaker, group: str, **filters):
    paginator = sagemaker.get_paginator("list_model_packages")
    for page in paginator.paginate(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", **filters
    ):
        yield from page["ModelPackageSummaryList"]


def _no_approved_error(sagemaker, group: str) -> ModelResolutionError:
    """Explain why nothing was found: the group is missing, empty, or has nothing approved."""
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("ValidationException", "ResourceNotFound"):
            raise
        return ModelResolutionError(
            f"Model package group '{group}' does not exist "
            f"({error.response['Error']['Message']}). Run the training pipeline to register a "
            "model into it, or fix model_package_group_name in the pipeline parameters."
        )
    total = sum(1 for _ in _list_pages(sagemaker, group))
    if total == 0:
        return ModelResolutionError(
            f"Model package group '{group}' has no model versions. Run the training pipeline "
            "to register one, then approve it in the model registry."
        )
    return ModelResolutionError(
        f"Model package group '{group}' has {total} model version(s) but none is Approved. "
        "Approve a version in the model registry (SageMaker Studio > Models > Model registry), "
        "or run: aws sagemaker update-model-package --model-package-arn <version ARN> "
        "--model-approval-status Approved"
    )


def handler(event, context):
    group = event.get("model_package_group_name") if isinstance(event, dict) else None
    if not isinstance(group, str) or not group.strip():
        raise ModelResolutionError(
            "event field 'model_package_group_name' is missing or empty (expected the model "
            f"package group name as a non-empty string); got event {event!r}"
        )
    sagemaker = boto3.client("sagemaker")

    # Sorted newest first, so the first summary on any page is the answer. Iterate pages
    # rather than read page one: a filtered List call may return an empty page with a NextToken.
    newest = next(_list_pages(sagemaker, group, ModelApprovalStatus="Approved"), None)
    if newest is None:
        raise _no_approved_error(sagemaker, group)

    arn = newest["ModelPackageArn"]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    result = {"model_package_arn": arn}
    for key, path in REQUIRED_FIELDS.items():
        value = _dig(package, path)
        if value is None or value == "":
            field = re.sub(r"\.(\d+)", r"[\1]", path)  # Containers.0 -> Containers[0]
            raise ModelResolutionError(
                f"Approved model version {arn} in group '{group}' has no {field} (needed for "
                f"output '{key}'). Register versions with it (the training pipeline's register "
                "step sets it) and approve one that has it."
            )
        result[key] = str(value)
    _log("resolved approved model", model_package_group_name=group, **result)
    return result
