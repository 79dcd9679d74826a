"""What the event does not carry, looked up best effort: the batch-inference results in S3,
a failed processing job's ExitMessage and a model version's metadata in SageMaker. A failed
lookup is logged and leaves a caveat in the e-mail; it never costs the e-mail."""

import functools
import json
import logging
import os

import boto3
from botocore.config import Config as BotoConfig

from . import explanations
from .settings import METADATA_KEYS, OUTPUTS, STEPS, _log

# Where the batch-inference steps write their results: <ARTIFACTS_URI>/<pipeline>/<execution
# id>/<step>/<output>/ (pipeline_scripts/steps.py StepFactory.output_uri).
OUTCOME_FILES = {
    "dq": (STEPS["data_quality_check"], OUTPUTS["data_quality_results"], "summary.json"),
    "mq": (STEPS["model_quality_check"], OUTPUTS["model_quality_results"], "statistics.json"),
}
# A run for labels that arrived later (Mode=evaluate) checks no data and writes its model
# quality here instead (pipeline_scripts/pipelines.py LABELS_QUALITY_STEP).
LATE_LABELS_FILE = (
    STEPS["labels_quality_check"], OUTPUTS["model_quality_results"], "statistics.json",
)  # fmt: skip


# ExplainBatch's summary (pipeline_scripts/explain_step.py), at the same kind of location.
EXPLANATIONS_FILE = (STEPS["explain_batch"], OUTPUTS["batch_explanations"], "attributions.json")


def _inference_result(pipeline: str, execution_id: str, step: str, output: str, file: str,
                      quiet: bool = False):  # fmt: skip
    """An inference execution's result file as JSON; None for another pipeline or when it
    cannot be read (logged: a caveat in the e-mail, never a lost e-mail)."""
    name = os.environ.get("INFERENCE_PIPELINE", "")
    base = os.environ.get("ARTIFACTS_URI", "").rstrip("/")
    # Pipeline ARNs carry the name in lower case.
    if not name or not base.startswith("s3://") or name.lower() != pipeline.lower():
        return None
    bucket, _, prefix = base.removeprefix("s3://").partition("/")
    key = "/".join(filter(None, [prefix, name, execution_id, step, output, file]))
    try:
        return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as error:  # noqa: BLE001 - a caveat in the e-mail, never a lost mail
        if not quiet:
            _log("inference result unavailable", logging.WARNING, key=key, error=str(error))
        return None


def _is_inference(pipeline: str) -> bool:
    name = os.environ.get("INFERENCE_PIPELINE", "")
    return bool(name) and name.lower() == pipeline.lower()


def _batch_explanations(pipeline: str, execution_id: str) -> list | None:
    """Which features drive the batch's predictions and what changed against the training
    baseline (explanations.explanation_lines); None for other pipelines."""
    if not _is_inference(pipeline):
        return None
    document = _inference_result(pipeline, execution_id, *EXPLANATIONS_FILE)
    try:
        lines = explanations.explanation_lines(document) if isinstance(document, dict) else []
    except (KeyError, TypeError, ValueError) as error:  # a file of another format version
        _log("explanations unreadable", logging.WARNING, error=repr(error))
        lines = []
    step = EXPLANATIONS_FILE[0]
    return lines or [f"Explanations unavailable ({step}'s attributions.json unreadable)."]


def _batch_outcome(pipeline: str, execution_id: str) -> tuple[list, list]:
    """(subject caveats, body rows) of a Succeeded batch-inference execution: data-quality
    violations, model quality skipped or with insufficient labels. Other pipelines: none."""
    if not _is_inference(pipeline) or not os.environ.get("ARTIFACTS_URI", "").startswith("s3:"):
        return [], []
    late = _inference_result(pipeline, execution_id, *LATE_LABELS_FILE, quiet=True)
    if isinstance(late, dict):  # labels that arrived later: model quality only
        results = {"dq": {}, "mq": late}
    else:
        results = {
            kind: _inference_result(pipeline, execution_id, *location)
            for kind, location in OUTCOME_FILES.items()
        }
    warnings, rows = [], []
    dq, mq = results.get("dq"), results.get("mq")
    if not isinstance(dq, dict) or not isinstance(mq, dict):
        warnings.append("quality results unreadable")
    if isinstance(dq, dict) and dq:
        count = dq.get("violation_count")
        if isinstance(count, int) and count > 0:
            warnings.append(f"{count} data-quality violation{'s' if count != 1 else ''}")
        # Wrong-type values under datatype_check_threshold: no violation, but imputed before
        # scoring (scripts/data_quality.py type_note); the body's message names them.
        notes = dq.get("notes")
        if isinstance(notes, list) and notes:
            warnings.append(
                f"values imputed in {len(notes)} column{'s' if len(notes) != 1 else ''}"
            )
        rows.append(("Data quality", dq.get("message") or f"{count} violation(s)"))
    if isinstance(mq, dict):
        state = mq.get("status")
        if state == "skipped":
            warnings.append("model quality skipped (no labels)")
        elif state == "insufficient_labels":
            warnings.append("insufficient labels")
        rows.append(("Model quality", f"{state}: {mq.get('reason', '')}"))
    return warnings, rows


def _processing_exit_message(detail: dict, region: str) -> str | None:
    """A failed processing job's own explanation of why it failed.

    For a script error SageMaker's failure reason is only "AlgorithmError: ..., exit code: 1";
    the step scripts write the real reason to /opt/ml/output/message, which DescribeProcessingJob
    returns as ExitMessage. Best effort: without it the message still carries the reason given.
    """
    metadata = detail.get("metadata")
    job = metadata.get("processingJob") if isinstance(metadata, dict) else None
    arn = job.get("arn") if isinstance(job, dict) else None
    if not isinstance(arn, str) or "/" not in arn:
        return None
    try:
        response = _sagemaker_client(region, _endpoints("SAGEMAKER")).describe_processing_job(
            ProcessingJobName=arn.rsplit("/", 1)[1]
        )
    except Exception as error:  # noqa: BLE001 - extra detail only, never a lost notification
        _log("exit message unavailable", logging.WARNING, error=f"{type(error).__name__}: {error}")
        return None
    message = response.get("ExitMessage")
    return message.strip() if isinstance(message, str) and message.strip() else None


# The training pipelines' comparison of the new training data with the previous approved
# version's (pipeline_scripts/pipelines.py _training_data_comparison): its one-line summary and
# report, as metadata on the version.
TRAINING_DATA_KEYS = (
    ("Training data vs previous", METADATA_KEYS["training_data_summary"]),
    ("Training data report", METADATA_KEYS["training_data_report"]),
)


def _training_data_rows(detail: dict, region: str) -> list:
    """The version's training-data findings. From the event detail when it carries
    CustomerMetadataProperties (the local runtime's events are DescribeModelPackage-shaped),
    else DescribeModelPackage, best effort: a lost detail never loses the notification."""
    metadata = detail.get("CustomerMetadataProperties")
    arn = detail.get("ModelPackageArn")
    if not isinstance(metadata, dict) and isinstance(arn, str):
        try:
            package = _sagemaker_client(region, _endpoints("SAGEMAKER")).describe_model_package(
                ModelPackageName=arn
            )
            metadata = package.get("CustomerMetadataProperties")
        except Exception as error:  # noqa: BLE001 - extra detail only
            _log(
                "model metadata unavailable",
                logging.WARNING,
                error=f"{type(error).__name__}: {error}",
            )
    metadata = metadata if isinstance(metadata, dict) else {}
    return [(label, metadata[key]) for label, key in TRAINING_DATA_KEYS if metadata.get(key)]


# The SageMaker call only adds detail, so it must never cost the e-mail: in a VPC without a
# route to SageMaker, boto3's defaults (60 s connect and read timeouts, retried) outlast the
# function's 30 s timeout. One attempt with short timeouts; the publish keeps the defaults.
# botocore.config.Config: connect_timeout / read_timeout default 60 s; retries "standard"
# mode's total_max_attempts counts the first attempt (botocore "Config Reference").
_DETAIL_CALL_CONFIG = BotoConfig(
    connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 1}
)


@functools.lru_cache(maxsize=4)
def _sagemaker_client(region: str, endpoint_env: tuple):
    return boto3.client("sagemaker", region_name=region, config=_DETAIL_CALL_CONFIG)


def _endpoints(service: str) -> tuple:
    return (os.environ.get("AWS_ENDPOINT_URL"), os.environ.get(f"AWS_ENDPOINT_URL_{service}"))
