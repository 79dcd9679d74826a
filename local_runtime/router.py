"""The event router: the deployed EventBridge rules, applied to the local runtime's events.

Rules come from events/*.json through pipeline_scripts.event_rules, the same files Terraform
renders into EventBridge, and match with moto's EventBridge pattern matcher. Targets are
delivered as EventBridge would: the notifier Lambda's handler is called in-process with the
rule's input transformer output (it publishes to the embedded SNS), and pipeline starts are
queued, because EventBridge starts them asynchronously, after the event that caused them.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from local_runtime.events import event_time
from pipeline_scripts.config import REPO_ROOT, ProjectConfig
from pipeline_scripts.event_rules import Rule, load_rules

NOTIFIER_FILE = REPO_ROOT / "code" / "lambda_function" / "notifier.py"


def _load_notifier():
    spec = importlib.util.spec_from_file_location("local_notifier", NOTIFIER_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


@dataclass(frozen=True)
class Delivery:
    """One event delivered to one rule's target, for the report."""

    rule: str
    target: str
    event_type: str
    outcome: str


@dataclass
class EventRouter:
    config: ProjectConfig
    rules: dict[str, Rule] = field(default_factory=dict)
    pending_starts: deque = field(default_factory=deque)  # (pipeline name, reason)
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
        else:
            pipeline = self._pipelines[rule.target]
            self.pending_starts.append((pipeline, f"EventBridge rule {rule.name}"))
            outcome = f"start {pipeline}"
        self.deliveries.append(Delivery(rule.name, rule.target, event["detail-type"], outcome))

    def next_start(self) -> tuple[str, str] | None:
        with self._lock:
            return self.pending_starts.popleft() if self.pending_starts else None


def notifier_environment(config: ProjectConfig, topic_arn: str) -> dict[str, str]:
    """The notifier Lambda's environment, exactly the variables lambda.tf sets (tests compare
    the two), so the local notifier sends what the deployed one would."""
    env = config.env
    return {
        "SNS_TOPIC_ARN": topic_arn,
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
