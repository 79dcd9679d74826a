"""The notifier Lambda against moto SNS, read back from an SQS queue subscribed to the topic.

Events are the real EventBridge shapes in tests/events/ (sources in tests/events/README.md),
sent both raw and as the rules' input transformer delivers them (the same keys plus "rule").
"""

import dataclasses
import json
import logging
import os
import random
import re
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from pipeline_scripts.config import env_file_path, load_env_config
from pipeline_scripts.module_files import load_module

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS = REPO_ROOT / "tests" / "events"
REGION = "eu-west-1"
CONSOLE = f"https://{REGION}.console.aws.amazon.com/sagemaker/home?region={REGION}#/"
TRANSFORMED_KEYS = ("detail-type", "source", "time", "region", "account", "detail")


def _load_notifier():
    """Import code/notifier/notifier.py the way Lambda does: a lone file."""
    path = REPO_ROOT / "code" / "notifier" / "notifier.py"
    return load_module(path, "notifier")


# Loaded before any AWS environment exists: the SNS client must be created on first use.
notifier = _load_notifier()


def fixture(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def transformed(raw: dict, rule: str = "pipeline-status-to-notifier") -> dict:
    """What the rules' input transformer hands the Lambda."""
    return {"rule": rule, **{key: raw[key] for key in TRANSFORMED_KEYS}}


def with_detail(name: str, **changes) -> dict:
    event = fixture(name)
    event["detail"].update(changes)
    return event


def fields(body: str) -> dict:
    """The "Label: value" lines of a message (alignment padding is presentation only)."""
    matches = (re.match(r"([A-Z][A-Za-z ()]*?):\s+(\S.*)", line) for line in body.splitlines())
    return {m.group(1): m.group(2) for m in matches if m}


def custom_config(*entries: tuple[str, str, str]) -> str:
    keys = ("step_name", "step_status", "step_custom_message")
    return json.dumps([dict(zip(keys, entry, strict=True)) for entry in entries])


class Inbox:
    """The SQS queue subscribed to the topic: what an e-mail subscriber would receive."""

    def __init__(self, sqs, url: str, topic_arn: str):
        self.sqs, self.url, self.topic_arn = sqs, url, topic_arn

    def messages(self) -> list[dict]:
        received = []
        while batch := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                envelope = json.loads(message["Body"])  # SNS -> SQS delivery envelope
                received.append({"subject": envelope.get("Subject"), "body": envelope["Message"]})
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return received

    def only(self) -> dict:
        messages = self.messages()
        assert len(messages) == 1, messages
        return messages[0]


# One session for the tests' own clients: mock_aws resets boto3's default session, and
# reloading the service models for every test would dominate the run time.
SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")


def _subscribe(region: str, topic_name: str = "pipeline-notifications") -> Inbox:
    sns = SESSION.client("sns", region_name=region)
    sqs = SESSION.client("sqs", region_name=region)
    topic_arn = sns.create_topic(Name=topic_name)["TopicArn"]
    url = sqs.create_queue(QueueName=f"{topic_name}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    return Inbox(sqs, url, topic_arn)


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SNS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("CUSTOM_NOTIFICATION_CONFIG", "NOTIFY_STATUSES", "SNS_TOPIC_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    notifier.load_config.cache_clear()  # each test is a cold start
    with mock_aws():
        yield


@pytest.fixture
def inbox(aws, monkeypatch) -> Inbox:
    box = _subscribe(REGION)
    monkeypatch.setenv("SNS_TOPIC_ARN", box.topic_arn)
    return box


# --------------------------------------------------------------------------- real events


def test_execution_succeeded_reads_well(inbox):
    result = notifier.handler(fixture("pipeline_execution_succeeded"), None)

    mail = inbox.only()
    assert result["published"] is True
    assert mail["subject"] == result["subject"]
    assert (
        mail["subject"]
        == "Succeeded: pipeline training-pipeline-dev, execution execution-1748854800123"
    )
    body = mail["body"]
    assert body.startswith(
        "SageMaker pipeline training-pipeline-dev: execution execution-1748854800123"
    )
    assert fields(body) == {
        "Pipeline": "training-pipeline-dev",
        "Execution": "execution-1748854800123 (id 7k2m9xq4ab1c)",
        "Status": "Succeeded (was Executing)",
        "Description": "Started by rule start-training-on-new-data",
        "Started": "2025-06-02T09:00:00Z",
        "Ended": "2025-06-02T09:41:05Z",
        "Duration": "41 min 05 s",
        "Execution ARN": (
            "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/training-pipeline-dev/execution/"
            "7k2m9xq4ab1c"
        ),
        "Event time": "2025-06-02T09:41:07Z",
        "Region": "eu-west-1",
        "Account": "123456789012",
    }
    assert f"{CONSOLE}pipelines/training-pipeline-dev/executions/7k2m9xq4ab1c" in body.splitlines()


def test_execution_failed_via_input_transformer(inbox):
    result = notifier.handler(transformed(fixture("pipeline_execution_failed")), None)

    mail = inbox.only()
    assert result["published"] is True
    assert result["reason"] == "execution status Failed notified"
    assert (
        mail["subject"]
        == "Failed: pipeline batch-inference-pipeline-dev, execution execution-1748914200456"
    )
    assert "The failed step's own notification carries the failure reason." in mail["body"]
    assert fields(mail["body"])["EventBridge rule"] == "pipeline-status-to-notifier"
    assert fields(mail["body"])["Duration"] == "17 min 42 s"


def test_step_failure_reason_is_prominent(inbox):
    event = fixture("pipeline_step_failed_model_quality")
    reason = event["detail"]["failureReason"]

    notifier.handler(event, None)

    mail = inbox.only()
    assert mail["subject"].startswith(
        "Failed: ModelQualityCheck in batch-inference-pipeline-dev: "
        "MSE 13.06 exceeds threshold 6.00"
    )
    lines = mail["body"].splitlines()
    # Headline, then the reason in full, before the table of details.
    assert lines[:4] == [
        "SageMaker pipeline batch-inference-pipeline-dev: step ModelQualityCheck Failed.",
        "",
        "FAILURE REASON",
        f"  {reason}",
    ]
    assert (
        "data quality: 2 violations (baseline_drift_check: shell_weight, whole_weight)" in lines[3]
    )
    details = fields(mail["body"])
    assert lines.index("FAILURE REASON") < lines.index(
        next(x for x in lines if x.startswith("Pipeline:"))
    )
    assert details["Step"] == "ModelQualityCheck (Processing)"
    assert details["Status"] == "Failed (was Executing)"
    assert details["Duration"] == "5 min 08 s"
    assert details["Processing job ARN"] == (
        "arn:aws:sagemaker:eu-west-1:123456789012:processing-job/"
        "pipelines-q8w3e5r7t9y1-modelqualitycheck-x7Yz2AbC9d"
    )
    assert lines[
        lines.index(f"{CONSOLE}pipelines/batch-inference-pipeline-dev/executions/q8w3e5r7t9y1")
        + 1 :
    ][:2] == [
        "Open the processing job (logs, metrics):",
        f"{CONSOLE}processing-jobs/pipelines-q8w3e5r7t9y1-modelqualitycheck-x7Yz2AbC9d",
    ]


def test_null_optional_fields_are_treated_as_absent(inbox):
    """DescribeModelPackage-shaped details may carry nulls (as moto returns them)."""
    event = fixture("registry_package_approved")
    event["detail"]["MetadataProperties"] = None
    notifier.handler(transformed(event, "model-approved"), None)

    assert inbox.only()["subject"] == "Approved: model abalone-rings-dev version 3"


def test_model_package_approved(inbox):
    notifier.handler(transformed(fixture("registry_package_approved"), "model-approved"), None)

    mail = inbox.only()
    assert mail["subject"] == "Approved: model abalone-rings-dev version 3"
    lines = mail["body"].splitlines()
    assert lines[0] == (
        "Model registry: abalone-rings-dev version 3 is Approved. Batch inference uses the newest "
        "Approved version of the group from its next run."
    )
    details = fields(mail["body"])
    assert details["Model group"] == "abalone-rings-dev"
    assert details["Version"] == "3"
    assert details["Approval status"] == "Approved"
    assert details["Approval note"] == (
        "Validation MSE 4.12 below threshold 6.00; reviewed by the data science team"
    )
    assert details["Model package ARN"] == (
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/abalone-rings-dev/3"
    )
    assert details["EventBridge rule"] == "model-approved"
    assert f"{CONSOLE}model-registry/abalone-rings-dev" in lines
    # The execution that registered it, from MetadataProperties.GeneratedBy.
    assert f"{CONSOLE}pipelines/training-pipeline-dev/executions/7k2m9xq4ab1c" in lines


def test_s3_object_created(inbox):
    # The documented S3 "Object Created" shape (tests/events/README.md), on the training prefix.
    key = "pipeline_shared/batch-scoring/training/data/raw/abalone train.csv"
    event = {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2025-06-02T08:59:58Z",
        "region": REGION,
        "resources": ["arn:aws:s3:::mlops-batch-inference-dev-123456789012"],
        "detail": {
            "version": "0",
            "bucket": {"name": "mlops-batch-inference-dev-123456789012"},
            "object": {
                "key": key,
                "size": 191873,
                "etag": "b1946ac92492d2347c6235b4d2611184",
                "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                "sequencer": "617f08299329d189",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }

    notifier.handler(transformed(event, "start-training-on-new-data"), None)

    mail = inbox.only()
    assert mail["subject"].startswith(
        "New data: abalone train.csv in s3://mlops-batch-inference-dev-123456789012/pipeline_shared/"
    )
    details = fields(mail["body"])
    assert details["Size (bytes)"] == "191873"
    assert details["Version"] == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert details["Reason"] == "PutObject"
    assert details["EventBridge rule"] == "start-training-on-new-data"
    assert (
        "https://s3.console.aws.amazon.com/s3/object/mlops-batch-inference-dev-123456789012?region=eu-west-1&prefix="
        "pipeline_shared/batch-scoring/training/data/raw/abalone%20train.csv"
        in mail["body"].splitlines()
    )


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda p: p.name)
def test_every_fixture_gets_its_own_format(path):
    """Every documented event shape in tests/events/ (including other tests' fixtures)."""
    event = json.loads(path.read_text(encoding="utf-8"))
    notify_all = json.dumps(notifier.KNOWN_STATUSES)
    config = notifier.load_config(None, notify_all)
    if event.get("detail-type") not in notifier.FORMATTERS:
        pytest.skip(
            f"{path.name} is a {event.get('detail-type')!r} event, not sent to the notifier"
        )

    raw = notifier.build_notification(event, config)
    via_rule = notifier.build_notification(transformed(event), config)

    assert raw.publish and not raw.reason.startswith("generic")
    assert raw.subject == via_rule.subject
    assert fields(via_rule.body) == {
        **fields(raw.body),
        "EventBridge rule": "pipeline-status-to-notifier",
    }


@pytest.mark.parametrize(
    "name",
    [
        "pipeline_execution_succeeded",
        "pipeline_execution_failed",
        "pipeline_step_failed_model_quality",
        "pipeline_step_succeeded_register_model",
        "registry_package_approved",
    ],
)
def test_the_deployed_rules_deliver_what_the_notifier_reads(inbox, monkeypatch, name):
    """Each fixture through the events/*.json rule that targets the notifier (dev config)."""
    # Imported here so a change in the rules module fails this test, not the whole file.
    from pipeline_scripts.config import load_config
    from pipeline_scripts.event_rules import load_rules

    monkeypatch.setenv("NOTIFY_STATUSES", json.dumps(notifier.KNOWN_STATUSES))
    event = fixture(name)
    rules = load_rules(load_config(env_file_path("dev")))
    matching = [r for r in rules.values() if r.target == "notifier" and r.matches(event)]
    assert len(matching) == 1, f"{name}: notifier rules matching it: {[r.name for r in matching]}"
    (rule,) = matching

    result = notifier.handler(rule.target_input(event), None)

    mail = inbox.only()
    assert not result["reason"].startswith("generic message"), result
    assert fields(mail["body"])["EventBridge rule"] == rule.name
    assert mail["subject"] == notifier.handler(event, None)["subject"]


# --------------------------------------------------------------------------- custom messages


def test_configured_custom_message_heads_the_mail(inbox, monkeypatch):
    """The dev environment's custom_notification_config, serialised as Terraform's jsonencode."""
    configured = load_env_config(env_file_path("dev")).custom_notification_config
    (entry,) = [
        c for c in configured if (c.step_name, c.step_status) == ("RegisterModel", "Succeeded")
    ]
    monkeypatch.setenv(
        "CUSTOM_NOTIFICATION_CONFIG", json.dumps([dataclasses.asdict(c) for c in configured])
    )

    # Step Succeeded is not a notifying status by default: the custom message makes it one.
    result = notifier.handler(transformed(fixture("pipeline_step_succeeded_register_model")), None)

    mail = inbox.only()
    assert (
        result["reason"] == "step RegisterModel status Succeeded notified with 1 custom message(s)"
    )
    assert mail["subject"] == "Succeeded: RegisterModel in training-pipeline-dev"
    lines = mail["body"].splitlines()
    assert lines[:3] == [
        entry.step_custom_message,
        "",
        "SageMaker pipeline training-pipeline-dev: step RegisterModel Succeeded.",
    ]
    assert fields(mail["body"])["Register model ARN"] == (
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/abalone-rings-dev/3"
    )


def test_custom_message_added_to_a_failure(inbox, monkeypatch):
    message = "Model quality dropped: the training-with-HPO pipeline has been started to retrain."
    monkeypatch.setenv(
        "CUSTOM_NOTIFICATION_CONFIG", custom_config(("ModelQualityCheck", "Failed", message))
    )

    notifier.handler(fixture("pipeline_step_failed_model_quality"), None)

    lines = inbox.only()["body"].splitlines()
    assert lines[0] == message
    assert lines[4] == "FAILURE REASON"


@pytest.mark.parametrize(
    ("step", "status"),
    [
        ("RegisterModel", "Failed"),  # same step, other status
        ("ModelQualityCheck", "Succeeded"),  # same status, other step
        ("registermodel", "Succeeded"),  # step names are exact
    ],
)
def test_custom_message_only_for_its_step_and_status(inbox, monkeypatch, step, status):
    message = "A new model version is waiting for approval."
    monkeypatch.setenv(
        "CUSTOM_NOTIFICATION_CONFIG", custom_config(("RegisterModel", "Succeeded", message))
    )
    monkeypatch.setenv("NOTIFY_STATUSES", json.dumps({"step": ["Failed", "Succeeded"]}))
    event = with_detail(
        "pipeline_step_succeeded_register_model", stepName=step, currentStepStatus=status
    )

    result = notifier.handler(event, None)

    assert result["published"] is True
    assert message not in inbox.only()["body"]


def test_sample_key_step_msg_is_reported_not_silently_dropped(inbox, monkeypatch):
    # The public sample read "step_msg"; a config written for it must say why nothing is sent.
    monkeypatch.setenv(
        "CUSTOM_NOTIFICATION_CONFIG",
        json.dumps([{"step_name": "ModelQualityCheck", "step_status": "Failed", "step_msg": "x"}]),
    )

    notifier.handler(fixture("pipeline_step_failed_model_quality"), None)

    body = inbox.only()["body"]
    assert (
        "  - CUSTOM_NOTIFICATION_CONFIG[0]: step_custom_message must be non-empty strings "
        "(unknown keys: step_msg); ignored" in body.splitlines()
    )


# --------------------------------------------------------------------------- which statuses notify


@pytest.mark.parametrize(
    ("name", "changes", "notify"),
    [
        ("pipeline_execution_succeeded", {"currentPipelineExecutionStatus": "Executing"}, None),
        ("pipeline_step_succeeded_register_model", {}, None),
        ("pipeline_step_failed_model_quality", {"currentStepStatus": "Executing"}, None),
        ("pipeline_step_failed_model_quality", {"currentStepStatus": "Starting"}, None),
        ("pipeline_execution_succeeded", {}, {"execution": ["Failed"]}),
        ("pipeline_step_failed_model_quality", {}, {"step": []}),
        # Compared exactly as SageMaker spells them: "failed" never matches "Failed".
        ("pipeline_execution_failed", {}, {"execution": ["failed"]}),
    ],
)
def test_statuses_not_configured_publish_nothing(inbox, monkeypatch, caplog, name, changes, notify):
    if notify is not None:
        monkeypatch.setenv("NOTIFY_STATUSES", json.dumps(notify))
    caplog.set_level(logging.INFO, logger="notifier")

    result = notifier.handler(with_detail(name, **changes), None)

    assert result["published"] is False and result["subject"] is None
    assert "NOTIFY_STATUSES" in result["reason"]
    assert inbox.messages() == []
    logged = [json.loads(r.getMessage()) for r in caplog.records]
    assert {"message": "not notified", "reason": result["reason"]} in logged


def test_configured_statuses_notify(inbox, monkeypatch):
    monkeypatch.setenv(
        "NOTIFY_STATUSES", json.dumps({"execution": ["Executing"], "step": ["Succeeded"]})
    )
    started = with_detail(
        "pipeline_execution_succeeded", currentPipelineExecutionStatus="Executing"
    )

    assert notifier.handler(started, None)["published"] is True
    assert notifier.handler(fixture("pipeline_step_succeeded_register_model"), None)["published"]
    assert not notifier.handler(fixture("pipeline_execution_failed"), None)["published"]
    assert [m["subject"].split(":")[0] for m in inbox.messages()] == ["Executing", "Succeeded"]


# --------------------------------------------------------------------------- malformed events

STEP = notifier.STEP_EVENT
MALFORMED = {
    "none": (None, "expected a JSON object, got NoneType"),
    "list": ([1, 2], "expected a JSON object, got list"),
    "string": ("SageMaker pipeline failed", "expected a JSON object, got str"),
    "number": (42, "expected a JSON object, got int"),
    "empty object": ({}, "unknown detail-type None"),
    "unknown detail-type": (
        {"detail-type": "EC2 Instance State-change Notification", "detail": {"state": "running"}},
        "unknown detail-type 'EC2 Instance State-change Notification'",
    ),
    "detail-type not a string": ({"detail-type": ["x"], "detail": {}}, "unknown detail-type ['x']"),
    "no detail": ({"detail-type": STEP}, "detail must be an object, got NoneType"),
    "detail is a list": ({"detail-type": STEP, "detail": []}, "detail must be an object, got list"),
    "detail is not JSON": (
        {"detail-type": STEP, "detail": "{oops"},
        "detail is a string that is not JSON",
    ),
    "missing status": (
        {"detail-type": STEP, "detail": {"stepName": "ModelQualityCheck"}},
        "detail.currentStepStatus is missing",
    ),
    "step name wrong type": (
        {"detail-type": STEP, "detail": {"currentStepStatus": "Failed", "stepName": ["a"]}},
        "detail.stepName must be a string, got list",
    ),
    "bad execution ARN": (
        {
            "detail-type": STEP,
            "detail": {
                "currentStepStatus": "Failed",
                "stepName": "ModelQualityCheck",
                "pipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:1:pipeline/x",
            },
        },
        "detail.pipelineExecutionArn 'arn:aws:sagemaker:eu-west-1:1:pipeline/x' is not a "
        "pipeline execution ARN",
    ),
    "model package without group": (
        {
            "detail-type": notifier.MODEL_PACKAGE_EVENT,
            "detail": {"ModelApprovalStatus": "Approved"},
        },
        "detail.ModelPackageGroupName is missing",
    ),
    "s3 bucket not an object": (
        {"detail-type": "Object Created", "detail": {"bucket": "b", "object": {"key": "k"}}},
        "detail.bucket must be an object, got str",
    ),
    "rule wrong type": (
        {**transformed(fixture("pipeline_execution_failed")), "rule": {"name": "x"}},
        "rule must be a string, got dict",
    ),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_event_sends_generic_message(inbox, caplog, case):
    event, problem = MALFORMED[case]
    caplog.set_level(logging.INFO, logger="notifier")

    result = notifier.handler(event, None)

    mail = inbox.only()
    assert result["published"] is True
    assert result["reason"].startswith(f"generic message: {problem}")
    assert mail["subject"] == result["subject"]
    assert mail["subject"].startswith("Unrecognised event: ")
    assert mail["body"].startswith(f"The notifier could not format this event ({problem}")
    assert json.dumps(event, indent=2).splitlines()[0] in mail["body"]
    warning = [json.loads(r.getMessage()) for r in caplog.records if r.levelno == logging.WARNING]
    assert [(w["message"], w["problem"]) for w in warning] == [
        ("unformattable event", result["reason"].removeprefix("generic message: "))
    ]


def test_unserialisable_event_still_reported(inbox):
    event = {("tuple", "key"): object()}  # what json cannot encode at all

    result = notifier.handler(event, None)

    assert result["published"] is True
    assert "('tuple', 'key')" in inbox.only()["body"]


def test_absurdly_nested_event_still_reported(inbox):
    event = []
    for _ in range(100_000):  # deeper than json or repr can walk
        event = [event]

    result = notifier.handler(event, None)

    assert result["published"] is True
    assert "<list that cannot be printed>" in inbox.only()["body"]


def test_huge_event_is_truncated_under_the_sns_limit(inbox):
    event = {"detail-type": "Custom Blob", "detail": {"blob": "é" * 400_000}}  # 800 KB of UTF-8

    result = notifier.handler(event, None)

    body = inbox.only()["body"]
    assert result["published"] is True
    assert len(body.encode("utf-8")) <= notifier.MESSAGE_MAX_BYTES
    assert "... [truncated: showing about" in body
    assert '"detail-type": "Custom Blob"' in body


def test_huge_custom_message_is_cut_to_the_sns_limit(inbox, monkeypatch):
    message = "Ünïcødé runbook line. " * 15_000  # about 370 KB of UTF-8
    monkeypatch.setenv(
        "CUSTOM_NOTIFICATION_CONFIG", custom_config(("ModelQualityCheck", "Failed", message))
    )

    notifier.handler(fixture("pipeline_step_failed_model_quality"), None)

    body = inbox.only()["body"].encode("utf-8")
    assert len(body) <= notifier.MESSAGE_MAX_BYTES
    assert len(body) > notifier.MESSAGE_MAX_BYTES - 100  # cut, not dropped
    assert re.search(r"\n\.\.\. \[truncated: showing about 262144 of \d+ bytes\]$", body.decode())


# --------------------------------------------------------------------------- subject and links

NASTY = [
    "Model\nQuality\r\nCheck",
    "step\twith\x00control\x1bchars\x7f",
    "x" * 500,
    "line\u2028separator\u2029and\x85next-line",
    "ünïcødé 步骤 " * 20,
    "",
]


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_delivered_subject_is_one_short_line(inbox, text):
    event = with_detail(
        "pipeline_step_failed_model_quality", stepName=text or "S", failureReason=f"{text}\nmore"
    )

    notifier.handler(event, None)

    subject = inbox.only()["subject"]
    assert 0 < len(subject) <= 99
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", subject)


def test_subject_property_on_random_text():
    rng = random.Random(4)
    alphabet = "ab Z9:-\n\r\t\x00\x1f\x7f\x85\u2028é步"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        subject = notifier._subject(text)
        assert 0 < len(subject) <= notifier.SUBJECT_MAX_CHARS
        assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", subject), repr(subject)
        assert subject == subject.strip()


def test_links_use_names_and_ids_from_the_arns(inbox):
    event = with_detail(
        "pipeline_execution_succeeded",
        pipelineArn="arn:aws:sagemaker:us-east-2:123456789012:pipeline/other-pipeline",
        pipelineExecutionArn=(
            "arn:aws:sagemaker:us-east-2:123456789012:pipeline/other-pipeline/execution/abc123"
        ),
        pipelineExecutionDisplayName=None,
    )

    notifier.handler(event, None)

    mail = inbox.only()
    # The resource's region wins over the event's; no display name -> the execution id.
    assert mail["subject"] == "Succeeded: pipeline other-pipeline, execution abc123"
    assert (
        "https://us-east-2.console.aws.amazon.com/sagemaker/home?region=us-east-2"
        "#/pipelines/other-pipeline/executions/abc123" in mail["body"].splitlines()
    )


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("NOTIFY_STATUSES", "[Failed]", "NOTIFY_STATUSES is not valid JSON"),
        ("NOTIFY_STATUSES", '["Failed"]', "NOTIFY_STATUSES must be a JSON object"),
        ("NOTIFY_STATUSES", '{"step": "Failed"}', "NOTIFY_STATUSES.step must be a list of strings"),
        ("NOTIFY_STATUSES", '{"steps": ["Failed"]}', "NOTIFY_STATUSES.steps is not a known key"),
        ("CUSTOM_NOTIFICATION_CONFIG", "{not json", "CUSTOM_NOTIFICATION_CONFIG is not valid JSON"),
        (
            "CUSTOM_NOTIFICATION_CONFIG",
            '{"a": 1}',
            "CUSTOM_NOTIFICATION_CONFIG must be a JSON list",
        ),
        ("CUSTOM_NOTIFICATION_CONFIG", "[1]", "CUSTOM_NOTIFICATION_CONFIG[0] must be an object"),
        ("CUSTOM_NOTIFICATION_CONFIG", "[" * 3000, "CUSTOM_NOTIFICATION_CONFIG is not valid JSON"),
        (
            "CUSTOM_NOTIFICATION_CONFIG",
            custom_config(("RegisterModel", "succeeded", "m")),
            "CUSTOM_NOTIFICATION_CONFIG[0].step_status 'succeeded' is not a step status",
        ),
    ],
)
def test_malformed_config_falls_back_and_says_so(
    inbox, monkeypatch, caplog, variable, value, problem
):
    monkeypatch.setenv(variable, value)
    caplog.set_level(logging.INFO, logger="notifier")

    # Two invocations of one warm container: the problem is logged once, at cold start.
    first = notifier.handler(fixture("pipeline_step_failed_model_quality"), None)
    second = notifier.handler(fixture("pipeline_step_succeeded_register_model"), None)

    assert first["published"] is True  # defaults: step Failed notifies
    assert second["published"] is False  # defaults: step Succeeded does not
    config_section = inbox.only()["body"].split("Notifier configuration problems")[1]
    assert f"  - {problem}" in config_section
    errors = [json.loads(r.getMessage()) for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0]["problem"].startswith(problem)


def test_valid_custom_entries_survive_an_invalid_one(inbox, monkeypatch):
    good = "Check the data-quality report before re-running."
    monkeypatch.setenv(
        "CUSTOM_NOTIFICATION_CONFIG",
        json.dumps(
            [
                {"step_name": "ModelQualityCheck", "step_status": "Failed"},
                {
                    "step_name": "ModelQualityCheck",
                    "step_status": "Failed",
                    "step_custom_message": good,
                },
            ]
        ),
    )

    notifier.handler(fixture("pipeline_step_failed_model_quality"), None)

    body = inbox.only()["body"]
    assert body.startswith(good + "\n")
    assert (
        "  - CUSTOM_NOTIFICATION_CONFIG[0]: step_custom_message must be non-empty strings; ignored"
        in body
    )


def test_missing_topic_is_a_clear_error_after_formatting(aws, caplog):
    caplog.set_level(logging.INFO, logger="notifier")

    with pytest.raises(
        notifier.NotifierConfigError, match="SNS_TOPIC_ARN must be an SNS topic ARN"
    ):
        notifier.handler(fixture("pipeline_step_failed_model_quality"), None)

    logged = [json.loads(r.getMessage()) for r in caplog.records]
    assert logged[-1]["message"] == "publish failed"
    assert logged[-1]["subject"].startswith("Failed: ModelQualityCheck in")
    # Nothing to publish needs no topic.
    assert (
        notifier.handler(fixture("pipeline_step_succeeded_register_model"), None)["published"]
        is False
    )


def test_publish_error_is_raised_for_retries(aws, monkeypatch):
    monkeypatch.setenv("SNS_TOPIC_ARN", f"arn:aws:sns:{REGION}:123456789012:never-created")

    with pytest.raises(ClientError, match="NotFound"):
        notifier.handler(fixture("pipeline_execution_failed"), None)


def test_endpoint_url_is_read_when_the_client_is_built(monkeypatch):
    # No mock: the local runtime points AWS_ENDPOINT_URL at its moto server; here at a closed port.
    monkeypatch.setenv("SNS_TOPIC_ARN", f"arn:aws:sns:{REGION}:123456789012:notifications")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for name in ("AWS_ENDPOINT_URL_SNS", "AWS_PROFILE", "NOTIFY_STATUSES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)

    with pytest.raises(EndpointConnectionError, match="http://127.0.0.1:9"):
        notifier.handler(fixture("pipeline_execution_failed"), None)


def test_topic_region_comes_from_its_arn(aws, monkeypatch):
    # The Lambda runs in eu-west-1, the topic lives in us-east-2: publish where the topic is.
    box = _subscribe("us-east-2", "elsewhere")
    monkeypatch.setenv("SNS_TOPIC_ARN", box.topic_arn)

    notifier.handler(fixture("pipeline_execution_failed"), None)

    assert box.only()["subject"].startswith("Failed: pipeline batch-inference-pipeline-dev")


def test_log_lines_are_single_line_json(inbox, caplog):
    caplog.set_level(logging.INFO, logger="notifier")

    notifier.handler({"detail-type": "x\ny", "detail": {"multi": "line\nvalue"}}, None)
    notifier.handler(fixture("pipeline_step_failed_model_quality"), None)

    # unformattable + notified; then what the failure e-mail could not read in moto (the job's
    # exit message, the batch's explanations) + notified
    messages = [json.loads(r.getMessage())["message"] for r in caplog.records]
    assert messages.count("notified") == 2 and "unformattable event" in messages, messages
    for record in caplog.records:
        assert "\n" not in record.getMessage()
        assert isinstance(json.loads(record.getMessage()), dict)


# --------------------------------------------------------------------------- unreachable API


@pytest.fixture
def silent_endpoint():
    """A loopback port that accepts connections and never answers, like a VPC endpoint or NAT
    that drops the traffic."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_unreachable_sagemaker_costs_seconds_not_the_email(inbox, monkeypatch, silent_endpoint):
    """Issue 9, problem 6: the extra DescribeProcessingJob call of a failed step gives up after
    one short attempt, and the e-mail goes out with what the event said."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", silent_endpoint)
    notifier._sagemaker_client.cache_clear()
    event = fixture("pipeline_step_failed_model_quality")

    started = time.monotonic()
    result = notifier.handler(event, None)
    elapsed = time.monotonic() - started

    assert result["published"]
    # One attempt: 3 s read timeout (plus connect); boto3's defaults would take minutes.
    assert elapsed < 8, f"{elapsed:.1f} s"
    mail = inbox.only()
    assert event["detail"]["failureReason"] in mail["body"]
    client = notifier._sagemaker_client(REGION, notifier._endpoints("SAGEMAKER"))
    assert client.meta.config.connect_timeout <= 5 and client.meta.config.read_timeout <= 5
    assert client.meta.config.retries["total_max_attempts"] == 1
    # The publish itself keeps boto3's default retries.
    sns = notifier._sns_client(REGION, notifier._endpoints("SNS"))
    assert sns.meta.config.retries.get("total_max_attempts") != 1


def test_the_deployed_zip_imports_the_notifier_as_lambda_does(tmp_path):
    """The notifier is several modules: its zip (pipeline_scripts/lambda_package.py) holds
    them all, and `import notifier` from the unpacked zip, as Lambda's handler "notifier.handler"
    does, formats an event; every module stays under 600 lines."""
    from pipeline_scripts import lambda_package

    folder = REPO_ROOT / "code" / "notifier"
    archive = lambda_package.package(folder, tmp_path / "notifier.zip")
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
        zipped.extractall(tmp_path / "task")
    modules = {p.name for p in folder.glob("*.py")}
    assert modules <= names and len(modules) > 2, names
    for path in folder.glob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines < 600, f"{path.name}: {lines} lines"
    script = (
        "import json, sys, notifier; "
        "event = json.load(sys.stdin); "
        "print(notifier.build_notification(event, notifier.load_config(None, None)).subject)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path / "task",
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path / "task")},
        input=json.dumps(fixture("pipeline_step_failed_model_quality")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Failed: ModelQualityCheck"), done.stdout
