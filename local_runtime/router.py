"""The event router: the deployed EventBridge rules, applied to the local runtime's events.

Rules come from events/*.json through pipeline_scripts.event_rules, the same files Terraform
renders into EventBridge, and match with moto's EventBridge pattern matcher. Targets are
delivered as EventBridge would: the notifier Lambda's handler is called in-process with the
rule's input transformer output (it publishes to the embedded SNS), and pipeline starts are
queued, because EventBridge starts them asynchronously, after the event that caused them.
The batch dispatcher Lambda (dispatch_batch) is called in-process too: it calls
StartPipelineExecution on the embedded API (which honours its ClientRequestToken, see
idempotency.py), and an execution ARN not seen before is queued to run with its parameters.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from local_runtime import lambdas
from local_runtime.events import event_time
from local_runtime.expressions import as_text
from pipeline_scripts.config import REPO_ROOT, ProjectConfig
from pipeline_scripts.contract import LAMBDA_SUFFIXES, PARAMETERS
from pipeline_scripts.environment import environment
from pipeline_scripts.event_rules import Rule, load_rules
from pipeline_scripts.module_files import load_module

NOTIFIER_FILE = REPO_ROOT / "code" / "notifier" / "notifier.py"


def _load_notifier():
    return load_module(NOTIFIER_FILE, "local_notifier").handler


@dataclass(frozen=True)
class Delivery:
    """One event delivered to one rule's target, for the report."""

    rule: str
    target: str
    event_type: str
    outcome: str


class Start(NamedTuple):
    """A pipeline execution a target asked for; execution_arn when already registered."""

    pipeline: str
    reason: str
    parameters: dict | None = None
    execution_arn: str | None = None
    display_name: str | None = None


@dataclass
class EventRouter:
    config: ProjectConfig
    rules: dict[str, Rule] = field(default_factory=dict)
    pending_starts: deque = field(default_factory=deque)  # of Start
    deliveries: list[Delivery] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.rules = self.rules or load_rules(self.config)
        self._notifier = _load_notifier()
        self._lock = threading.Lock()  # runner threads emit events concurrently
        env = self.config.env
        self._pipelines = {
            "start_training": env.pipeline_train,
            "start_training_hpo": env.pipeline_trainwhpo,
            "start_inference": env.pipeline_inf,
        }
        self._dispatched: set[str] = set()  # execution ARNs the dispatcher started

    def __call__(self, event: dict) -> None:
        with self._lock:
            self.events.append(event)
            for rule in self.rules.values():
                if rule.matches(event):
                    self._deliver(rule, event)

    def _deliver(self, rule: Rule, event: dict) -> None:
        if rule.target == "notifier":
            try:
                result = self._notifier(rule.target_input(event), None)
                outcome = f"published: {result['subject']}" if result["published"] else "not sent"
            except Exception as error:  # noqa: BLE001 - recorded; the loop goes on
                # In AWS EventBridge invokes the notifier asynchronously: Lambda retries a failed
                # invocation twice, then sends the event to the dead-letter queue (lambda.tf)
                # (docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html,
                # "How Lambda handles errors and retries with asynchronous invocation").
                # Locally the outcome is recorded in summary.json's event_deliveries instead.
                reason = (str(error).strip().splitlines() or [""])[0]
                outcome = f"failed: {type(error).__name__}: {reason}"
        elif rule.target == "dispatch_batch":
            outcome = self._dispatch(rule, event)
        elif rule.target == "retrain_gate":
            outcome = self._retrain_gate(rule, event)
        else:
            pipeline = self._pipelines[rule.target]
            self.pending_starts.append(Start(pipeline, f"EventBridge rule {rule.name}"))
            outcome = f"start {pipeline}"
        self.deliveries.append(Delivery(rule.name, rule.target, event["detail-type"], outcome))

    def _dispatch(self, rule: Rule, event: dict) -> str:
        """Runs the dispatcher's real handler; a new execution ARN is queued, a known one is
        the same batch version delivered again (SageMaker returned the first execution)."""
        arn = function_arn(self.config, LAMBDA_SUFFIXES["batch_dispatcher"])
        with environment(**dispatcher_environment(self.config)):
            try:
                result = lambdas.invoke(arn, rule.target_input(event))
            except Exception as error:  # Lambda reports it; EventBridge retries, then its DLQ
                return f"dispatcher failed: {type(error).__name__}: {error}"
        execution = result["PipelineExecutionArn"]
        if execution in self._dispatched:
            return f"duplicate of {execution}: no new execution"
        self._dispatched.add(execution)
        parameters = {p["Name"]: p["Value"] for p in result["PipelineParameters"]}
        reason = f"EventBridge rule {rule.name}"
        display = result["PipelineExecutionDisplayName"]
        self.pending_starts.append(
            Start(self.config.env.pipeline_inf, reason, parameters, execution, display)
        )
        return f"started {execution}"

    def _retrain_gate(self, rule: Rule, event: dict) -> str:
        """Runs the retrain gate's real handler: it starts the HPO pipeline (queued here) or
        reports why not (published to the topic: the mailbox shows it)."""
        arn = function_arn(self.config, LAMBDA_SUFFIXES["retrain_gate"])
        with environment(**retrain_gate_environment(self.config)):
            try:
                result = lambdas.invoke(arn, rule.target_input(event))
            except Exception as error:
                return f"retrain gate failed: {type(error).__name__}: {error}"
        if not result["started"]:
            return f"suppressed: {result['reason']}"
        execution = result["PipelineExecutionArn"]
        pipeline = self.config.env.pipeline_trainwhpo
        self.pending_starts.append(
            Start(pipeline, f"EventBridge rule {rule.name}", None, execution)
        )
        return f"started {execution}"

    def next_start(self) -> Start | None:
        with self._lock:
            return self.pending_starts.popleft() if self.pending_starts else None


def notifier_environment(config: ProjectConfig, topic_arn: str) -> dict[str, str]:
    """The notifier Lambda's environment, exactly the variables lambda.tf sets (tests compare
    the two), so the local notifier sends what the deployed one would."""
    env = config.env
    return {
        "SNS_TOPIC_ARN": topic_arn,
        "INFERENCE_PIPELINE": env.pipeline_inf,
        "ARTIFACTS_URI": env.artifacts_uri,
        "CUSTOM_NOTIFICATION_CONFIG": json.dumps(
            [
                {
                    "step_name": c.step_name,
                    "step_status": c.step_status,
                    "step_custom_message": c.step_custom_message,
                }
                for c in env.custom_notification_config
            ]
        ),
        "NOTIFY_STATUSES": json.dumps(
            {
                "execution": list(env.notify_execution_statuses),
                "step": list(env.notify_step_statuses),
            }
        ),
    }


def function_arn(config: ProjectConfig, function: str) -> str:
    """A function of dispatcher.tf, named <model_package_group_name>-<function>."""
    env = config.env
    name = f"{env.model_package_group_name}-{function}"
    return f"arn:{env.partition}:lambda:{env.region}:{env.account_id}:function:{name}"


def retrain_gate_environment(config: ProjectConfig) -> dict[str, str]:
    """The retrain gate's environment, as dispatcher.tf sets it (the topic: the notifier's)."""
    return {
        "PIPELINE_NAME": config.env.pipeline_trainwhpo,
        "COOLDOWN_MINUTES": str(config.settings.model_quality.retrain_cooldown_minutes),
        "SNS_TOPIC_ARN": os.environ.get("SNS_TOPIC_ARN", ""),
    }


def dispatcher_environment(config: ProjectConfig) -> dict[str, str]:
    """The dispatcher Lambda's environment, as dispatcher.tf sets it."""
    env = config.env
    return {
        "PIPELINE_NAME": env.pipeline_inf,
        "INFERENCE_PREFIX": f"{env.bucket_prefix}/{env.bucket_inf_prefix}/",
        "LABELS_PREFIX": f"{env.bucket_prefix}/labels/",
        "PIPELINE_PARAMETERS": json.dumps(
            {
                PARAMETERS["mse_threshold"]: as_text(float(env.accuracy_mse_threshold)),
                PARAMETERS["fail_on_data_quality_violation"]: as_text(
                    bool(env.fail_on_data_quality_violation)
                ),
            }
        ),
    }


def s3_object_created(bucket: str, key: str, head: dict, region: str, account: str) -> dict:
    """S3's EventBridge "Object Created" event for an upload (moto does not emit it)."""
    detail = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": {
            "key": key,
            "size": head["ContentLength"],
            "etag": head["ETag"].strip('"'),
            "sequencer": "0" * 18,
        },
        "request-id": "local",
        "requester": account,
        "reason": "PutObject",
    }
    if head.get("VersionId") not in (None, "null"):
        detail["object"]["version-id"] = head["VersionId"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": event_time(datetime.now(UTC)),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }
