"""One formatter per event type: the subject and body of its e-mail."""

import json
import re
from urllib.parse import quote

from .fields import (
    EXECUTION_ARN,
    JOB_ROUTES,
    UnformattableEvent,
    _console,
    _duration,
    _execution_url,
    _get,
    _parse_execution_arn,
    _region,
    _transition,
    _words,
)
from .lookups import (
    _batch_explanations,
    _batch_outcome,
    _processing_exit_message,
    _training_data_rows,
)
from .message import Notification, _body, _skip, _subject
from .settings import METADATA_KEYS, STEPS, Config

EXECUTION_EVENT = "SageMaker Model Building Pipeline Execution Status Change"
STEP_EVENT = "SageMaker Model Building Pipeline Execution Step Status Change"
MODEL_PACKAGE_EVENT = "SageMaker Model Package State Change"
OBJECT_CREATED_EVENT = "Object Created"

# The inference steps whose e-mails explain the batch; the gates before the two Fail steps
# wait for ExplainBatch (pipeline_scripts/pipelines.py), so the file exists when they fail.
EXPLAINED_STEPS = {
    STEPS[name]
    for name in (
        "data_quality_check", "data_quality_failed", "model_quality_check", "model_quality_failed"
    )
}  # fmt: skip


def _execution(event: dict, detail: dict, config: Config) -> Notification:
    status = _get(detail, "currentPipelineExecutionStatus", required=True)
    arn = _get(detail, "pipelineExecutionArn", required=True)
    region, pipeline, execution_id = _parse_execution_arn(arn)
    allowed = config.notify["execution"]
    if status not in allowed:
        return _skip(
            f"execution status {status!r} is not in NOTIFY_STATUSES.execution {sorted(allowed)}"
        )
    display = _get(detail, "pipelineExecutionDisplayName") or execution_id
    start, end = _get(detail, "executionStartTime"), _get(detail, "executionEndTime")
    failure = _get(detail, "failureReason")
    warnings, outcome_rows, explained = [], [], None
    if status == "Succeeded":
        warnings, outcome_rows = _batch_outcome(pipeline, execution_id)
        explained = _batch_explanations(pipeline, execution_id)
    caveats = f" with {', '.join(warnings)}" if warnings else ""
    headline = f"SageMaker pipeline {pipeline}: execution {display} {status}{caveats}."
    if status == "Failed" and not failure:
        headline += " The failed step's own notification carries the failure reason."
    body = _body(
        event,
        config,
        headline=headline,
        failure=failure,
        rows=[
            ("Pipeline", pipeline),
            ("Execution", display if display == execution_id else f"{display} (id {execution_id})"),
            ("Status", _transition(_get(detail, "previousPipelineExecutionStatus"), status)),
            ("Description", _get(detail, "pipelineExecutionDescription")),
            ("Started", start),
            ("Ended", end),
            ("Duration", _duration(start, end)),
            ("Execution ARN", arn),
            *outcome_rows,
        ],
        explained=explained,
        links=[
            "Open the execution in the SageMaker console (or Studio > Pipelines):",
            _execution_url(region, pipeline, execution_id),
        ],
    )
    # The caveats first: a long subject is cut at its end.
    qualified = f"{status} with {', '.join(warnings)}" if warnings else status
    return Notification(
        _subject(f"{qualified}: pipeline {pipeline}, execution {display}"),
        body,
        f"execution status {status} notified",
    )


def _step_metadata(detail: dict, region: str) -> tuple[list, list]:
    """Rows for the step's job/model/condition details and console links to its jobs."""
    rows, links = [], []
    metadata = detail.get("metadata")
    # Extra detail only: an unexpected shape is skipped rather than failing the message.
    for kind, info in metadata.items() if isinstance(metadata, dict) else ():
        if not isinstance(info, dict):
            continue
        for key, value in info.items():
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                rows.append((f"{_words(kind).capitalize()} {_words(key)}", str(value)))
        arn = info.get("arn")
        if kind in JOB_ROUTES and isinstance(arn, str) and "/" in arn:
            job = arn.rsplit("/", 1)[1]
            links += [
                f"Open the {_words(kind)} (logs, metrics):",
                _console(region, f"{JOB_ROUTES[kind]}/{quote(job)}"),
            ]
    cache = detail.get("cacheHitResult")
    if isinstance(cache, dict) and isinstance(cache.get("sourcePipelineExecutionArn"), str):
        rows.append(("Cached from", cache["sourcePipelineExecutionArn"]))
    return rows, links


# The training pipelines' condition before RegisterModel (pipeline_scripts/pipelines.py
# NOVELTY_STEP): outcome False means the model was not registered, being the newest version's.
NOT_REGISTERED_STEP = STEPS["novelty_check"]


def _not_registered_notice(step: str, status: str, detail: dict) -> tuple:
    """A message for the team when a run registered no new version because nothing changed;
    sent whatever NOTIFY_STATUSES says, like a custom message."""
    metadata = detail.get("metadata")
    condition = metadata.get("condition") if isinstance(metadata, dict) else None
    outcome = condition.get("outcome") if isinstance(condition, dict) else None
    if step != NOT_REGISTERED_STEP or status != "Succeeded" or str(outcome) != "False":
        return ()
    return (
        "No new model version was registered: the model has the same training data, code and "
        "hyperparameters as the newest version of the model package group (the "
        f"{STEPS['compare_with_newest']} step's output 'message' names it).",
    )


def _step(event: dict, detail: dict, config: Config) -> Notification:
    status = _get(detail, "currentStepStatus", required=True)
    step = _get(detail, "stepName", required=True)
    arn = _get(detail, "pipelineExecutionArn", required=True)
    region, pipeline, execution_id = _parse_execution_arn(arn)
    custom = config.custom_messages.get((step, status), ()) or _not_registered_notice(
        step, status, detail
    )
    allowed = config.notify["step"]
    if status not in allowed and not custom:
        return _skip(
            f"step status {status!r} is not in NOTIFY_STATUSES.step {sorted(allowed)} and no "
            f"custom message is configured for step {step!r} status {status!r}"
        )
    step_type = _get(detail, "stepType")
    start, end = _get(detail, "stepStartTime"), _get(detail, "stepEndTime")
    failure = _get(detail, "failureReason")
    if status == "Failed":
        exit_message = _processing_exit_message(detail, region)
        if exit_message and exit_message not in (failure or ""):
            failure = f"{exit_message}\n({failure})" if failure else exit_message
    metadata_rows, job_links = _step_metadata(detail, region)
    explained = _batch_explanations(pipeline, execution_id) if step in EXPLAINED_STEPS else None
    # The registration e-mail (the model-package rule sends only approvals): the new
    # version's training-data findings, read from the version the step registered.
    metadata = detail.get("metadata")
    register = metadata.get("registerModel") if isinstance(metadata, dict) else None
    registered = register.get("arn") if isinstance(register, dict) else None
    if isinstance(registered, str) and status == "Succeeded":
        metadata_rows += _training_data_rows({"ModelPackageArn": registered}, region)
    body = _body(
        event,
        config,
        headline=f"SageMaker pipeline {pipeline}: step {step} {status}.",
        custom=custom,
        failure=failure,
        explained=explained,
        rows=[
            ("Pipeline", pipeline),
            ("Execution", execution_id),
            ("Step", f"{step} ({step_type})" if step_type else step),
            ("Status", _transition(_get(detail, "previousStepStatus"), status)),
            ("Started", start),
            ("Ended", end),
            ("Duration", _duration(start, end)),
            *metadata_rows,
            ("Execution ARN", arn),
        ],
        links=[
            "Open the execution in the SageMaker console (or Studio > Pipelines):",
            _execution_url(region, pipeline, execution_id),
            *job_links,
        ],
    )
    # The reason's first line in the subject: the inbox alone tells what went wrong.
    summary = f"{status}: {step} in {pipeline}"
    first_line = (failure or "").strip().splitlines()[:1]
    if first_line:  # minus the error class, which only costs subject space
        summary += ": " + re.sub(r"^[A-Za-z]*Error:\s*", "", first_line[0])
    note = f" with {len(custom)} custom message(s)" if custom else ""
    return Notification(_subject(summary), body, f"step {step} status {status} notified{note}")


def _champion_versus_challenger(detail: dict) -> str | None:
    """The evaluation recorded on the version by the training pipelines (issue 10 point 5):
    "challenger MSE 4.10 vs champion (version 2) 5.90 on the same 1,200 records", then "; on
    120 recent labelled records: challenger MSE 4.1 vs champion 9.8" when some were held out."""
    metadata = ("CustomerMetadataProperties",)
    challenger = _get(detail, *metadata, METADATA_KEYS["challenger"])
    records = _get(detail, *metadata, METADATA_KEYS["records"])
    if challenger is None or records is None:
        return None  # registered before the comparison existed
    records = f"{int(records):,}" if records.isdigit() else records
    champion = _get(detail, *metadata, METADATA_KEYS["compared_with"])
    recent = _get(detail, *metadata, METADATA_KEYS["recent"]) or "none"
    if recent.isdigit() and int(recent):
        recent_mse = _get(detail, *metadata, METADATA_KEYS["challenger_recent"])
        recent = f"; on {int(recent):,} recent labelled records: challenger MSE {recent_mse}"
        if champion not in (None, "none"):
            recent += f" vs champion {_get(detail, *metadata, METADATA_KEYS['champion_recent'])}"
    else:
        recent = ""  # none held out, or registered before they were
    if champion in (None, "none"):
        return (
            f"MSE {challenger} on {records} test records; no Approved version to compare with"
            + recent
        )
    champion_mse = _get(detail, *metadata, METADATA_KEYS["champion"])
    return (
        f"challenger MSE {challenger} vs champion (version {champion}) {champion_mse} "
        f"on the same {records} records" + recent
    )


def _model_package(event: dict, detail: dict, config: Config) -> Notification:
    group = _get(detail, "ModelPackageGroupName", required=True)
    approval = _get(detail, "ModelApprovalStatus", required=True)
    version = _get(detail, "ModelPackageVersion")
    arn = _get(detail, "ModelPackageArn")
    region = _region(event, arn)
    generated_by = _get(detail, "MetadataProperties", "GeneratedBy")
    label = f"{group} version {version}" if version else group
    headline = f"Model registry: {label} is {approval}."
    if approval == "Approved":
        headline += (
            " Batch inference uses the newest Approved version of the group from its next run."
        )
    links = [
        "Open the model group in the SageMaker console (or Studio > Models > Model registry):",
        _console(region, f"model-registry/{quote(group)}"),
    ]
    produced = EXECUTION_ARN.fullmatch(generated_by or "")
    if produced:
        links += [
            "Open the pipeline execution that produced it:",
            _execution_url(*produced.groups()),
        ]
    body = _body(
        event,
        config,
        headline=headline,
        rows=[
            ("Model group", group),
            ("Version", version),
            ("Approval status", approval),
            ("Approval note", _get(detail, "ApprovalDescription")),
            ("Package status", _get(detail, "ModelPackageStatus")),
            ("Description", _get(detail, "ModelPackageDescription")),
            ("Created", _get(detail, "CreationTime")),
            ("Last modified", _get(detail, "LastModifiedTime")),
            ("Generated by", generated_by),
            ("Champion vs challenger", _champion_versus_challenger(detail)),
            ("Model metrics", _get(detail, "ModelMetrics", "ModelQuality", "Statistics", "S3Uri")),
            # Written before RegisterModel by the training pipelines' ModelCard step. Shown when
            # the event's detail carries the version's CustomerMetadataProperties (the local
            # runtime sends the whole DescribeModelPackage answer; not verified against AWS's
            # documented example, which lists no such field: then the row is simply absent).
            ("Model card", _get(detail, "CustomerMetadataProperties", METADATA_KEYS["model_card"])),
            *_training_data_rows(detail, region),
            ("Model package ARN", arn),
        ],
        links=links,
    )
    return Notification(
        _subject(f"{approval}: model {label}"), body, f"model package {approval} notified"
    )


def _object_created(event: dict, detail: dict, config: Config) -> Notification:
    bucket = _get(detail, "bucket", "name", required=True)
    key = _get(detail, "object", "key", required=True)
    region = _region(event, None)
    uri = f"s3://{bucket}/{key}"
    body = _body(
        event,
        config,
        headline=f"New object {uri}. If its prefix feeds a pipeline, that pipeline starts now "
        "and its own notifications follow.",
        rows=[
            ("Bucket", bucket),
            ("Key", key),
            ("Size (bytes)", _get(detail, "object", "size")),
            ("Version", _get(detail, "object", "version-id")),
            ("ETag", _get(detail, "object", "etag")),
            ("Reason", _get(detail, "reason")),
            ("Requester", _get(detail, "requester")),
        ],
        links=[
            "Open the object in the S3 console:",
            f"https://s3.console.aws.amazon.com/s3/object/{quote(bucket)}"
            f"?region={quote(region)}&prefix={quote(key)}",
        ],
    )
    # File name first: a long bucket and prefix would push it out of the subject.
    name = key.rstrip("/").rsplit("/", 1)[-1] or key
    return Notification(_subject(f"New data: {name} in {uri}"), body, "object created notified")


FORMATTERS = {
    EXECUTION_EVENT: _execution,
    STEP_EVENT: _step,
    MODEL_PACKAGE_EVENT: _model_package,
    OBJECT_CREATED_EVENT: _object_created,
}


def build_notification(event, config: Config) -> Notification:
    """The notification for a well-formed event; raises UnformattableEvent otherwise."""
    if not isinstance(event, dict):
        raise UnformattableEvent(f"expected a JSON object, got {type(event).__name__}")
    detail_type = event.get("detail-type")
    formatter = FORMATTERS.get(detail_type) if isinstance(detail_type, str) else None
    if formatter is None:
        raise UnformattableEvent(f"unknown detail-type {detail_type!r}")
    detail = event.get("detail")
    if isinstance(detail, str):  # an input template that quoted <detail> hands over a string
        try:
            detail = json.loads(detail)
        except json.JSONDecodeError as error:
            raise UnformattableEvent(f"detail is a string that is not JSON ({error})") from None
    if not isinstance(detail, dict):
        raise UnformattableEvent(f"detail must be an object, got {type(detail).__name__}")
    return formatter(event, detail, config)
