"""Champion versus challenger (evaluate.py, the resolver's champion action) and the integrity of
approved artifacts (record_integrity / verify_integrity), issue 10 points 5 and 6."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import boto3
import numpy as np
import pytest
import xgboost as xgb
from moto import mock_aws

from pipeline_scripts.api_model import constraint_errors, member_shape
from pipeline_scripts.module_files import load_module
from tests.conftest import REPO_ROOT, SHARED_LOOP_GROUP

TRAIN_DATA = REPO_ROOT / "data" / "train" / "abalone_synthetic_train.csv"
GROUP = "abalone-models"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
BUCKET = "artifacts-bucket"
METADATA = member_shape("CreateModelPackage", "CustomerMetadataProperties")


def _script(name: str):
    """A module of scripts/, imported as the processing container runs it (beside its peers)."""
    return load_module(REPO_ROOT / "scripts" / f"{name}.py", f"{name}_under_test")


evaluate = _script("evaluate")
preprocess = _script("preprocess")
model_resolver = load_module(REPO_ROOT / "code/model_resolver/model_resolver.py", "resolver_c")
data_version = load_module(
    REPO_ROOT / "code/training_data_version/training_data_version.py", "data_version_c"
)


# ------------------------------------------------------------------ champion vs challenger


def _fit(base, csv_lines, seed):
    """preprocess.py --mode fit on these lines; returns its output folder."""
    (base / "input" / "data").mkdir(parents=True)
    (base / "input" / "data" / "data.csv").write_text("\n".join(csv_lines) + "\n")
    args = ["--mode", "fit", "--base-dir", str(base), "--seed", str(seed), "--categorical", "sex"]
    assert preprocess.main(args) == 0
    return base / "output"


def _model(out, path, rounds):
    """A booster trained on a fitted train.csv, stored as the training job stores it."""
    train = np.loadtxt(out / "train" / "train.csv", delimiter=",")
    booster = xgb.train(
        {"max_depth": 3, "eta": 0.3}, xgb.DMatrix(train[:, 1:], train[:, 0]), rounds
    )
    raw = booster.save_raw("json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(bytes(raw)))
    return booster


def _link(source, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A challenger fitted on rows 1..600 and a champion fitted on other rows with another
    seed (so its transform differs), evaluated together."""
    tmp = tmp_path_factory.mktemp("champion")
    lines = TRAIN_DATA.read_text().splitlines()
    challenger_out = _fit(tmp / "challenger", lines[:601], seed=1)
    champion_out = _fit(tmp / "champion", [lines[0], *lines[1500:2100]], seed=7)
    base = tmp / "evaluate"
    challenger = _model(challenger_out, base / "input/model/model.tar.gz", rounds=20)
    champion = _model(champion_out, base / "input/champion_model/model.tar.gz", rounds=3)
    for source, target in [
        (challenger_out / "test/test.csv", "test/test.csv"),
        (challenger_out / "train/train.csv", "train/train.csv"),
        (challenger_out / "test_raw/test.csv", "test_raw/test.csv"),
        (champion_out / "transform/transform.json", "champion_transform/transform.json"),
        (challenger_out / "transform/transform.json", "transform/transform.json"),
    ]:
        _link(source, base / "input" / target)
    # Recent labelled rows neither model was fitted on, raw as JoinLabelledBatches holds out.
    (base / "input/recent").mkdir(parents=True)
    (base / "input/recent/recent.csv").write_text("\n".join([lines[0], *lines[2200:2260]]) + "\n")
    assert evaluate.main(["--base-dir", str(base), "--champion-version", "3"]) == 0
    report = json.loads((base / "output/evaluation/evaluation.json").read_text())
    return {
        "report": report,
        "challenger": challenger,
        "champion": champion,
        "challenger_out": challenger_out,
        "champion_out": champion_out,
        "tmp": tmp,
    }


def test_champion_is_scored_with_its_own_transform_on_the_same_rows(evaluated):
    report = evaluated["report"]
    test = np.loadtxt(evaluated["challenger_out"] / "test/test.csv", delimiter=",")
    labels = test[:, 0]
    challenger_mse = np.mean(
        (evaluated["challenger"].predict(xgb.DMatrix(test[:, 1:])) - labels) ** 2
    )

    # The champion scored directly, through the batch-inference path: preprocess apply mode
    # with the champion's transform.json on the raw test rows.
    apply_base = evaluated["tmp"] / "apply"
    _link(evaluated["challenger_out"] / "test_raw/test.csv", apply_base / "input/data/test.csv")
    _link(
        evaluated["champion_out"] / "transform/transform.json",
        apply_base / "input/transform/transform.json",
    )
    assert preprocess.main(["--mode", "apply", "--base-dir", str(apply_base)]) == 0
    batch = np.loadtxt(apply_base / "output/transform_input/batch.csv", delimiter=",")
    truth = np.loadtxt(
        apply_base / "output/ground_truth/ground_truth.csv", delimiter=",", skiprows=1
    )
    assert np.array_equal(truth[:, 1], labels)  # same rows, same order
    champion_mse = np.mean((evaluated["champion"].predict(xgb.DMatrix(batch[:, 1:])) - labels) ** 2)

    assert report["dataset"]["item_count"] == report["champion"]["item_count"] == len(labels) == 90
    assert report["regression_metrics"]["mse"]["value"] == pytest.approx(challenger_mse, rel=1e-6)
    assert report["champion"]["regression_metrics"]["mse"]["value"] == pytest.approx(
        champion_mse, rel=1e-6
    )
    assert report["champion"]["version"] == "3"
    # A 3-round champion fitted elsewhere is worse than a 20-round challenger here.
    assert champion_mse > challenger_mse
    assert report["challenger_is_better"] is True
    assert report["formatted"]["champion_mse"] == f"{champion_mse:.2f}"
    assert report["formatted"]["record_count"] == "90"


def _inference_mse(booster, transform, raw_csv, base):
    """MSE of booster on raw_csv through the batch-inference path (preprocess apply mode)."""
    _link(raw_csv, base / "input/data/data.csv")
    _link(transform, base / "input/transform/transform.json")
    assert preprocess.main(["--mode", "apply", "--base-dir", str(base)]) == 0
    batch = np.loadtxt(base / "output/transform_input/batch.csv", delimiter=",")
    truth = np.loadtxt(base / "output/ground_truth/ground_truth.csv", delimiter=",", skiprows=1)
    return len(truth), np.mean((booster.predict(xgb.DMatrix(batch[:, 1:])) - truth[:, 1]) ** 2)


def test_both_models_are_scored_on_the_recent_rows_through_their_own_transforms(evaluated):
    recent_csv = evaluated["tmp"] / "evaluate/input/recent/recent.csv"
    n, challenger_mse = _inference_mse(
        evaluated["challenger"], evaluated["challenger_out"] / "transform/transform.json",
        recent_csv, evaluated["tmp"] / "recent_challenger",
    )  # fmt: skip
    _, champion_mse = _inference_mse(
        evaluated["champion"], evaluated["champion_out"] / "transform/transform.json",
        recent_csv, evaluated["tmp"] / "recent_champion",
    )  # fmt: skip
    recent = evaluated["report"]["recent"]
    assert recent["item_count"] == n == 60
    assert recent["challenger"]["mse"]["value"] == pytest.approx(challenger_mse, rel=1e-6)
    assert recent["champion"]["mse"]["value"] == pytest.approx(champion_mse, rel=1e-6)
    assert challenger_mse != pytest.approx(champion_mse)  # two models, two transforms
    formatted = evaluated["report"]["formatted"]
    assert (formatted["recent_record_count"], formatted["recent_mse"],
            formatted["recent_champion_mse"]) == (
        "60", f"{challenger_mse:.2f}", f"{champion_mse:.2f}")  # fmt: skip


def test_a_champion_transform_for_other_columns_fails_naming_the_file(evaluated, tmp_path, capsys):
    base = tmp_path / "evaluate"
    for path in (evaluated["tmp"] / "evaluate" / "input").rglob("*.*"):
        _link(path, base / path.relative_to(evaluated["tmp"] / "evaluate"))
    spec_path = base / "input/champion_transform/transform.json"
    spec = json.loads(spec_path.read_text())
    spec["features"].append("colour")
    spec_path.write_text(json.dumps(spec))
    assert evaluate.main(["--base-dir", str(base), "--champion-version", "3"]) == 1
    error = capsys.readouterr().err
    assert "champion version 3 on " in error and "test_raw" in error
    assert "required column 'colour' is missing" in error, error
    assert not (base / "output/evaluation/evaluation.json").exists()


def test_recent_rows_without_a_champion_and_the_no_rows_marker(evaluated, tmp_path):
    base = tmp_path / "evaluate"
    for name in ("model/model.tar.gz", "test/test.csv", "train/train.csv",
                 "transform/transform.json", "recent/recent.csv"):  # fmt: skip
        _link(evaluated["tmp"] / "evaluate/input" / name, base / "input" / name)
    assert evaluate.main(["--base-dir", str(base), "--champion-version", "none"]) == 0
    report = json.loads((base / "output/evaluation/evaluation.json").read_text())
    assert report["recent"] == {
        "item_count": 60,
        "challenger": evaluated["report"]["recent"]["challenger"],
    }
    assert report["formatted"]["recent_champion_mse"] == "none"
    # JoinLabelledBatches' marker when it held nothing out: no rows, not an error.
    (base / "input/recent/recent.csv").unlink()
    (base / "input/recent/no_recent_rows.txt").write_text("no labelled rows held out\n")
    assert evaluate.main(["--base-dir", str(base), "--champion-version", "none"]) == 0
    report = json.loads((base / "output/evaluation/evaluation.json").read_text())
    assert report["recent"] == {"item_count": 0}


def test_without_a_champion_the_challenger_is_evaluated_alone(evaluated, tmp_path):
    base = tmp_path / "evaluate"
    for name in ("model/model.tar.gz", "test/test.csv", "train/train.csv"):
        _link(evaluated["tmp"] / "evaluate/input" / name, base / "input" / name)
    assert evaluate.main(["--base-dir", str(base), "--champion-version", "none"]) == 0
    report = json.loads((base / "output/evaluation/evaluation.json").read_text())
    assert report["champion"] == {"version": "none"}
    assert report["formatted"]["champion_mse"] == "none"
    assert report["challenger_is_better"] is True
    # No recent folder: nothing held out.
    assert report["recent"] == {"item_count": 0}
    assert report["formatted"]["recent_record_count"] == "none"
    assert report["formatted"]["recent_mse"] == report["formatted"]["recent_champion_mse"] == "none"
    same = evaluated["report"]["regression_metrics"]["mse"]["value"]
    assert report["regression_metrics"]["mse"]["value"] == same


# ------------------------------------------------------------------------------ integrity


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield s3


MODEL_KEY, TRANSFORM_KEY = "train/e1/TrainModel/output/model.tar.gz", "train/e1/t/transform.json"
URIS = {
    "model_uri": f"s3://{BUCKET}/{MODEL_KEY}",
    "transform_uri": f"s3://{BUCKET}/{TRANSFORM_KEY}",
}


def _put(s3, key, body):
    return s3.put_object(Bucket=BUCKET, Key=key, Body=body).get("VersionId") or "null"


@pytest.mark.parametrize("versioned", [True, False])
def test_recorded_integrity_is_the_objects_sha256_and_version(aws, versioned):
    if versioned:
        aws.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    model_version = _put(aws, MODEL_KEY, b"model bytes")
    transform_version = _put(aws, TRANSFORM_KEY, b'{"version": 1}')

    recorded = data_version.handler({"action": "record_integrity", **URIS}, None)

    assert recorded == {
        "model_sha256": hashlib.sha256(b"model bytes").hexdigest(),
        "model_version_id": model_version,
        "transform_sha256": hashlib.sha256(b'{"version": 1}').hexdigest(),
        "transform_version_id": transform_version,
    }
    assert (model_version == "null") is not versioned
    # Registered as metadata, with the evaluation's champion values: CreateModelPackage's
    # own constraints accept every one.
    metadata = {
        **recorded,
        "champion_version": "3",
        "champion_mse": "5.90",
        "challenger_mse": "NaN",
        "evaluation_records": "1200",
    }
    assert constraint_errors(metadata, METADATA, "customerMetadataProperties") == []
    assert data_version.handler({"action": "verify_integrity", **URIS, **recorded}, None) == URIS


@pytest.mark.parametrize("versioned", [True, False])
def test_a_tampered_model_fails_verification_naming_the_mismatch(aws, versioned):
    if versioned:
        aws.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    _put(aws, MODEL_KEY, b"model bytes")
    _put(aws, TRANSFORM_KEY, b"{}")
    recorded = data_version.handler({"action": "record_integrity", **URIS}, None)
    _put(aws, MODEL_KEY, b"other model bytes")  # overwritten after approval

    with pytest.raises(data_version.DataVersionError) as error:
        data_version.handler({"action": "verify_integrity", **URIS, **recorded}, None)
    message = str(error.value)
    assert URIS["model_uri"] in message and "model_sha256" in message
    assert recorded["model_sha256"] in message


def test_a_version_without_recorded_integrity_is_refused(aws):
    _put(aws, MODEL_KEY, b"model bytes")
    _put(aws, TRANSFORM_KEY, b"{}")
    empty = dict.fromkeys(model_resolver.INTEGRITY_KEYS, "")
    with pytest.raises(data_version.DataVersionError, match="model_sha256 .* is 'missing'"):
        data_version.handler({"action": "verify_integrity", **URIS, **empty}, None)


# ------------------------------------------------------------ the resolver's champion action


def _register(sm, label, status, metadata=None):
    base = f"s3://{BUCKET}/{label}"
    return sm.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"{base}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        CustomerMetadataProperties={"transform_uri": f"{base}/transform.json", **(metadata or {})},
        DriftCheckBaselines={
            "ModelDataQuality": {
                kind: {"ContentType": "application/json", "S3Uri": f"{base}/{kind}.json"}
                for kind in ("Statistics", "Constraints")
            }
        },
    )["ModelPackageArn"]


def _champion():
    event = {
        "action": "champion",
        "model_package_group_name": GROUP,
        "fallback_model_data_url": "s3://b/new/model.tar.gz",
        "fallback_transform_uri": "s3://b/new/transform.json",
    }
    return model_resolver.handler(event, None)


def test_the_champion_is_the_newest_approved_version_or_none(aws):
    fallback = {
        "champion_version": "none",
        "champion_model_data_url": "s3://b/new/model.tar.gz",
        "champion_transform_uri": "s3://b/new/transform.json",
        # No champion attributions: a stand-in input the model card does not read.
        "champion_attributions_uri": "s3://b/new/transform.json",
        "champion_attributions": "no",
    }
    assert _champion() == fallback  # no group yet: the first model has no champion
    sm = boto3.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    _register(sm, "v1", "PendingManualApproval")
    assert _champion() == fallback  # nothing approved
    integrity = {key: f"{key}-value" for key in model_resolver.INTEGRITY_KEYS}
    _register(sm, "v2", "Approved", integrity)
    _register(sm, "v3", "PendingManualApproval")
    assert _champion() == {
        "champion_version": "2",
        "champion_model_data_url": f"s3://{BUCKET}/v2/model.tar.gz",
        "champion_transform_uri": f"s3://{BUCKET}/v2/transform.json",
        # Registered without attributions_uri (before explanations): the stand-in, flagged "no".
        "champion_attributions_uri": "s3://b/new/transform.json",
        "champion_attributions": "no",
    }
    # The resolver hands the recorded integrity values to the verification step.
    resolved = model_resolver.handler({"model_package_group_name": GROUP}, None)
    assert {key: resolved[key] for key in model_resolver.INTEGRITY_KEYS} == integrity


def test_the_report_shows_challenger_and_champion_per_version(tmp_path):
    from local_runtime.report import write_report

    versions = [
        {"version": 1, "approval_status": "Approved", "metrics": {"mse": 5.9},
         "mean_predictor_mse": 10.0, "threshold": 6.0, "champion": {"version": "none"}},
        {"version": 2, "approval_status": "PendingManualApproval", "metrics": {"mse": 4.1},
         "mean_predictor_mse": 10.0, "threshold": 6.0,
         "champion": {"version": "1", "item_count": 1200,
                      "regression_metrics": {"mse": {"value": 5.9}}},
         "recent": {"item_count": 120, "challenger": {"mse": {"value": 4.1}},
                    "champion": {"mse": {"value": 9.8}}}},
    ]  # fmt: skip
    _, page_path = write_report({"executions": [], "model_versions": versions}, tmp_path)
    page = page_path.read_text()
    assert "<td>v2</td><td>PendingManualApproval</td><td>4.10</td>" in page
    assert (
        "v1: MSE 5.90 on the same 1,200 records; on 120 recent labelled records: challenger "
        "MSE 4.10 vs champion 9.80</td>"
    ) in page
    assert "no Approved version then: challenger only" in page


def test_the_registry_e_mail_says_challenger_versus_champion():
    """The notifier's e-mail for a registered version, from the real event shape plus the
    metadata the training pipelines record."""
    from tests.test_notifier import fields, fixture, notifier

    config = notifier.load_config(None, None)
    event = fixture("model_package_registered_pending")
    metadata = {
        "challenger_mse": "4.10",
        "champion_version": "2",
        "champion_mse": "5.90",
        "evaluation_records": "1200",
    }
    event["detail"]["CustomerMetadataProperties"] = metadata
    body = notifier.build_notification(event, config).body
    assert fields(body)["Champion vs challenger"] == (
        "challenger MSE 4.10 vs champion (version 2) 5.90 on the same 1,200 records"
    )
    metadata.update(recent_records="120", challenger_recent_mse="4.1", champion_recent_mse="9.8")
    body = notifier.build_notification(event, config).body
    assert fields(body)["Champion vs challenger"] == (
        "challenger MSE 4.10 vs champion (version 2) 5.90 on the same 1,200 records; "
        "on 120 recent labelled records: challenger MSE 4.1 vs champion 9.8"
    )
    metadata["champion_version"] = "none"
    body = notifier.build_notification(event, config).body
    assert fields(body)["Champion vs challenger"] == (
        "MSE 4.10 on 1,200 test records; no Approved version to compare with; "
        "on 120 recent labelled records: challenger MSE 4.1"
    )
    metadata.update(recent_records="none")  # none held out: nothing about recent records
    body = notifier.build_notification(event, config).body
    assert fields(body)["Champion vs challenger"] == (
        "MSE 4.10 on 1,200 test records; no Approved version to compare with"
    )


# ------------------------------------------------------------------------------ end to end


@pytest.mark.e2e
@pytest.mark.xdist_group(SHARED_LOOP_GROUP)
def test_a_new_version_is_compared_with_the_champion_and_a_tampered_model_is_refused(
    champion_then_batches,
):
    """Local runtime, as `make demo` runs it (tests/shared_loops.py): v1 (no champion) is
    approved; v2 (2 boosting rounds, with registration.reject_if_not_better) records v1 as its
    champion with both MSEs on the same test rows and is registered Rejected saying why; both
    record the integrity of their artifacts; then v1's model.tar.gz is overwritten and the next
    batch run fails naming it before anything uses the model. (accuracy_mse_threshold is
    raised so that the weak v2 reaches registration: the champion comparison, not the
    threshold, rejects it.)"""
    seen = champion_then_batches["champion"]
    assert "accuracy_mse_threshold = 6.0" in seen["source_env"]
    v1, v2, report = seen["v1"], seen["v2"], seen["report"]
    assert v1["CustomerMetadataProperties"]["champion_version"] == "none"
    assert v1["CustomerMetadataProperties"]["champion_mse"] == "none"

    assert v2["ModelPackageVersion"] == 2
    metadata = v2["CustomerMetadataProperties"]
    assert metadata["champion_version"] == "1"
    assert report["champion"]["version"] == "1"
    assert report["champion"]["item_count"] == report["dataset"]["item_count"]
    assert metadata["champion_mse"] == report["formatted"]["champion_mse"] != "none"
    assert metadata["challenger_mse"] == report["formatted"]["mse"]
    assert metadata["evaluation_records"] == str(report["dataset"]["item_count"])
    assert report["challenger_is_better"] is False
    assert v2["ModelApprovalStatus"] == "Rejected"
    formatted = report["formatted"]
    assert v2["ModelPackageDescription"] == (
        f"Rejected: challenger MSE {formatted['mse']} is not below champion version 1 MSE "
        f"{formatted['champion_mse']} on the same {formatted['record_count']} test records"
    )
    # The recorded integrity is the registered model's current object.
    assert metadata["model_sha256"] == seen["model_sha256"]
    assert metadata["model_version_id"] == seen["model_version_id"]

    # v1 stays the approved one; its model is overwritten after approval.
    run, model_url = seen["tampered_run"], seen["tampered_model_url"]
    assert model_url == v1["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert run.pipeline_name == champion_then_batches["config"].env.pipeline_inf
    assert run.status == "Failed"
    assert model_url in run.failure_reason and "model_sha256" in run.failure_reason
    # Nothing used the tampered model or its transform.
    for step in ("PreprocessBatch", "CreateModel", "BatchTransform"):
        assert run.steps[step].status == "NotExecuted", step
