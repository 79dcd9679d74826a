"""One execution per batch, exactly once: the dispatcher Lambda, the embedded API's idempotency,
the router, the preprocess step's batch selection, and (e2e) the whole path."""

from __future__ import annotations

import copy
import hashlib
import json

import boto3
import pytest

from local_runtime.aws import embedded_aws
from local_runtime.router import EventRouter, dispatcher_environment, notifier_environment
from pipeline_scripts.config import load_config
from pipeline_scripts.event_rules import load_rules, matching_rules
from pipeline_scripts.module_files import load_module
from tests.conftest import REPO_ROOT, SHARED_LOOP_GROUP

DEV_ENV = REPO_ROOT / "env_files" / "dev_env.tfvars"
S3_EVENT = json.loads((REPO_ROOT / "tests/events/s3_object_created_inference.json").read_text())


def _script(name: str):
    """A module of scripts/, imported as the processing container does (beside step_common)."""
    return load_module(REPO_ROOT / "scripts" / f"{name}.py")


batch_input = _script("batch_input")
select_batch, InputError = batch_input.select_batch, batch_input.InputError


def _load_dispatcher():
    path = REPO_ROOT / "code" / "batch_dispatcher" / "batch_dispatcher.py"
    return load_module(path, "batch_dispatcher_under_test")


dispatcher = _load_dispatcher()


@pytest.fixture(scope="module")
def config():
    return load_config(DEV_ENV)


def _event(config, key: str, version: str | None = "v1", etag: str = "0" * 32) -> dict:
    event = copy.deepcopy(S3_EVENT)
    event["detail"]["bucket"]["name"] = config.env.bucket_name
    event["detail"]["object"].update(key=key, etag=etag)
    if version is None:
        event["detail"]["object"].pop("version-id")
    else:
        event["detail"]["object"]["version-id"] = version
    return event


def _prefix(config) -> str:
    return dispatcher_environment(config)["INFERENCE_PREFIX"]


# ------------------------------------------------------------------------ the dispatcher


def test_the_real_s3_event_becomes_a_request_for_exactly_that_object(config):
    assert matching_rules(load_rules(config), S3_EVENT)[0].target == "dispatch_batch"
    prefix = "pipeline_shared/batch-scoring/batch-scoring/data/raw/"
    request = dispatcher.start_request(S3_EVENT, "p", prefix, {"MseThreshold": "6.0"})
    parameters = {p["Name"]: p["Value"] for p in request["PipelineParameters"]}
    obj = S3_EVENT["detail"]["object"]
    assert parameters == {
        "MseThreshold": "6.0",
        "InferenceDataUrl": f"s3://{S3_EVENT['detail']['bucket']['name']}/{obj['key']}",
        "BatchId": "2025-06-03-batch-0001",
        "BatchVersionId": obj["version-id"],
        "BatchETag": obj["etag"],
    }
    # botocore: ClientRequestToken is an IdempotencyToken of 32 to 128 characters.
    assert 32 <= len(request["ClientRequestToken"]) <= 128
    assert request["PipelineExecutionDisplayName"].startswith("2025-06-03-batch-0001-")


def test_the_token_is_the_object_version(config):
    prefix = _prefix(config)
    key = f"{prefix}day/b1.CSV.gz"

    def token(event):
        return dispatcher.start_request(event, "p", prefix, {})["ClientRequestToken"]

    first = token(_event(config, key, "v1"))
    assert token(_event(config, key, "v1")) == first  # retried or duplicated event
    assert token(_event(config, key, "v2")) != first  # a new version is a new batch
    assert token(_event(config, f"{prefix}day/b2.csv", "v1")) != first
    # Unversioned bucket: the ETag tells the contents apart.
    unversioned = token(_event(config, key, None, etag="a" * 32))
    assert unversioned != token(_event(config, key, None, etag="b" * 32))
    assert dispatcher.batch_id(key, prefix) == "day-b1"


@pytest.mark.parametrize("key", ["elsewhere/b1.csv", "{prefix}b1.txt"])
def test_an_object_that_is_not_a_batch_is_refused_naming_it(config, key):
    key = key.format(prefix=_prefix(config))
    with pytest.raises(dispatcher.BatchEventError, match=f"s3://{config.env.bucket_name}/{key}"):
        dispatcher.start_request(_event(config, key), "p", _prefix(config), {})


# -------------------------------------------------------------- exactly once, in the router


@pytest.fixture
def embedded(config):
    with embedded_aws(config.env.region):
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_pipeline(
            PipelineName=config.env.pipeline_inf,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn=config.env.role_arn,
        )
        yield sagemaker


def test_the_same_event_twice_starts_one_execution(config, embedded):
    router = EventRouter(config)
    key = f"{_prefix(config)}b1.csv"
    router(_event(config, key, "v1"))
    router(_event(config, key, "v1"))  # EventBridge delivers at least once
    router(_event(config, key, "v2"))  # the object overwritten: a new batch version
    starts = list(router.pending_starts)
    assert [s.parameters["BatchVersionId"] for s in starts] == ["v1", "v2"]
    assert {s.parameters["InferenceDataUrl"] for s in starts} == {
        f"s3://{config.env.bucket_name}/{key}"
    }
    executions = embedded.list_pipeline_executions(PipelineName=config.env.pipeline_inf)
    arns = {e["PipelineExecutionArn"] for e in executions["PipelineExecutionSummaries"]}
    assert arns == {s.execution_arn for s in starts}
    outcomes = [d.outcome for d in router.deliveries if d.target == "dispatch_batch"]
    assert outcomes[1] == f"duplicate of {starts[0].execution_arn}: no new execution"


def test_a_repeated_token_returns_the_first_execution(config, embedded):
    request = {"PipelineName": config.env.pipeline_inf, "ClientRequestToken": "t" * 32}
    first = embedded.start_pipeline_execution(**request)["PipelineExecutionArn"]
    assert embedded.start_pipeline_execution(**request)["PipelineExecutionArn"] == first
    other = embedded.start_pipeline_execution(**{**request, "ClientRequestToken": "u" * 32})
    assert other["PipelineExecutionArn"] != first


# --------------------------------------------------------------- the preprocess step's input


def test_only_the_batch_file_is_read(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    content = b"a,b\n1,2\n"
    for name in ["b1.csv", "b1.csv.gz", "b1.csv2.csv", "other.csv"]:
        (folder / name).write_bytes(content if name == "b1.csv" else b"x,y\n")
    etag = hashlib.md5(content).hexdigest()
    with select_batch(folder, "s3://bucket/in/b1.csv", etag) as chosen:
        assert [p.name for p in chosen.iterdir()] == ["b1.csv"]
        assert (chosen / "b1.csv").read_bytes() == content
    assert not chosen.exists()  # the temporary folder goes with the block
    assert (folder / "b1.csv").read_bytes() == content  # and only it
    with select_batch(folder, "s3://bucket/in/", "") as chosen:
        assert chosen == folder  # a prefix run reads all
    # A multipart ETag depends on the part size: not checked.
    with select_batch(folder, "s3://bucket/in/b1.csv", "abc-2") as chosen:
        assert chosen != folder


def test_a_missing_or_overwritten_batch_fails_naming_the_key(tmp_path):
    (tmp_path / "b1.csv.bak").write_text("a\n1\n")
    missing = r"s3://bucket/in/b1.csv: the batch object is missing"
    with pytest.raises(InputError, match=missing), select_batch(tmp_path, "s3://bucket/in/b1.csv"):
        pass
    (tmp_path / "b1.csv").write_text("a\n2\n")
    overwritten = r"s3://bucket/in/b1.csv: content MD5 \w+ differs"
    with (
        pytest.raises(InputError, match=overwritten),
        select_batch(tmp_path, "s3://bucket/in/b1.csv", "0" * 32),
    ):
        pass


# ------------------------------------------------------------------------------ end to end


@pytest.mark.e2e
@pytest.mark.xdist_group(SHARED_LOOP_GROUP)
def test_two_batches_at_once_are_each_scored_once_on_their_own_rows(champion_then_batches):
    """The loop run of tests/shared_loops.py (after its champion part): b1 and b2 uploaded at
    once, b2's event delivered twice, then a batch deleted before its execution read it."""
    seen = champion_then_batches["batches"]
    config, batches, runs = seen["config"], seen["batches"], seen["runs"]
    env = config.env
    assert len(runs) == 2

    # b2's 25 labels are too few to judge: its run succeeds and its e-mail says why.
    assert [r.status for r in runs] == ["Failed", "Succeeded"]
    assert runs[0].failure_reason.startswith("MSE ")  # b1: 40 labels, judged and failed
    subjects = seen["subjects"]
    assert any(s.startswith("Succeeded with") and "insufficient labels" in s for s in subjects), (
        subjects
    )

    # A batch deleted before its execution read it: the run fails naming the key.
    gone = seen["gone"]
    assert gone.status == "Failed"
    assert seen["gone_uri"] in gone.failure_reason
    for run, (name, rows) in zip(runs, batches.items(), strict=True):
        assert run.parameters["BatchId"] == name
        assert run.display_name.startswith(f"{name}-")  # as the dispatcher named it
        assert run.parameters["InferenceDataUrl"].endswith(f"/{name}.csv")
        assert seen["reports"][name]["record_count"] == len(rows) - 1
        assert seen["fields"][name] == {
            "batch": f"s3://{env.bucket_name}/{env.bucket_prefix}/{env.bucket_inf_prefix}/"
            f"{name}.csv",
            "batch_id": name,
            "mode": "score",
            "records_scored": len(rows) - 1,
            "labels_matched": None,
        }
        # Record ids are the batch's own data lines, 1 .. n.
        predictions = seen["predictions"][name]
        assert sorted(int(float(p.split(b",")[0])) for p in predictions) == list(
            range(1, len(rows))
        )


# -------------------------------------------------------------------------- retraining rules

GATE_EVENT = json.loads(
    (REPO_ROOT / "tests/events/pipeline_step_failed_model_quality_gate.json").read_text()
)
CRASH_EVENT = json.loads(
    (REPO_ROOT / "tests/events/pipeline_step_failed_model_quality.json").read_text()
)


def test_only_a_measured_failure_reaches_the_retrain_gate(config):
    rules = load_rules(config)
    assert {r.target for r in matching_rules(rules, GATE_EVENT)} == {"notifier", "retrain_gate"}
    # ModelQualityCheck itself failing (a crash, bad labels, a full disk) retrains nothing.
    assert [r.target for r in matching_rules(rules, CRASH_EVENT)] == ["notifier"]


def test_three_labels_are_insufficient_and_judge_nothing(tmp_path):
    check = _script("model_quality").check

    truth = tmp_path / "input" / "ground_truth" / "ground_truth.csv"
    truth.parent.mkdir(parents=True)
    truth.write_text("record_id,label\n0,1\n1,2\n2,3\n")
    stats, status = check(tmp_path, threshold=6.0, min_labels=30)
    assert status == 0 and stats["status"] == "insufficient_labels"
    assert stats["reason"].startswith("insufficient labels: 3 labelled records, at least 30")
    assert stats["regression_metrics"] == {}  # no MSE on 3 records, so nothing to fail on


@pytest.fixture
def retraining(config, monkeypatch):
    """The embedded API with the HPO pipeline and a topic whose messages land in a queue."""
    with embedded_aws(config.env.region):
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_pipeline(
            PipelineName=config.env.pipeline_trainwhpo,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn=config.env.role_arn,
        )
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="t")["TopicArn"]
        queue = sqs.create_queue(QueueName="mailbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs",
                      Endpoint=queue_arn["Attributes"]["QueueArn"])  # fmt: skip
        monkeypatch.setenv("SNS_TOPIC_ARN", topic)
        yield sagemaker, sqs, queue


def _failure(n: int) -> dict:
    event = copy.deepcopy(GATE_EVENT)
    event["detail"]["pipelineExecutionArn"] = event["detail"]["pipelineExecutionArn"] + str(n)
    return event


def test_five_failures_within_the_cooldown_start_one_retraining(config, retraining):
    sagemaker, sqs, queue = retraining
    router = EventRouter(config)
    for n in range(5):
        router(_failure(n))
    router(_failure(0))  # a redelivered event
    starts = list(router.pending_starts)
    assert [(s.pipeline, s.reason) for s in starts] == [
        (config.env.pipeline_trainwhpo, "EventBridge rule model_quality_failed")
    ]
    listed = sagemaker.list_pipeline_executions(PipelineName=config.env.pipeline_trainwhpo)
    assert [e["PipelineExecutionArn"] for e in listed["PipelineExecutionSummaries"]] == [
        starts[0].execution_arn
    ]
    outcomes = [d.outcome for d in router.deliveries if d.target == "retrain_gate"]
    assert outcomes[0] == f"started {starts[0].execution_arn}"
    assert all(o.startswith("suppressed: retraining ") for o in outcomes[1:]), outcomes
    # Each suppressed trigger is reported, not lost.
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    subjects = [json.loads(m["Body"])["Subject"] for m in messages]
    assert subjects.count("Retraining suppressed: a model-quality failure started no new run") == 5


def test_the_cooldown_holds_after_the_retraining_finished(config, retraining):
    from datetime import UTC, datetime, timedelta

    gate = _load_module("retrain_gate")
    now = datetime(2025, 6, 3, 12, tzinfo=UTC)
    done = {"PipelineExecutionArn": "arn:x", "PipelineExecutionStatus": "Succeeded"}
    cooldown = timedelta(minutes=360)
    assert gate.decide([], now, cooldown)[0]
    recent = {**done, "StartTime": now - timedelta(minutes=359)}
    start, reason = gate.decide([recent], now, cooldown)
    assert not start and "within the cooldown of 360 minutes" in reason
    assert gate.decide([{**done, "StartTime": now - timedelta(minutes=361)}], now, cooldown)[0]
    running = {
        **recent,
        "StartTime": now - timedelta(days=2),
        "PipelineExecutionStatus": "Executing",
    }
    assert gate.decide([running], now, cooldown) == (False, "retraining arn:x is still running")


def _load_module(name: str):
    path = REPO_ROOT / "code" / "batch_dispatcher" / f"{name}.py"
    return load_module(path, f"{name}_under_test")


# ------------------------------------------------------------------ e-mails that tell the truth


@pytest.mark.parametrize(
    ("violations", "quality", "subject_start", "notes"),
    [
        (0, "passed", "Succeeded: pipeline", []),
        (2, "passed", "Succeeded with 2 data-quality violations: pipeline", []),
        (0, "skipped", "Succeeded with model quality skipped (no labels): pipeline", []),
        (1, "insufficient_labels", "Succeeded with 1 data-quality violation, insufficient labels:",
         []),
        # Below datatype_check_threshold: not a violation, yet the subject says it (issue 11.3).
        (0, "passed", "Succeeded with values imputed in 1 column: pipeline", ["length: 2 of 500"]),
    ],
)  # fmt: skip
def test_a_succeeded_batch_run_says_what_its_checks_found(
    config, monkeypatch, violations, quality, subject_start, notes
):
    from moto import mock_aws

    env = config.env
    event = json.loads((REPO_ROOT / "tests/events/pipeline_execution_succeeded.json").read_text())
    arn = event["detail"]["pipelineExecutionArn"].replace(
        "pipeline/training-pipeline-dev", f"pipeline/{env.pipeline_inf}"
    )
    event["detail"].update(pipelineArn=arn.rsplit("/execution/", 1)[0], pipelineExecutionArn=arn)
    execution_id = arn.rsplit("/", 1)[1]
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", env.region)
    with mock_aws():
        s3 = boto3.client("s3", region_name=env.region)
        s3.create_bucket(
            Bucket=env.bucket_name, CreateBucketConfiguration={"LocationConstraint": env.region}
        )
        base = f"{env.bucket_prefix}/artifacts/{env.pipeline_inf}/{execution_id}"
        s3.put_object(Bucket=env.bucket_name,
                      Key=f"{base}/DataQualityCheck/data_quality/summary.json",
                      Body=json.dumps({"violation_count": violations, "message": "m",
                                       "notes": notes}))  # fmt: skip
        s3.put_object(Bucket=env.bucket_name,
                      Key=f"{base}/ModelQualityCheck/model_quality/statistics.json",
                      Body=json.dumps({"status": quality, "reason": "r"}))  # fmt: skip
        topic = boto3.client("sns", region_name=env.region).create_topic(Name="t")["TopicArn"]
        environment = notifier_environment(config, topic)
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        assert environment["ARTIFACTS_URI"] == env.artifacts_uri  # what lambda.tf sets
        notifier = _load_module_at("notifier/notifier.py")
        result = notifier.handler(event, None)
        assert result["subject"].startswith(subject_start), result["subject"]
        # Unreadable results are a caveat too, never a silent "Succeeded".
        s3.delete_object(Bucket=env.bucket_name,
                         Key=f"{base}/ModelQualityCheck/model_quality/statistics.json")  # fmt: skip
        assert "quality results unreadable" in notifier.handler(event, None)["subject"]


def _load_module_at(relative: str):
    path = REPO_ROOT / "code" / relative
    return load_module(path, f"{path.stem}_under_test")
