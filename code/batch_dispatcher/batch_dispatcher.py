"""Lambda: start exactly one batch-inference execution per batch or labels object version.

Target of the EventBridge rule events/inference_data_created.json. It receives S3's
"Object Created" event unchanged and calls StartPipelineExecution with the object's URI, so the
execution reads only that batch, and with a ClientRequestToken derived from bucket, key and
version id, so a retried or duplicated event starts no second execution.

event:   S3 "Object Created" event (Amazon S3 user guide, "EventBridge event message structure":
         detail.bucket.name, detail.object.key, detail.object.version-id when the bucket is
         versioned, detail.object.etag). Unlike S3 event notifications to SNS/SQS/Lambda, the
         key is not URL-encoded there.
Labels that arrive later: an object <LABELS_PREFIX><batch id>.labels.csv (rule
events/labels_created.json) starts the same pipeline with Mode=evaluate, LabelsDataUrl and
BatchId, which joins the labels with that batch's stored predictions instead of scoring.

env:     PIPELINE_NAME (the batch-inference pipeline), INFERENCE_PREFIX (key prefix of batches,
         ending in "/"), LABELS_PREFIX (key prefix of labels files, ending in "/"),
         PIPELINE_PARAMETERS (JSON object of further parameters, e.g. MseThreshold, passed
         unchanged)
returns: {"PipelineExecutionArn", "PipelineExecutionDisplayName", "ClientRequestToken",
          "PipelineParameters"}
IAM:     sagemaker:StartPipelineExecution on the batch-inference pipeline only
"""

import hashlib
import json
import logging
import os
import re

import boto3
from lambda_contract import CONTRACT  # code/common/: the shared names

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


PARAMETERS = CONTRACT["parameters"]

# A batch is one object whose name ends in .csv or .csv.gz, in any letter case.
BATCH_SUFFIX = re.compile(r"\.csv(\.gz)?$", re.IGNORECASE)
# Labels for batch <id> arrive as <labels prefix><id>.labels.csv (exactly this lower case).
LABELS_SUFFIX = ".labels.csv"
# botocore sagemaker service model, StartPipelineExecutionRequest: PipelineParameters values are
# String1024 (max 1024 chars); PipelineExecutionDisplayName is PipelineExecutionName (pattern
# [a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}); ClientRequestToken is IdempotencyToken (32..128 chars).
MAX_PARAMETER_VALUE = 1024
DISPLAY_NAME_LIMIT = 82


class BatchEventError(ValueError):
    """The event is not an S3 Object Created event for a batch under the inference prefix."""


def batch_id(key: str, prefix: str) -> str:
    """The batch's name: its key below the inference prefix without .csv/.csv.gz, with every
    character other than letters, digits, '-', '_' and '.' (e.g. '/') replaced by '-'.
    data/inference/2025-06-03/batch-0001.csv -> 2025-06-03-batch-0001."""
    relative = BATCH_SUFFIX.sub("", key[len(prefix) :] if key.startswith(prefix) else key)
    return re.sub(r"[^A-Za-z0-9_.-]", "-", relative).strip("-.") or "batch"


def request_token(bucket: str, key: str, version_id: str) -> str:
    """Same object version -> same token (64 hex chars, within IdempotencyToken's 32..128)."""
    return hashlib.sha256(f"{bucket}\n{key}\n{version_id}".encode()).hexdigest()


def display_name(identifier: str, token: str) -> str:
    """A PipelineExecutionName: the batch id's letters/digits plus a token suffix (unique)."""
    words = "-".join(re.findall(r"[A-Za-z0-9]+", identifier)) or "batch"
    return f"{words[: DISPLAY_NAME_LIMIT - 9]}-{token[:8]}"


def start_request(
    event: dict, pipeline: str, prefix: str, extra: dict, labels_prefix: str = ""
) -> dict:
    """The StartPipelineExecution request for one S3 Object Created event."""
    try:
        bucket = event["detail"]["bucket"]["name"]
        obj = event["detail"]["object"]
        key = obj["key"]
    except (KeyError, TypeError):
        raise BatchEventError(
            "event: expected an S3 'Object Created' event with detail.bucket.name and "
            f"detail.object.key, got detail-type {event.get('detail-type')!r}"
        ) from None
    labels = bool(labels_prefix) and key.startswith(labels_prefix)
    if labels and (not key.endswith(LABELS_SUFFIX) or "/" in key[len(labels_prefix) :]):
        raise BatchEventError(
            f"s3://{bucket}/{key}: expected labels named {labels_prefix}<batch id>{LABELS_SUFFIX}"
        )
    if not labels and (not key.startswith(prefix) or not BATCH_SUFFIX.search(key)):
        raise BatchEventError(
            f"s3://{bucket}/{key}: expected a .csv or .csv.gz object under {prefix}"
        )
    # An unversioned bucket gives no version-id; the ETag then tells contents apart.
    version = obj.get("version-id") or ""
    uri = f"s3://{bucket}/{key}"
    if len(uri) > MAX_PARAMETER_VALUE:
        raise BatchEventError(f"{uri[:80]}...: the URI is longer than a pipeline parameter")
    # Labels name their batch by its id (batch_id() of the batch's key), which keys the
    # batch's predictions (<artifacts>/predictions/<batch id>/).
    identifier = key[len(labels_prefix) : -len(LABELS_SUFFIX)] if labels else batch_id(key, prefix)
    token = request_token(bucket, key, version or f"etag:{obj.get('etag', '')}")
    source = (
        {PARAMETERS["labels_data_url"]: uri, PARAMETERS["mode"]: CONTRACT["modes"]["evaluate"]}
        if labels
        else {PARAMETERS["inference_data_url"]: uri}
    )
    parameters = {
        **extra,
        **source,
        PARAMETERS["batch_id"]: identifier,
        PARAMETERS["batch_version_id"]: version,
        PARAMETERS["batch_etag"]: obj.get("etag", ""),
    }
    what = "Labels for batch" if labels else "Batch"
    return {
        "PipelineName": pipeline,
        "PipelineExecutionDisplayName": display_name(
            f"{identifier}-labels" if labels else identifier, token
        ),
        "PipelineExecutionDescription": f"{what} {identifier}: {uri} version {version or '-'}",
        "PipelineParameters": [{"Name": k, "Value": str(v)} for k, v in parameters.items()],
        "ClientRequestToken": token,
    }


def handler(event, context):
    request = start_request(
        event,
        os.environ["PIPELINE_NAME"],
        os.environ["INFERENCE_PREFIX"],
        json.loads(os.environ.get("PIPELINE_PARAMETERS") or "{}"),
        os.environ.get("LABELS_PREFIX", ""),
    )
    # The same token returns the execution the first call started ("An idempotent operation
    # completes no more than once": StartPipelineExecution, ClientRequestToken, SageMaker API
    # reference), so EventBridge retries and duplicate deliveries start nothing new.
    response = boto3.client("sagemaker").start_pipeline_execution(**request)
    arn = response["PipelineExecutionArn"]
    logger.info(
        json.dumps(
            {
                "message": "batch dispatched",
                "execution": arn,
                "batch": request["PipelineExecutionDescription"],
                "token": request["ClientRequestToken"],
            }
        )
    )
    return {
        "PipelineExecutionArn": arn,
        "PipelineExecutionDisplayName": request["PipelineExecutionDisplayName"],
        "ClientRequestToken": request["ClientRequestToken"],
        "PipelineParameters": request["PipelineParameters"],
    }
