"""Labels that arrive later: the dispatcher's labels action, the router, the join of labels
with a batch's stored predictions on record_id (scripts/model_quality.py --labels), and (e2e)
the whole path through the batch-inference pipeline with Mode=evaluate."""

from __future__ import annotations

import copy
import json

import boto3
import numpy as np
import pandas as pd
import pytest

from local_runtime.aws import embedded_aws
from local_runtime.router import EventRouter, dispatcher_environment
from pipeline_scripts.config import load_config
from pipeline_scripts.event_rules import load_rules, matching_rules
from pipeline_scripts.module_files import load_module
from tests.conftest import REPO_ROOT, run_step_script

DEV_ENV = REPO_ROOT / "env_files" / "dev_env.tfvars"
S3_EVENT = json.loads((REPO_ROOT / "tests/events/s3_object_created_inference.json").read_text())
LATE_BATCH = REPO_ROOT / "data" / "later" / "abalone_synthetic_batch_late.csv"
LATE_LABELS = REPO_ROOT / "data" / "later" / "abalone_synthetic_batch_late.labels.csv"


dispatcher = load_module(
    REPO_ROOT / "code/batch_dispatcher/batch_dispatcher.py", "dispatcher_labels"
)


@pytest.fixture(scope="module")
def config():
    return load_config(DEV_ENV)


def _event(config, key, version="v1"):
    event = copy.deepcopy(S3_EVENT)
    event["detail"]["bucket"]["name"] = config.env.bucket_name
    event["detail"]["object"].update(key=key, etag="e" * 32, **{"version-id": version})
    return event


def _start(config, key, version="v1"):
    env = dispatcher_environment(config)
    return dispatcher.start_request(
        _event(config, key, version), "p", env["INFERENCE_PREFIX"], {}, env["LABELS_PREFIX"]
    )


# ------------------------------------------------------------------------ the dispatcher


def test_labels_start_an_evaluation_of_their_batch(config):
    key = f"{config.env.bucket_prefix}/labels/2025-06-03-batch-0001.labels.csv"
    assert [r.name for r in matching_rules(load_rules(config), _event(config, key))] == [
        "labels_created"
    ]
    request = _start(config, key)
    parameters = {p["Name"]: p["Value"] for p in request["PipelineParameters"]}
    assert parameters == {
        "LabelsDataUrl": f"s3://{config.env.bucket_name}/{key}",
        "Mode": "evaluate",
        "BatchId": "2025-06-03-batch-0001",  # the id the batch's predictions are stored under
        "BatchVersionId": "v1",
        "BatchETag": "e" * 32,
    }
    assert request["PipelineExecutionDisplayName"].startswith("2025-06-03-batch-0001-labels-")
    # Labels are their own object: another token than any batch's, one per labels version.
    assert _start(config, key)["ClientRequestToken"] == request["ClientRequestToken"]
    assert _start(config, key, "v2")["ClientRequestToken"] != request["ClientRequestToken"]


@pytest.mark.parametrize("name", ["b1.csv", "day/b1.labels.csv", "b1.labels.CSV"])
def test_a_labels_file_not_named_by_the_convention_is_refused_naming_it(config, name):
    key = f"{config.env.bucket_prefix}/labels/{name}"
    with pytest.raises(dispatcher.BatchEventError, match=r"<batch id>\.labels\.csv"):
        _start(config, key)


def test_the_router_sends_labels_through_the_dispatcher_exactly_once(config):
    key = f"{config.env.bucket_prefix}/labels/b1.labels.csv"
    with embedded_aws(config.env.region):
        boto3.client("sagemaker").create_pipeline(
            PipelineName=config.env.pipeline_inf,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn=config.env.role_arn,
        )
        router = EventRouter(config)
        router(_event(config, key))
        router(_event(config, key))  # EventBridge delivers at least once
        starts = list(router.pending_starts)
    assert [(s.parameters["Mode"], s.parameters["BatchId"]) for s in starts] == [("evaluate", "b1")]
    assert [d.rule for d in router.deliveries] == ["labels_created", "labels_created"]
    assert router.deliveries[1].outcome.startswith("duplicate of ")


# ------------------------------------------------------------------ the join on record_id


def _run(base, *extra):
    """model_quality.py --labels as the processing job runs it; (exit code, stats, stderr)."""
    result = run_step_script(
        "model_quality.py", "--base-dir", base,
        "--labels", "--mse-threshold", "6", "--min-labels", "30", *extra, expect_ok=False,
    )  # fmt: skip
    out = base / "output" / "model_quality" / "statistics.json"
    stats = json.loads(out.read_text()) if out.exists() else None
    return result.returncode, stats, result.stderr.strip()


def _write(base, predictions: dict[int, float], labels_csv: str):
    folder = base / "input" / "predictions"
    folder.mkdir(parents=True)
    # Batch transform output: lines `record_id,prediction`, in any order, over several files.
    items = list(predictions.items())
    for part, chunk in enumerate([items[::2], items[1::2]]):
        (folder / f"batch.csv.out.{part}.out").write_text("".join(f"{i},{p}\n" for i, p in chunk))
    labels = base / "input" / "labels" / "b1.labels.csv"
    labels.parent.mkdir(parents=True)
    labels.write_text(labels_csv)


def test_late_labels_are_joined_on_record_id_and_judged(tmp_path):
    rng = np.random.default_rng(7)
    predictions = {i: float(v) for i, v in zip(range(1, 81), rng.uniform(5, 15, 80), strict=True)}
    # 50 labels for records 11..60 in shuffled order, plus 3 ids the batch never had.
    ids = rng.permutation(np.arange(11, 61))
    labels = {int(i): float(predictions[int(i)] + rng.normal(0, 3)) for i in ids}
    rows = [*labels.items(), (500, 1.0), (501, 2.0), (0, 3.0)]
    _write(tmp_path, predictions, "record_id,label\n" + "".join(f"{i},{y}\n" for i, y in rows))

    code, stats, _ = _run(tmp_path)
    assert code == 0
    assert stats["labels"] == {"file": "b1.labels.csv", "received": 53, "matched": 50,
                               "unmatched": 3}  # fmt: skip
    joined = pd.DataFrame({"label": labels}).join(pd.Series(predictions, name="prediction"))
    mse = float(((joined["label"] - joined["prediction"]) ** 2).mean())
    assert stats["regression_metrics"]["mse"]["value"] == pytest.approx(mse, rel=1e-12)
    assert stats["status"] == ("failed" if mse > 6 else "passed")
    assert "3 of 53 labels in b1.labels.csv match no prediction of this batch (e.g. record_id " \
        "500) and were left out" in stats["reason"]  # fmt: skip


def test_duplicate_ids_fail_the_check_with_one_line(tmp_path):
    predictions = {i: 10.0 for i in range(1, 41)}
    rows = [(i, 9.0) for i in range(1, 41)] + [(7, 8.0)]
    _write(tmp_path, predictions, "record_id,label\n" + "".join(f"{i},{y}\n" for i, y in rows))
    code, stats, stderr = _run(tmp_path)
    assert code == 1 and stats is None  # a failed check: never a retraining
    assert stderr.splitlines()[-1].endswith(
        "b1.labels.csv: record_id 7 appears on lines 8, 42 (1 duplicated id(s)); expected one "
        "label per record"
    )


def test_labels_matching_no_prediction_measure_nothing(tmp_path):
    _write(tmp_path, {1: 10.0, 2: 11.0}, "record_id,label\n5,1\n6,2\n")
    code, stats, _ = _run(tmp_path)
    assert code == 0 and stats["status"] == "skipped"
    assert stats["labels"]["matched"] == 0
    assert "2 of 2 labels in b1.labels.csv match no prediction" in stats["reason"]


def test_the_demo_labels_name_their_batch_and_its_lines():
    """data/later: the labels file is named after the batch id and numbers its data lines."""
    batch, labels = pd.read_csv(LATE_BATCH), pd.read_csv(LATE_LABELS)
    assert "rings" not in batch.columns  # scored without ground truth
    assert labels["record_id"].tolist() == list(range(1, len(batch) + 1))
    assert LATE_LABELS.name == f"{dispatcher.batch_id(LATE_BATCH.name, '')}.labels.csv"


# ------------------------------------------------------------------------ the id column


def _preprocess(base, *args, ok=True):
    result = run_step_script("preprocess.py", "--base-dir", base, *args, expect_ok=False)
    assert (result.returncode == 0) is ok, result.stderr
    return result.stderr.strip()


@pytest.fixture(scope="module")
def transform_json(tmp_path_factory):
    """A transform fitted on the sample training data (preprocess --mode fit)."""
    base = tmp_path_factory.mktemp("fit")
    (base / "input" / "data").mkdir(parents=True)
    train = REPO_ROOT / "data" / "train" / "abalone_synthetic_train.csv"
    (base / "input" / "data" / "train.csv").write_text(train.read_text())
    _preprocess(base, "--mode", "fit")
    return base / "output" / "transform" / "transform.json"


def _apply_with_ids(base, transform_json, ids, ok=True):
    batch = pd.read_csv(REPO_ROOT / "data" / "inference" / "abalone_synthetic_batch_clean.csv")
    batch = batch.head(len(ids)).assign(customer_id=ids)
    (base / "input" / "data").mkdir(parents=True)
    (base / "input" / "transform").mkdir(parents=True)
    (base / "input" / "transform" / "transform.json").write_text(transform_json.read_text())
    batch.to_csv(base / "input" / "data" / "b1.csv", index=False)
    return batch, _preprocess(base, "--mode", "apply", "--id-column", "customer_id", ok=ok)


def test_an_id_column_is_the_record_id_and_no_feature(tmp_path, transform_json):
    ids = [9001, 17, 123456789012, 4, 5]
    batch, _ = _apply_with_ids(tmp_path, transform_json, ids)
    out = tmp_path / "output"
    scored = pd.read_csv(out / "transform_input" / "batch.csv", header=None)
    assert scored[0].tolist() == ids  # what predictions carry (the transform joins it through)
    truth = pd.read_csv(out / "ground_truth" / "ground_truth.csv")
    assert truth["record_id"].tolist() == ids and truth["label"].tolist() == batch["rings"].tolist()
    features = pd.read_csv(out / "features" / "features.csv")
    assert "customer_id" not in features.columns and "length" in features.columns


@pytest.mark.e2e
@pytest.mark.parametrize(
    "ids, message",
    [
        ([1, 2, 2], "b1.csv: id column 'customer_id' repeats 2 on line 4; expected each record "
                    "id once"),
        (["1", "x7", "3"], "b1.csv: id column 'customer_id' has value 'x7' on line 3; expected "
                           "a whole number of at most 18 digits"),
    ],
)  # fmt: skip
def test_a_bad_id_column_fails_with_one_line(tmp_path, transform_json, ids, message):
    _, stderr = _apply_with_ids(tmp_path, transform_json, ids, ok=False)
    assert stderr.splitlines()[-1].endswith(message), stderr


def test_a_bad_id_column_setting_names_the_key(tmp_path):
    import yaml

    from pipeline_scripts.config import DEFAULT_SETTINGS_FILE, ConfigError

    settings = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    settings["batch"]["id_column"] = "customer id"
    path = tmp_path / "pipelines.yaml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(ConfigError, match=r"pipelines.yaml: 'batch.id_column': expected a column"):
        load_config(DEV_ENV, settings_file=path)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("quality", "subject_start"),
    [
        ("passed", "Succeeded: pipeline"),
        ("insufficient_labels", "Succeeded with insufficient labels: pipeline"),
    ],
)
def test_a_succeeded_label_evaluation_mails_its_own_result(
    config, monkeypatch, quality, subject_start
):
    """A Mode=evaluate run checks no data: its e-mail reports EvaluateLateLabels' outcome."""
    from moto import mock_aws

    from local_runtime.router import notifier_environment

    env = config.env
    event = json.loads((REPO_ROOT / "tests/events/pipeline_execution_succeeded.json").read_text())
    arn = event["detail"]["pipelineExecutionArn"].replace(
        "pipeline/training-pipeline-dev", f"pipeline/{env.pipeline_inf}"
    )
    event["detail"].update(pipelineArn=arn.rsplit("/execution/", 1)[0], pipelineExecutionArn=arn)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", env.region)
    with mock_aws():
        s3 = boto3.client("s3", region_name=env.region)
        s3.create_bucket(
            Bucket=env.bucket_name, CreateBucketConfiguration={"LocationConstraint": env.region}
        )
        base = f"{env.bucket_prefix}/artifacts/{env.pipeline_inf}/{arn.rsplit('/', 1)[1]}"
        s3.put_object(Bucket=env.bucket_name,
                      Key=f"{base}/EvaluateLateLabels/model_quality/statistics.json",
                      Body=json.dumps({"status": quality, "reason": "r"}))  # fmt: skip
        topic = boto3.client("sns", region_name=env.region).create_topic(Name="t")["TopicArn"]
        for key, value in notifier_environment(config, topic).items():
            monkeypatch.setenv(key, value)
        notifier = load_module(REPO_ROOT / "code/notifier/notifier.py", "notifier_labels")
        subject = notifier.handler(event, None)["subject"]
    assert subject.startswith(subject_start), subject
    assert "unreadable" not in subject


# ------------------------------------------------------------------------------ end to end


@pytest.mark.e2e
def test_labels_for_stored_and_unknown_batches_through_the_pipeline(tmp_path, monkeypatch):
    """Mode=evaluate needs no model: the pipeline joins labels with predictions stored under
    predictions/<batch id>/, and labels for a batch never scored fail naming that URI."""
    from local_runtime.loop import Loop, Options, _inbox, batch_fields, create_project_bucket
    from local_runtime.router import notifier_environment
    from pipeline_scripts.cli import run as pipeline_cli

    config = load_config(DEV_ENV)
    env = config.env
    with embedded_aws(env.region):
        s3 = boto3.client("s3")
        create_project_bucket(env)
        topic_arn, _ = _inbox(config)
        for key, value in notifier_environment(config, topic_arn).items():
            monkeypatch.setenv(key, value)
        pipeline_cli("upsert", str(DEV_ENV), tmp_path / "pipelines", out=lambda line: None)
        # What BatchTransform stored for batch b7 (40 records, ids 1..40).
        predictions = {i: 8.0 + (i % 5) for i in range(1, 41)}
        s3.put_object(
            Bucket=env.bucket_name,
            Key=f"{env.bucket_prefix}/predictions/b7/b7.csv.out",
            Body="".join(f"{i},{p}\n" for i, p in predictions.items()).encode(),
        )
        rows = [(i, 9.0) for i in range(3, 41)] + [(41, 9.0)]  # 38 match, 1 does not
        (tmp_path / "b7.labels.csv").write_text(
            "record_id,label\n" + "".join(f"{i},{y}\n" for i, y in rows)
        )
        (tmp_path / "nobatch.labels.csv").write_text("record_id,label\n1,9\n")
        loop = Loop(config, Options(str(DEV_ENV), tmp_path / "out"), out=lambda line: None)
        for name in ("b7", "nobatch"):
            loop.upload(tmp_path / f"{name}.labels.csv", f"{env.s3_base_uri}/labels/")
            loop.drain()

    (known, _), (unknown, _) = loop.executions
    assert known.status == "Succeeded", known.failure_reason
    assert known.step("ResolveApprovedModel").status == "NotExecuted"  # nothing scored
    fields = batch_fields(known, config)
    assert (fields["mode"], fields["batch_id"], fields["labels_matched"]) == ("evaluate", "b7", 38)
    expected = np.mean([(9.0 - predictions[i]) ** 2 for i in range(3, 41)])
    stats = json.loads(
        (known.step("EvaluateLateLabels").workdir / "processing" / "output" / "model_quality"
         / "statistics.json").read_text()
    )  # fmt: skip
    assert stats["regression_metrics"]["mse"]["value"] == pytest.approx(expected)
    assert "1 of 39 labels in b7.labels.csv match no prediction" in stats["reason"]

    assert unknown.status == "Failed"
    reason = unknown.step("EvaluateLateLabels").failure_reason
    assert "No S3 objects found under S3 URL" in reason
    assert f"{env.bucket_prefix}/predictions/nobatch" in reason
