"""Lambda: resolve the newest Approved model version of a model package group.

Called by the inference pipeline's Lambda step so the model is chosen when the pipeline
*runs*, not when CI renders the definition: approving a version in the model registry is
enough for the next batch run to use it.

event:   {"model_package_group_name": str}
returns: {"model_package_arn", "model_package_version", "model_data_url", "image_uri",
          "transform_uri", "baseline_statistics_uri", "baseline_constraints_uri",
          "attributions_uri", "evaluation_uri",
          "model_sha256", "model_version_id", "transform_sha256", "transform_version_id"}
          (all str; the keys become the Lambda step's OutputParameters). attributions_uri is
          the version's ExplainModel attributions.json; a version registered before
          explanations has none, and gets its train split instead (ExplainBatch then samples
          its baseline from it: see _attributions_uri). evaluation_uri: the version's
          evaluation.json ("" when it has none). The last four are the integrity values
          recorded at registration, "" on a version that has none, which the inference
          pipeline's verification step then rejects by name.

A third action, for champion versus challenger (issue 10 point 5) and the model card (issue 13
point 3): the training pipelines ask for the newest Approved version before evaluating a new
model:

event:   {"action": "champion", "model_package_group_name": str,
          "fallback_model_data_url": str, "fallback_transform_uri": str}
returns: {"champion_version": str ("none" when no version is Approved), "champion_model_data_url",
          "champion_transform_uri", "champion_attributions_uri", "champion_attributions"}:
          with no champion, the fallbacks (the challenger's own artifacts, so the evaluation
          step's inputs always exist; evaluate.py ignores them when champion_version is "none").
          champion_attributions is "yes" when the champion has an ExplainModel attributions.json
          (champion_attributions_uri), else "no" and champion_attributions_uri is the
          fallback transform (a processing input cannot be empty; the ModelCard step reads
          the champion's attributions only when "yes").

A second action, called by the training pipelines before they register a model, so that a
run whose steps all hit the cache does not register the same model again:

event:   {"action": "compare_fingerprint", "model_package_group_name": str,
          "data_version": str, "code_and_settings": str}
returns: {"model_fingerprint": 64 hex digits of sha256(data_version, code_and_settings),
          "is_new": bool (False when the group's newest version, of any approval status,
          carries the same fingerprint in CustomerMetadataProperties[FINGERPRINT_KEY]),
          "message": str}

The output names of every action are contract.json lambda_outputs.model_resolver (plus
integrity_outputs for resolve): the pipeline steps declare and read the same names.

IAM:     sagemaker:ListModelPackages, sagemaker:DescribeModelPackage,
         sagemaker:DescribeModelPackageGroup (the last one only on the error path)
"""

import hashlib
import json
import logging
import re

import boto3
from botocore.exceptions import ClientError
from lambda_contract import CONTRACT  # code/common/: the shared names

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


# Each action's output names (contract.json lambda_outputs): the pipeline steps read them.
OUTPUTS = CONTRACT["lambda_outputs"]["model_resolver"]
RESOLVE, COMPARE = OUTPUTS["resolve"], OUTPUTS["compare_fingerprint"]
PREVIOUS, CHAMPION = OUTPUTS["previous_training_data"], OUTPUTS["champion"]
# The metadata key of the fitted transform (registered by pipeline_scripts/training_pipeline.py).
TRANSFORM_KEY = CONTRACT["metadata_keys"]["transform"]

# Output name -> dotted path into the DescribeModelPackage response (digits index lists).
REQUIRED_FIELDS = {
    RESOLVE["package_version"]: "ModelPackageVersion",
    RESOLVE["model"]: "InferenceSpecification.Containers.0.ModelDataUrl",
    RESOLVE["image"]: "InferenceSpecification.Containers.0.Image",
    RESOLVE["transform"]: f"CustomerMetadataProperties.{TRANSFORM_KEY}",
    RESOLVE["baseline_statistics"]: "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri",
    RESOLVE["baseline_constraints"]: "DriftCheckBaselines.ModelDataQuality.Constraints.S3Uri",
}


# Optional metadata (pipeline_scripts/pipelines.py ATTRIBUTIONS_KEY): versions registered
# before explanations existed lack it and must still resolve.
ATTRIBUTIONS_KEY = CONTRACT["metadata_keys"]["attributions"]
TRANSFORM_SUFFIX = "/transform/transform.json"


def _attributions_uri(package: dict, transform_uri: str) -> str:
    """The version's attributions.json, else its train split: Preprocess wrote transform.json
    to <...>/Preprocess/transform/ and the train split to <...>/Preprocess/train/ (per-step,
    per-output locations of pipeline_scripts/steps.py StepFactory.output_uri), else the
    transform's folder, where ExplainBatch finds no baseline and reports the batch alone."""
    recorded = (package.get("CustomerMetadataProperties") or {}).get(ATTRIBUTIONS_KEY)
    if recorded:
        return recorded
    if transform_uri.endswith(TRANSFORM_SUFFIX):
        return transform_uri.removesuffix(TRANSFORM_SUFFIX) + "/train"
    return transform_uri.rsplit("/", 1)[0]


# Integrity values recorded at registration (CustomerMetadataProperties keys, set by the
# training pipelines from code/training_data_version's record_integrity action).
INTEGRITY_KEYS = tuple(CONTRACT["integrity_outputs"])


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


# The registered versions' metadata key of the fingerprint (pipeline_scripts/pipelines.py).
FINGERPRINT_KEY = CONTRACT["metadata_keys"]["fingerprint"]


def _field(event, name: str) -> str:
    value = event.get(name) if isinstance(event, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise ModelResolutionError(
            f"event field '{name}' is missing or empty (expected a non-empty string); "
            f"got event {event!r}"
        )
    return value


def compare_fingerprint(event) -> dict:
    """Is the model about to be registered the same as the group's newest version?"""
    group = _field(event, "model_package_group_name")
    parts = (_field(event, "data_version"), _field(event, "code_and_settings"))
    fingerprint = hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()
    sagemaker = boto3.client("sagemaker")
    try:
        newest = next(_list_pages(sagemaker, group), None)
    except ClientError as error:  # no group yet: RegisterModel creates it
        if error.response["Error"]["Code"] not in ("ValidationException", "ResourceNotFound"):
            raise
        newest = None
    new, message = COMPARE["new"], COMPARE["message"]
    result = {COMPARE["fingerprint"]: fingerprint, new: True}
    if newest is None:
        result[message] = f"group '{group}' has no version yet: registering the model"
    else:
        arn = newest["ModelPackageArn"]
        package = sagemaker.describe_model_package(ModelPackageName=arn)
        version = package.get("ModelPackageVersion")
        same = (package.get("CustomerMetadataProperties") or {}).get(FINGERPRINT_KEY)
        result[new] = same != fingerprint
        result[message] = (
            f"the model differs from the newest version {version} of group '{group}': "
            "registering it"
            if result[new]
            else f"not registered: the newest version {version} of group '{group}' ({arn}) "
            "has the same training data, code and hyperparameters"
        )
    _log(
        "compared model fingerprint",
        model_package_group_name=group,
        model_fingerprint=fingerprint,
        is_new=result[new],
        outcome=result[message],
    )
    return result


def _newest_approved(sagemaker, group: str) -> dict | None:
    """The newest Approved version's summary; None when there is none or no group yet (the
    first version of a group has nothing to compare with)."""
    try:
        return next(_list_pages(sagemaker, group, ModelApprovalStatus="Approved"), None)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("ValidationException", "ResourceNotFound"):
            raise
        return None


# The registered versions' metadata key of their training-data profile folder (statistics.json,
# constraints.json, target included: pipeline_scripts/pipelines.py, training_data_comparison.py).
PROFILE_KEY = CONTRACT["metadata_keys"]["training_data_profile"]


def previous_training_data(event) -> dict:
    """The newest Approved version's training-data profile folder, to compare new training data
    with; versions registered before profiles existed give their data-quality baseline folder
    (DriftCheckBaselines, features only). Nothing approved: previous_version 'none' and the
    event's fallback_uri (a processing input cannot be empty; the step then compares nothing)."""
    group = _field(event, "model_package_group_name")
    fallback = _field(event, "fallback_uri")
    sagemaker = boto3.client("sagemaker")
    newest = _newest_approved(sagemaker, group)
    version, profile_uri, message = PREVIOUS["version"], PREVIOUS["profile"], PREVIOUS["message"]
    result = {version: "none", profile_uri: fallback}
    if newest is None:
        result[message] = f"group '{group}' has no Approved version: nothing to compare"
    else:
        package = sagemaker.describe_model_package(ModelPackageName=newest["ModelPackageArn"])
        profile = (package.get("CustomerMetadataProperties") or {}).get(PROFILE_KEY)
        statistics = _dig(package, REQUIRED_FIELDS[RESOLVE["baseline_statistics"]])
        folder = profile or (statistics.rsplit("/", 1)[0] if statistics else None)
        if folder is None:
            raise ModelResolutionError(
                f"Approved version {newest['ModelPackageArn']} has neither "
                f"CustomerMetadataProperties.{PROFILE_KEY} nor DriftCheckBaselines statistics; "
                "expected a version registered by the training pipeline"
            )
        result[version] = str(package["ModelPackageVersion"])
        result[profile_uri] = folder
        result[message] = f"comparing with version {result[version]}: {folder}"
    _log(
        "found previous training data",
        model_package_group_name=group,
        previous_version=result[version],
        previous_profile_uri=result[profile_uri],
        outcome=result[message],
    )
    return result


def champion(event) -> dict:
    """The newest Approved version's model and transform, to score beside a new model, and
    its attributions for the new version's model card."""
    group = _field(event, "model_package_group_name")
    fallback_transform = _field(event, "fallback_transform_uri")
    result = {
        CHAMPION["version"]: "none",
        CHAMPION["model"]: _field(event, "fallback_model_data_url"),
        CHAMPION["transform"]: fallback_transform,
        CHAMPION["attributions"]: fallback_transform,
        CHAMPION["has_attributions"]: "no",
    }
    sagemaker = boto3.client("sagemaker")
    newest = _newest_approved(sagemaker, group)
    if newest is not None:
        package = sagemaker.describe_model_package(ModelPackageName=newest["ModelPackageArn"])
        model = _dig(package, REQUIRED_FIELDS[RESOLVE["model"]])
        transform = _dig(package, REQUIRED_FIELDS[RESOLVE["transform"]])
        attributions = (package.get("CustomerMetadataProperties") or {}).get(ATTRIBUTIONS_KEY)
        if model and transform:  # else it cannot be scored: challenger only, logged
            result[CHAMPION["version"]] = str(package["ModelPackageVersion"])
            result[CHAMPION["model"]] = model
            result[CHAMPION["transform"]] = transform
            if attributions:  # none on a version registered before explanations
                result[CHAMPION["attributions"]] = attributions
                result[CHAMPION["has_attributions"]] = "yes"
    _log("resolved champion", model_package_group_name=group, **result)
    return result


ACTIONS = {
    "compare_fingerprint": compare_fingerprint,
    "previous_training_data": previous_training_data,
    "champion": champion,
}


def handler(event, context):
    if isinstance(event, dict) and event.get("action", "resolve") != "resolve":
        if event["action"] in ACTIONS:
            return ACTIONS[event["action"]](event)
        raise ModelResolutionError(
            f"event field 'action' is {event['action']!r}; expected 'resolve' (the default) "
            f"or one of {sorted(ACTIONS)}"
        )
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
    result = {RESOLVE["package_arn"]: arn}
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
    result[RESOLVE["attributions"]] = _attributions_uri(package, result[RESOLVE["transform"]])
    result[RESOLVE["evaluation"]] = str(
        _dig(package, "ModelMetrics.ModelQuality.Statistics.S3Uri") or ""
    )
    metadata = package.get("CustomerMetadataProperties") or {}
    result.update({key: str(metadata.get(key, "")) for key in INTEGRITY_KEYS})
    _log("resolved approved model", model_package_group_name=group, **result)
    return result
