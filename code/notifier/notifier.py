"""Lambda: turn SageMaker pipeline, model registry and S3 events into readable SNS e-mails.

event:   what the EventBridge rules (events/*.json) deliver: the input transformer's
         {"rule", "detail-type", "source", "time", "region", "account", "detail"}, or a raw
         EventBridge event (the same keys without "rule"). Formatted detail-types: pipeline
         execution status change, pipeline step status change, model package state change and
         S3 "Object Created". Anything else, or anything malformed, is logged and sent as a
         generic message carrying the raw event: no notification is lost to a formatting
         problem, and the event's content never makes the handler raise.
env:     SNS_TOPIC_ARN (required); CUSTOM_NOTIFICATION_CONFIG, a JSON list of
         {"step_name", "step_status", "step_custom_message"}: the message heads the e-mail of
         that step reaching that status, which is then sent even if NOTIFY_STATUSES leaves the
         status out; NOTIFY_STATUSES, JSON {"execution": [...], "step": [...]}: the statuses that
         send e-mail (default: execution Succeeded, Failed, Stopped; step Failed).
         A malformed CUSTOM_NOTIFICATION_CONFIG / NOTIFY_STATUSES is logged once per container
         and listed at the bottom of every message; the valid entries / the defaults apply.
         INFERENCE_PIPELINE and ARTIFACTS_URI (optional): a Succeeded execution of that
         pipeline reads its data- and model-quality results from the artifacts and says in the
         subject when there were violations or model quality was skipped or had too few labels.
returns: {"published": bool, "subject": str | None, "reason": str} (+ "message_id" when sent)
raises:  only when publishing fails or SNS_TOPIC_ARN is unusable, so Lambda's retries and
         dead-letter queue keep the event.
IAM:     sns:Publish on SNS_TOPIC_ARN (and kms:GenerateDataKey, kms:Decrypt on its key);
         s3:GetObject on the inference pipeline's quality outputs and ExplainBatch's
         attributions.json (and kms:Decrypt on their key).
"""

import functools
import importlib.util
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import boto3
from botocore.config import Config as BotoConfig

# explanations.py sits next to this file: in the Lambda package (the folder is zipped) and in
# the repository, where the local runtime and the tests load this file by path, so it is
# loaded by path too rather than imported from sys.path.
_spec = importlib.util.spec_from_file_location(
    "notifier_explanations", Path(__file__).with_name("explanations.py")
)
explanations = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(explanations)

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

EXECUTION_EVENT = "SageMaker Model Building Pipeline Execution Status Change"
STEP_EVENT = "SageMaker Model Building Pipeline Execution Step Status Change"
MODEL_PACKAGE_EVENT = "SageMaker Model Package State Change"
OBJECT_CREATED_EVENT = "Object Created"

# Exactly as SageMaker spells them (PipelineExecutionStatus, StepStatus): compared case-sensitively.
KNOWN_STATUSES = {
    "execution": ("Executing", "Stopping", "Stopped", "Failed", "Succeeded"),
    "step": ("Starting", "Executing", "Stopping", "Stopped", "Failed", "Succeeded"),
}
DEFAULT_NOTIFY = {"execution": ("Succeeded", "Failed", "Stopped"), "step": ("Failed",)}
CUSTOM_KEYS = ("step_name", "step_status", "step_custom_message")

# SNS Publish: "Subjects must be UTF-8 text with no line breaks or control characters, and less
# than 100 characters long"; a message is at most 256 KB (262,144 bytes).
SUBJECT_MAX_CHARS = 99
MESSAGE_MAX_BYTES = 262_144
# A generic message keeps this much room for its own text around the raw event.
RAW_EVENT_MAX_BYTES = MESSAGE_MAX_BYTES - 16_384
LOG_EVENT_MAX_BYTES = 16_384

TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")
EXECUTION_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):\d{12}:pipeline/([^/\s]+)/execution/([^/\s]+)"
)

# Classic-console routes (undocumented by AWS, so the ARN is always printed beside the link).
# Studio deep links would need the Studio domain id, which no event carries.
CONSOLE_URL = "https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/{route}"
# Step metadata key (PipelineExecutionStepMetadata, camelCase in events) -> console page of the job.
JOB_ROUTES = {
    "processingJob": "processing-jobs",
    "trainingJob": "jobs",
    "transformJob": "transform-jobs",
    "tuningJob": "hyper-tuning-jobs",
}


class UnformattableEvent(ValueError):
    """The event is of an unknown type, lacks a field the message needs, or has a wrong type."""


class NotifierConfigError(RuntimeError):
    """SNS_TOPIC_ARN is missing or not a topic ARN: nothing can be published."""


@dataclass(frozen=True)
class Config:
    custom_messages: dict  # (step_name, step_status) -> tuple of messages
    notify: dict  # "execution" | "step" -> frozenset of statuses
    problems: tuple  # human-readable configuration errors


@dataclass(frozen=True)
class Notification:
    subject: str | None
    body: str
    reason: str
    publish: bool = True


def _log(message: str, level: int = logging.INFO, **fields) -> None:
    # One JSON object per line: CloudWatch Logs Insights can query every field.
    logger.log(level, json.dumps({"message": message, **fields}, default=str, ensure_ascii=False))


# --------------------------------------------------------------------------- configuration


def _parse_custom(raw: str | None, problems: list) -> dict:
    messages: dict = {}
    if raw is None or not raw.strip():
        return messages
    try:
        entries = json.loads(raw)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly deep nesting
        problems.append(
            f"CUSTOM_NOTIFICATION_CONFIG is not valid JSON ({error}); no custom messages are sent"
        )
        return messages
    if not isinstance(entries, list):
        problems.append(
            "CUSTOM_NOTIFICATION_CONFIG must be a JSON list of {step_name, step_status, "
            "step_custom_message} objects, "
            f"got {type(entries).__name__}; no custom messages are sent"
        )
        return messages
    for i, entry in enumerate(entries):
        where = f"CUSTOM_NOTIFICATION_CONFIG[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} must be an object, got {type(entry).__name__}; ignored")
            continue
        bad = [
            key
            for key in CUSTOM_KEYS
            if not isinstance(entry.get(key), str) or not entry[key].strip()
        ]
        unknown = sorted(set(entry) - set(CUSTOM_KEYS))
        if bad:
            extra = f" (unknown keys: {', '.join(unknown)})" if unknown else ""
            problems.append(f"{where}: {', '.join(bad)} must be non-empty strings{extra}; ignored")
            continue
        status = entry["step_status"]
        if status not in KNOWN_STATUSES["step"]:
            problems.append(
                f"{where}.step_status {status!r} is not a step status (case-sensitive: "
                f"{', '.join(KNOWN_STATUSES['step'])}); ignored"
            )
            continue
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(unknown)} ignored")
        key = (entry["step_name"].strip(), status)
        messages[key] = messages.get(key, ()) + (entry["step_custom_message"].strip(),)
    return messages


def _parse_notify(raw: str | None, problems: list) -> dict:
    notify = {kind: frozenset(statuses) for kind, statuses in DEFAULT_NOTIFY.items()}
    if raw is None or not raw.strip():
        return notify
    defaults = json.dumps({kind: list(statuses) for kind, statuses in DEFAULT_NOTIFY.items()})
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as error:
        problems.append(f"NOTIFY_STATUSES is not valid JSON ({error}); using {defaults}")
        return notify
    if not isinstance(value, dict):
        problems.append(
            'NOTIFY_STATUSES must be a JSON object like {"execution": [...], "step": [...]}, '
            f"got {type(value).__name__}; using {defaults}"
        )
        return notify
    for kind in sorted(set(value) - set(KNOWN_STATUSES)):
        problems.append(f"NOTIFY_STATUSES.{kind} is not a known key (execution, step); ignored")
    for kind, known in KNOWN_STATUSES.items():
        if kind not in value:
            continue
        statuses = value[kind]
        if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
            problems.append(
                f"NOTIFY_STATUSES.{kind} must be a list of strings, got {json.dumps(statuses)}; "
                f"using {list(DEFAULT_NOTIFY[kind])}"
            )
            continue
        unknown = [s for s in statuses if s not in known]
        if unknown:
            problems.append(
                f"NOTIFY_STATUSES.{kind}: {unknown} are not {kind} statuses (case-sensitive: "
                f"{', '.join(known)}); ignored"
            )
        notify[kind] = frozenset(s for s in statuses if s in known)
    return notify


@functools.lru_cache(maxsize=8)
def load_config(custom_raw: str | None, notify_raw: str | None) -> Config:
    """Parse the JSON env vars once per distinct value, i.e. at cold start; never raises."""
    problems: list = []
    config = Config(
        custom_messages=_parse_custom(custom_raw, problems),
        notify=_parse_notify(notify_raw, problems),
        problems=tuple(problems),
    )
    for problem in problems:
        _log("notifier configuration problem", logging.ERROR, problem=problem)
    return config


# --------------------------------------------------------------------------- event fields


def _get(mapping: dict, *path: str, where: str = "detail", required: bool = False) -> str | None:
    """The scalar at path as text; None when absent. A wrong type is a malformed event."""
    value = mapping
    for depth, key in enumerate(path):
        if value is None:  # an absent (null) parent: the field is absent too
            break
        if not isinstance(value, dict):
            name = ".".join(filter(None, (where, *path[:depth])))
            raise UnformattableEvent(f"{name} must be an object, got {type(value).__name__}")
        value = value.get(key)
    name = ".".join(filter(None, (where, *path)))
    if value is None or value == "":
        if required:
            raise UnformattableEvent(f"{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UnformattableEvent(f"{name} must be a string, got {type(value).__name__}")
    return str(value)


def _parse_execution_arn(arn: str) -> tuple[str, str, str]:
    """(region, pipeline name, execution id) of a pipeline execution ARN."""
    match = EXECUTION_ARN.fullmatch(arn)
    if not match:
        raise UnformattableEvent(
            f"detail.pipelineExecutionArn {arn!r} is not a pipeline execution ARN "
            "(arn:aws:sagemaker:<region>:<account>:pipeline/<name>/execution/<id>)"
        )
    return match.group(1), match.group(2), match.group(3)


def _region(event: dict, arn: str | None) -> str:
    """The resource's region: from its ARN, else the event's, else the Lambda's own."""
    parts = (arn or "").split(":")
    candidates = (parts[3] if len(parts) > 3 else "", _get(event, "region", where=""))
    for region in (*candidates, os.environ.get("AWS_REGION", "")):
        if region and re.fullmatch(r"[a-z0-9-]+", region):
            return region
    return "us-east-1"  # links need some region; the console offers to switch


def _console(region: str, route: str) -> str:
    return CONSOLE_URL.format(region=region, route=route)


def _execution_url(region: str, pipeline: str, execution_id: str) -> str:
    return _console(region, f"pipelines/{quote(pipeline)}/executions/{quote(execution_id)}")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _duration(start: str | None, end: str | None) -> str | None:
    try:
        seconds = int((_parse_time(end) - _parse_time(start)).total_seconds())
    except (AttributeError, TypeError, ValueError):  # absent, unparsable or naive/aware mix
        return None
    if seconds < 0:
        return None
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return (
        f"{hours} h {minutes:02d} min {seconds:02d} s"
        if hours
        else f"{minutes} min {seconds:02d} s"
    )


def _transition(previous: str | None, current: str) -> str:
    return f"{current} (was {previous})" if previous else current


# --------------------------------------------------------------------------- message text


def _subject(text: str) -> str:
    """One line (SNS rejects line breaks and control characters), under SNS's length limit."""
    text = " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", text).split())
    if len(text) > SUBJECT_MAX_CHARS:
        text = text[: SUBJECT_MAX_CHARS - 3].rstrip() + "..."
    return text or "SageMaker notification"


def _truncate_utf8(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    marker = f"\n... [truncated: showing about {max_bytes} of {len(data)} bytes]"
    return data[: max_bytes - len(marker.encode())].decode("utf-8", errors="ignore") + marker


def _table(rows: list) -> list:
    rows = [(label, value) for label, value in rows if value not in (None, "")]
    width = max((len(label) for label, _ in rows), default=0) + 2
    return [f"{label + ':':<{width}}{value}" for label, value in rows]


def _block(title: str, text: str) -> list:
    return [title, *(f"  {line}" for line in text.splitlines()), ""]


def _body(
    event: dict,
    config: Config,
    *,
    headline: str,
    rows: list,
    links: list,
    custom: tuple = (),
    failure: str | None = None,
    explained: list | None = None,
) -> str:
    lines = []
    for message in custom:  # the team's own words first: that is what they asked to see
        lines += [message, ""]
    lines += [headline, ""]
    if failure:
        lines += _block("FAILURE REASON", failure)
    lines += [*_table(rows), ""]
    if explained:
        lines += _block("EXPLANATIONS (feature attributions)", "\n".join(explained))
    lines += [*links, ""]
    lines += _table(
        [
            ("Event time", _get(event, "time", where="")),
            ("Region", _get(event, "region", where="")),
            ("Account", _get(event, "account", where="")),
            ("EventBridge rule", _get(event, "rule", where="")),
        ]
    )
    if config.problems:
        lines += ["", "Notifier configuration problems (fix the notifier Lambda's environment):"]
        lines += [f"  - {problem}" for problem in config.problems]
    return "\n".join(lines)


# --------------------------------------------------------------------------- formatters


def _skip(reason: str) -> Notification:
    return Notification(subject=None, body="", reason=reason, publish=False)


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


# Where the batch-inference steps write their results: <ARTIFACTS_URI>/<pipeline>/<execution
# id>/<step>/<output>/ (pipeline_scripts/steps.py StepFactory.output_uri).
OUTCOME_FILES = {
    "data_quality": ("DataQualityCheck", "data_quality", "summary.json"),
    "model_quality": ("ModelQualityCheck", "model_quality", "statistics.json"),
}
# A run for labels that arrived later (Mode=evaluate) checks no data and writes its model
# quality here instead (pipeline_scripts/pipelines.py LABELS_QUALITY_STEP).
LATE_LABELS_FILE = ("EvaluateLateLabels", "model_quality", "statistics.json")


# ExplainBatch's summary (pipeline_scripts/explain_step.py), at the same kind of location.
EXPLANATIONS_FILE = ("ExplainBatch", "explanations", "attributions.json")
# The inference steps whose e-mails explain the batch; the gates before the two Fail steps
# wait for ExplainBatch (pipeline_scripts/pipelines.py), so the file exists when they fail.
EXPLAINED_STEPS = {
    "DataQualityCheck", "DataQualityViolations", "ModelQualityCheck", "ModelQualityBelowThreshold",
}  # fmt: skip


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
    return lines or ["Explanations unavailable (ExplainBatch's attributions.json unreadable)."]


def _batch_outcome(pipeline: str, execution_id: str) -> tuple[list, list]:
    """(subject caveats, body rows) of a Succeeded batch-inference execution: data-quality
    violations, model quality skipped or with insufficient labels. Other pipelines: none."""
    if not _is_inference(pipeline) or not os.environ.get("ARTIFACTS_URI", "").startswith("s3:"):
        return [], []
    late = _inference_result(pipeline, execution_id, *LATE_LABELS_FILE, quiet=True)
    if isinstance(late, dict):  # labels that arrived later: model quality only
        results = {"data_quality": {}, "model_quality": late}
    else:
        results = {
            kind: _inference_result(pipeline, execution_id, *location)
            for kind, location in OUTCOME_FILES.items()
        }
    warnings, rows = [], []
    dq, mq = results.get("data_quality"), results.get("model_quality")
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


def _words(name: str) -> str:
    """processingJob -> processing job, errorMessage -> error message, arn -> ARN."""
    return "ARN" if name == "arn" else re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", name).lower()


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


# The training pipelines' condition before RegisterModel (pipeline_scripts/pipelines.py
# NOVELTY_STEP): outcome False means the model was not registered, being the newest version's.
NOT_REGISTERED_STEP = "CheckModelIsNew"


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
        "CompareWithNewestVersion step's output 'message' names it).",
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


# The training pipelines' comparison of the new training data with the previous approved
# version's (pipeline_scripts/pipelines.py _training_data_comparison): its one-line summary and
# report, as metadata on the version.
TRAINING_DATA_KEYS = (
    ("Training data vs previous", "training_data_comparison"),
    ("Training data report", "training_data_comparison_uri"),
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


def _champion_versus_challenger(detail: dict) -> str | None:
    """The evaluation recorded on the version by the training pipelines (issue 10 point 5):
    "challenger MSE 4.10 vs champion (version 2) 5.90 on the same 1,200 records"."""
    metadata = ("CustomerMetadataProperties",)
    challenger = _get(detail, *metadata, "challenger_mse")
    records = _get(detail, *metadata, "evaluation_records")
    if challenger is None or records is None:
        return None  # registered before the comparison existed
    records = f"{int(records):,}" if records.isdigit() else records
    champion = _get(detail, *metadata, "champion_version")
    if champion in (None, "none"):
        return f"MSE {challenger} on {records} test records; no Approved version to compare with"
    champion_mse = _get(detail, *metadata, "champion_mse")
    return (
        f"challenger MSE {challenger} vs champion (version {champion}) {champion_mse} "
        f"on the same {records} records"
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
            ("Model card", _get(detail, "CustomerMetadataProperties", "model_card_uri")),
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


def _dump(event) -> str:
    try:
        return json.dumps(event, indent=2, default=repr, ensure_ascii=False)
    except Exception:  # non-string keys, cycles, extreme nesting: fall back to repr
        pass
    try:
        return repr(event)
    except Exception:  # the generic message must go out even for an unprintable object
        return f"<{type(event).__name__} that cannot be printed>"


def _generic(event, problem: str, config: Config) -> Notification:
    raw = _dump(event)
    _log(
        "unformattable event",
        logging.WARNING,
        problem=problem,
        event=_truncate_utf8(raw, LOG_EVENT_MAX_BYTES),
    )
    detail_type = event.get("detail-type") if isinstance(event, dict) else None
    label = (
        detail_type
        if isinstance(detail_type, str) and detail_type.strip()
        else type(event).__name__
    )
    lines = [
        f"The notifier could not format this event ({problem}), so it is sent as received.",
        "If it should be formatted, extend code/notifier/notifier.py; if it should not "
        "arrive here, narrow the EventBridge rule that matched it.",
        "",
        *_block("RAW EVENT", _truncate_utf8(raw, RAW_EVENT_MAX_BYTES)),
    ]
    if config.problems:
        lines += ["Notifier configuration problems (fix the notifier Lambda's environment):"]
        lines += [f"  - {p}" for p in config.problems]
    return Notification(
        _subject(f"Unrecognised event: {label}"), "\n".join(lines), f"generic message: {problem}"
    )


# --------------------------------------------------------------------------- publishing


@functools.lru_cache(maxsize=4)
def _sns_client(region: str, endpoint_env: tuple):
    # Built on first use, not at import: the region comes from the topic ARN and boto3 reads
    # AWS_ENDPOINT_URL(_SNS) (the local runtime's moto server) when the client is created;
    # endpoint_env is in the cache key so a changed endpoint gets a new client.
    return boto3.client("sns", region_name=region)


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


def _topic_arn() -> str:
    arn = os.environ.get("SNS_TOPIC_ARN", "").strip()
    if not TOPIC_ARN.fullmatch(arn):
        raise NotifierConfigError(
            f"environment variable SNS_TOPIC_ARN must be an SNS topic ARN like "
            f"arn:aws:sns:<region>:<account>:<topic>; got {arn!r}"
        )
    return arn


def _publish(subject: str, body: str) -> str:
    try:
        topic = _topic_arn()
        region = TOPIC_ARN.fullmatch(topic).group(1)
        endpoints = _endpoints("SNS")
        # Every formatter stays far below the limit; this guards custom messages and raw events.
        message = _truncate_utf8(body, MESSAGE_MAX_BYTES)
        response = _sns_client(region, endpoints).publish(
            TopicArn=topic, Subject=subject, Message=message
        )
    except Exception as error:  # logged with what was lost, then raised for retries / the DLQ
        _log(
            "publish failed",
            logging.ERROR,
            error=f"{type(error).__name__}: {error}",
            subject=subject,
        )
        raise
    return response["MessageId"]


def handler(event, context=None) -> dict:
    config = load_config(
        os.environ.get("CUSTOM_NOTIFICATION_CONFIG"), os.environ.get("NOTIFY_STATUSES")
    )
    try:
        note = build_notification(event, config)
    except UnformattableEvent as problem:
        note = _generic(event, str(problem), config)
    except Exception as error:  # a formatter bug must not cost the team the notification
        note = _generic(event, f"notifier error {type(error).__name__}: {error}", config)
    if not note.publish:
        _log("not notified", reason=note.reason)
        return {"published": False, "subject": None, "reason": note.reason}
    message_id = _publish(note.subject, note.body)
    _log("notified", subject=note.subject, reason=note.reason, message_id=message_id)
    return {
        "published": True,
        "subject": note.subject,
        "reason": note.reason,
        "message_id": message_id,
    }
