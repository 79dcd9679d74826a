"""`make demo`: the whole MLOps loop on this machine, from the definitions that deploy.

upload training data -> (S3 event -> rule) training pipeline -> a version PendingManualApproval
-> approved as a data scientist would -> a clean batch with its labels (scored once, model
quality passes) -> a drifted batch without labels (scored once, drift reported, model quality
skipped) -> its labels arrive later (rule labels_created -> the batch dispatcher -> the
inference pipeline with Mode=evaluate: joined with the stored predictions on record_id) ->
model quality fails -> (rule) exactly one training with tuning -> a new version
PendingManualApproval. Every status change goes through the same EventBridge rules and notifier
as in AWS; the e-mails land in an SQS queue subscribed to the topic, as a mailbox would.
`batch_data` replaces the three batch uploads with those files, uploaded one after the other
(each followed by the executions it starts); the report shows the last one scored.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import boto3
import pandas as pd

from local_runtime.aws import embedded_aws
from local_runtime.events import STEP_STATUS_CHANGE, model_package_event
from local_runtime.report import write_report
from local_runtime.router import EventRouter, notifier_environment, s3_object_created
from local_runtime.runner import Execution, PipelineRunner
from pipeline_scripts.cli import run as pipeline_cli
from pipeline_scripts.config import (
    DEFAULT_SETTINGS_FILE,
    REPO_ROOT,
    ConfigError,
    ProjectConfig,
    load_config,
)
from pipeline_scripts.contract import (
    METADATA_KEYS,
    MODES,
    OUTPUTS,
    PARAMETERS,
    SNS_TOPIC_SUFFIX,
    STEPS,
)

DEFAULT_TRAIN_DATA = REPO_ROOT / "data" / "train" / "abalone_synthetic_train.csv"
DEFAULT_BATCH_DATA = REPO_ROOT / "data" / "inference" / "abalone_synthetic_batch_drift.csv"
# The demo's batches (data/README.md): a clean one with labels, a drifted one without, and the
# labels that arrive later for it (named <batch id>.labels.csv, the batch id being the name).
CLEAN_BATCH = REPO_ROOT / "data" / "inference" / "abalone_synthetic_batch_clean.csv"
LATE_BATCH = REPO_ROOT / "data" / "later" / "abalone_synthetic_batch_late.csv"
LATE_LABELS = REPO_ROOT / "data" / "later" / "abalone_synthetic_batch_late.labels.csv"


@dataclass
class Options:
    env_file: str
    out_dir: Path
    train_data: Path = DEFAULT_TRAIN_DATA
    batch_data: tuple[Path, ...] = ()  # batches instead of the demo's (clean, late + labels)
    only_pipeline: str | None = None  # run just this pipeline (after training, for inference)
    keep_state: bool = False
    settings_file: Path = DEFAULT_SETTINGS_FILE


class Progress:
    """One line per step or execution status change, with the time since the start."""

    def __init__(self, out: Callable[[str], None]):
        self.out, self.started = out, time.monotonic()

    def __call__(self, event: dict) -> None:
        detail = event["detail"]
        pipeline = detail.get("pipelineArn", "").rsplit("/", 1)[-1]
        if event["detail-type"] == STEP_STATUS_CHANGE:
            if detail["currentStepStatus"] == "Starting":  # Executing follows at once
                return
            status, what = detail["currentStepStatus"], f"{pipeline} > {detail['stepName']}"
            if detail.get("failureReason"):
                status += f": {detail['failureReason'].splitlines()[-1][:110]}"
        elif "currentPipelineExecutionStatus" in detail:
            status, what = detail["currentPipelineExecutionStatus"], f"{pipeline} (execution)"
        else:
            return
        self.say(f"{what:<58} {status}")

    def say(self, line: str) -> None:
        self.out(f"[{time.monotonic() - self.started:6.1f}s] {line}")


def _inbox(config: ProjectConfig) -> tuple[str, str]:
    """The notification topic (named as sns.tf names it) and a queue standing in for e-mail."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=f"{config.env.model_package_group_name}{SNS_TOPIC_SUFFIX}")
    queue_url = sqs.create_queue(QueueName="demo-mailbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic["TopicArn"],
        Protocol="sqs",
        Endpoint=queue_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "false"},
    )
    return topic["TopicArn"], queue_url


def _mail(queue_url: str) -> list[dict]:
    sqs, mails = boto3.client("sqs"), []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages")
        if not batch:
            return mails
        for message in batch:
            envelope = json.loads(message["Body"])
            mails.append({"subject": envelope.get("Subject", ""), "body": envelope["Message"],
                          "time": envelope.get("Timestamp")})  # fmt: skip
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


class Loop:
    def __init__(self, config: ProjectConfig, options: Options, out: Callable[[str], None]):
        self.config, self.options = config, options
        self.progress = Progress(out)
        self.router = EventRouter(config)
        self.runner = PipelineRunner(
            options.out_dir / "executions", on_event=self._on_event, max_workers=2
        )
        self.executions: list[tuple[Execution, str]] = []
        self.account = config.env.account_id
        self.unrouted: list[str] = []  # uploads no rule matched: nothing started, say so

    def _on_event(self, event: dict) -> None:
        self.progress(event)
        self.router(event)

    def upload(self, path: Path, prefix_uri: str) -> None:
        """Uploads like `aws s3 cp` and emits S3's Object Created event."""
        env = self.config.env
        key = f"{prefix_uri.removeprefix(f's3://{env.bucket_name}/')}{path.name}"
        s3 = boto3.client("s3")
        s3.upload_file(str(path), env.bucket_name, key)
        head = s3.head_object(Bucket=env.bucket_name, Key=key)
        self.progress.say(f"uploaded {path} -> s3://{env.bucket_name}/{key}")
        delivered = len(self.router.deliveries)
        self._on_event(s3_object_created(env.bucket_name, key, head, env.region, self.account))
        if len(self.router.deliveries) == delivered:
            labels = prefix_uri == f"{env.s3_base_uri}/labels/"
            expected = "<batch id>.labels.csv" if labels else (
                "a name ending in .csv, .CSV, .csv.gz or .CSV.GZ")  # fmt: skip
            self.unrouted.append(
                f"s3://{env.bucket_name}/{key}: no EventBridge rule matched, so no pipeline "
                f"started; expected {expected}"
            )
            self.progress.say(self.unrouted[-1])

    def drain(self) -> None:
        """Runs the pipeline executions the rules started, in order, until none is pending."""
        while (start := self.router.next_start()) is not None:
            pipeline, reason = start.pipeline, start.reason
            if self.options.only_pipeline and pipeline != self.options.only_pipeline:
                self.progress.say(f"skipped {pipeline} ({reason}): --pipeline given")
                continue
            self.progress.say(f"starting {pipeline} ({reason})")
            execution = self.runner.start(
                pipeline,
                start.parameters,
                execution_arn=start.execution_arn,
                display_name=start.display_name,
            )
            self.executions.append((execution, reason))

    def approve_newest(self) -> dict:
        """What a data scientist does after reviewing the metrics in the registry."""
        sagemaker = boto3.client("sagemaker")
        group = self.config.env.model_package_group_name
        newest = sagemaker.list_model_packages(
            ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"
        )["ModelPackageSummaryList"][0]
        package = sagemaker.describe_model_package(ModelPackageName=newest["ModelPackageArn"])
        self.progress.say(
            f"registered version {package['ModelPackageVersion']}: "
            f"{package['ModelApprovalStatus']}; approving it"
        )
        sagemaker.update_model_package(
            ModelPackageArn=package["ModelPackageArn"],
            ModelApprovalStatus="Approved",
            ApprovalDescription="Reviewed the evaluation metrics: approved (local demo).",
            # moto's UpdateModelPackage drops fields it is not given (AWS keeps them).
            CustomerMetadataProperties=package.get("CustomerMetadataProperties", {}),
        )
        self._on_event(model_package_event(package["ModelPackageArn"], sagemaker))
        return package


def model_versions(config: ProjectConfig) -> list[dict]:
    """Every version in the group with its approval status, metrics and lineage."""
    sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")
    group = config.env.model_package_group_name
    summaries = sagemaker.list_model_packages(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Ascending"
    )["ModelPackageSummaryList"]
    versions = []
    for summary in summaries:
        package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        versions.append(
            {
                "version": package["ModelPackageVersion"],
                "arn": package["ModelPackageArn"],
                "approval_status": package["ModelApprovalStatus"],
                "metrics": {k: v["value"] for k, v in report["regression_metrics"].items()},
                "mean_predictor_mse": report["baseline_mean_predictor"]["mse"]["value"],
                # Champion vs challenger on the same test rows (scripts/evaluate.py).
                "champion": report.get("champion", {"version": "none"}),
                # ... and on the recent labelled rows held out from training.
                "recent": report.get("recent", {"item_count": 0}),
                "threshold": config.env.accuracy_mse_threshold,
                "lineage": package.get("CustomerMetadataProperties", {}),
                # ExplainModel's attributions.json (issue 13): global importance per version.
                "attributions": _read_json_uri(
                    (package.get("CustomerMetadataProperties") or {}).get(
                        METADATA_KEYS["attributions"]
                    )
                ),
                # The ModelCard step's model_card.md, as registered (issue 13).
                "model_card": _read_text_uri(
                    (package.get("CustomerMetadataProperties") or {}).get(
                        METADATA_KEYS["model_card"]
                    )
                ),
            }
        )
    return versions


def _read_text_uri(uri: str | None) -> str | None:
    if not uri:
        return None
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body.decode("utf-8")


def _read_json_uri(uri: str | None) -> dict | None:
    text = _read_text_uri(uri)
    return json.loads(text) if text is not None else None


def _batch_attributions(execution: Execution | None) -> dict | None:
    """ExplainBatch's attributions.json of an inference execution (None when it did not run)."""
    step = execution.steps.get(STEPS["explain_batch"]) if execution else None
    if step is None or step.status != "Succeeded":
        return None
    folder = step.outputs[OUTPUTS["batch_explanations"]].rstrip("/")
    return _read_json_uri(f"{folder}/attributions.json")


def _read_csv(uri: str) -> pd.DataFrame:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])]
    frames = [pd.read_csv(s3.get_object(Bucket=bucket, Key=k)["Body"]) for k in keys]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _data_quality(execution: Execution | None) -> tuple[list[dict], list[str], str | None]:
    """Violations an inference execution found, its notes (findings below a violation
    threshold, e.g. a few values that are not numbers) and where its batch's raw features are."""
    check = execution.steps.get(STEPS["data_quality_check"]) if execution else None
    if check is None or check.status != "Succeeded":
        return [], [], None
    bucket, _, key = (
        check.outputs[OUTPUTS["data_quality_results"]].removeprefix("s3://").partition("/")
    )
    s3 = boto3.client("s3")
    body = s3.get_object(Bucket=bucket, Key=f"{key}/constraint_violations.json")
    summary = json.loads(s3.get_object(Bucket=bucket, Key=f"{key}/summary.json")["Body"].read())
    features = execution.steps["PreprocessBatch"].outputs.get("features")
    return json.loads(body["Body"].read())["violations"], summary.get("notes", []), features


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else 'no message'}"


class _Problems(list):
    """What went wrong outside the pipelines; each part of the summary is gathered on its own,
    so one failure costs only that part and the report is still written."""

    def attempt(self, what: str, function: Callable, default=None):
        try:
            return function()
        except Exception as error:  # noqa: BLE001 - recorded in summary.json and the report
            self.append(f"{what}: {_one_line(error)}")
            return default


def _sandbox_json(execution: Execution, step_name: str, relative: str) -> dict | None:
    """A JSON file a step wrote under /opt/ml/processing/output (its job sandbox), or None."""
    step = execution.steps.get(step_name)
    path = step.workdir / "processing" / "output" / relative if step and step.workdir else None
    return json.loads(path.read_text()) if path and path.is_file() else None


def batch_fields(execution: Execution, config: ProjectConfig) -> dict:
    """For inference executions: `batch` (the S3 URI of the batch it read; for labels that
    arrived later, the labels file's), `batch_id`, `mode` (score or evaluate),
    `records_scored` (rows scored, from PreprocessBatch's batch_report.json) and
    `labels_matched` (labels joined with stored predictions, from EvaluateLateLabels'
    statistics.json). None for other pipelines and for what a run did not do."""
    fields = dict.fromkeys(["batch", "batch_id", "mode", "records_scored", "labels_matched"])
    if execution.pipeline_name != config.env.pipeline_inf:
        return fields
    parameters = execution.parameters
    mode = parameters.get(PARAMETERS["mode"], MODES["score"])
    fields.update(mode=mode, batch_id=parameters.get(PARAMETERS["batch_id"]))
    if mode == MODES["evaluate"]:
        statistics = f"{OUTPUTS['model_quality_results']}/statistics.json"
        stats = _sandbox_json(execution, STEPS["labels_quality_check"], statistics)
        fields["batch"] = parameters.get(PARAMETERS["labels_data_url"])
        fields["labels_matched"] = stats["labels"]["matched"] if stats else None
        return fields
    report = _sandbox_json(execution, "PreprocessBatch", "report/batch_report.json")
    fields["batch"] = parameters.get(PARAMETERS["inference_data_url"])
    fields["records_scored"] = report["record_count"] if report else None
    return fields


def training_fields(execution: Execution, config: ProjectConfig) -> dict:
    """For training executions (issue 10 point 4): `labelled_batches` (the S3 URIs of the
    batches whose labels it learned from, at the versions its manifest records) and
    `training_records` (training-data rows plus the labelled rows not held out), from
    JoinLabelledBatches' report. None for other pipelines and when the step did not run."""
    fields = dict.fromkeys(["labelled_batches", "training_records"])
    if execution.pipeline_name not in (config.env.pipeline_train, config.env.pipeline_trainwhpo):
        return fields
    report = _sandbox_json(execution, "JoinLabelledBatches", "report/labelled_batches.json")
    if report:
        fields["labelled_batches"] = [batch["batch_uri"] for batch in report["batches"]]
        fields["training_records"] = report["training_records"]
    return fields


def demo_batches(loop: Loop, options: Options) -> None:
    """The batch part of the demo, each upload followed by the executions it started."""
    env = loop.config.env
    if options.batch_data:
        uploads = [(path, env.inference_data_uri) for path in options.batch_data]
    else:
        uploads = [
            (CLEAN_BATCH, env.inference_data_uri),
            (LATE_BATCH, env.inference_data_uri),
            # labels for batch <id>: <bucket_prefix>/labels/<id>.labels.csv (batch_dispatcher)
            (LATE_LABELS, f"{env.s3_base_uri}/labels/"),
        ]
    for path, prefix_uri in uploads:
        loop.upload(path, prefix_uri)
        loop.drain()


def _checked_config(options: Options) -> ProjectConfig:
    config = load_config(options.env_file, settings_file=options.settings_file)
    env = config.env
    names = (env.pipeline_train, env.pipeline_trainwhpo, env.pipeline_inf)
    if options.only_pipeline and options.only_pipeline not in names:
        raise ConfigError(
            f"--pipeline: expected one of {', '.join(names)} (from {options.env_file}), "
            f"got {options.only_pipeline!r}"
        )
    return config


def _fresh_out_dir(options: Options) -> None:
    """--out-dir, emptied unless --keep-state (resolved: jobs run with other working dirs)."""
    options.out_dir = options.out_dir.resolve()
    if options.out_dir.exists() and not options.keep_state:
        shutil.rmtree(options.out_dir)
    options.out_dir.mkdir(parents=True, exist_ok=True)


def create_project_bucket(env) -> None:
    """The environment's versioned data bucket, in the embedded API (in AWS a prerequisite)."""
    s3 = boto3.client("s3")
    s3.create_bucket(
        Bucket=env.bucket_name, CreateBucketConfiguration={"LocationConstraint": env.region}
    )
    s3.put_bucket_versioning(Bucket=env.bucket_name, VersioningConfiguration={"Status": "Enabled"})


def _deploy(config: ProjectConfig, options: Options, out: Callable[[str], None]) -> str:
    """What Terraform and the upsert create, in the embedded API: the versioned bucket, the
    notification topic (with a mailbox queue, returned) and the three pipelines."""
    env = config.env
    create_project_bucket(env)
    topic_arn, mailbox = _inbox(config)
    os.environ.update(notifier_environment(config, topic_arn))
    pipeline_cli(
        "upsert",
        options.env_file,
        options.out_dir / "pipelines",
        out=out,
        settings_file=options.settings_file,
    )
    return mailbox


def _run_demo(
    config: ProjectConfig, options: Options, problems: _Problems, out: Callable[[str], None]
) -> tuple[Loop | None, str | None]:
    """Deploys, trains on the uploaded data, approves the version and runs the batches. A
    failure stops the demo, is recorded in `problems`, and what exists so far is returned."""
    env, loop, mailbox = config.env, None, None
    try:
        mailbox = _deploy(config, options, out)
        loop = Loop(config, options, out)
        loop.upload(options.train_data, env.train_data_uri)
        loop.drain()
        if any(e.pipeline_name == env.pipeline_train and e.status == "Succeeded"
               for e, _ in loop.executions):  # fmt: skip
            loop.approve_newest()
            demo_batches(loop, options)
    except Exception as error:  # noqa: BLE001 - recorded; the report is still written
        problems.append(f"the loop stopped: {_one_line(error)}")
        out(f"error: {problems[-1]}")
    return loop, mailbox


class _Results(NamedTuple):
    versions: list
    violations: list
    notes: list
    attributions: dict | None
    baseline: pd.DataFrame | None  # the training baseline's features, for the drift charts
    batch: pd.DataFrame | None  # the last scored batch's features


def _results(config: ProjectConfig, loop: Loop | None, problems: _Problems) -> _Results:
    """What the summary reports from the embedded API, each part gathered on its own."""
    env = config.env
    executions = loop.executions if loop else []

    def last(pipeline: str) -> Execution | None:
        runs = [e for e, _ in executions if e.pipeline_name == pipeline]
        return runs[-1] if runs else None

    def last_scoring() -> Execution | None:
        """The last inference execution that scored (label evaluations check no data)."""
        score, mode = MODES["score"], PARAMETERS["mode"]
        runs = [e for e, _ in executions if e.pipeline_name == env.pipeline_inf and
                e.parameters.get(mode, score) == score]  # fmt: skip
        return runs[-1] if runs else None

    versions = problems.attempt("model versions", lambda: model_versions(config), [])
    violations, notes, features_uri = problems.attempt(
        "data-quality results", lambda: _data_quality(last_scoring()), ([], [], None)
    )
    attributions = problems.attempt(
        "batch explanations", lambda: _batch_attributions(last_scoring())
    )
    training = last(env.pipeline_train)
    baseline_uri = training.steps["Preprocess"].outputs.get("baseline") if training else None
    baseline = batch = None
    if baseline_uri and features_uri:
        baseline = problems.attempt("baseline features", lambda: _read_csv(baseline_uri))
        batch = problems.attempt("batch features", lambda: _read_csv(features_uri))
    return _Results(versions, violations, notes, attributions, baseline, batch)


def run_loop(options: Options, out: Callable[[str], None] = print) -> dict:
    """Runs the loop and always writes summary.json and report.html once the configuration
    is valid: an unexpected failure is recorded as the summary's "error" (one line per problem)."""
    config = _checked_config(options)
    env = config.env
    _fresh_out_dir(options)
    started = time.monotonic()
    problems = _Problems()
    with embedded_aws(env.region) as endpoint:
        out(f"embedded AWS API at {endpoint}; state and report in {options.out_dir}")
        loop, mailbox = _run_demo(config, options, problems, out)
        versions, violations, notes, attributions, baseline, batch = _results(
            config, loop, problems
        )
        notifications = problems.attempt("mailbox", lambda: _mail(mailbox), []) if mailbox else []

    executions = loop.executions if loop else []
    summary = {
        "duration_seconds": round(time.monotonic() - started, 1),
        "environment": env.environment,
        "executions": [
            {
                "pipeline": e.pipeline_name,
                "execution_arn": e.execution_arn,
                "trigger": reason,
                "status": e.status,
                **batch_fields(e, config),
                **training_fields(e, config),
                "failure_reason": e.failure_reason,
                "duration_seconds": e.duration_seconds,
                "steps": [
                    {
                        "name": s.name,
                        "type": s.type,
                        "status": s.status,
                        "failure_reason": s.failure_reason,
                        "duration_seconds": s.duration_seconds,
                        "metrics": s.metrics,
                    }
                    for s in e.steps.values()
                ],
            }
            for e, reason in executions
        ],
        "model_versions": versions,
        "data_quality_violations": violations,
        "data_quality_notes": notes,
        "batch_attributions": attributions,
        "notifications": notifications,
        "event_deliveries": [d.__dict__ for d in loop.router.deliveries] if loop else [],
        "unrouted_uploads": loop.unrouted if loop else [],
    }
    if problems:
        summary["error"] = "; ".join(problems)
    summary_path, report_path = write_report(summary, options.out_dir, baseline, batch)
    out(f"summary: {summary_path}")
    out(f"report:  {report_path}")
    return summary
