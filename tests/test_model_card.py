"""pipeline_scripts/model_card.py: the Markdown card of a model version, from real step outputs
(a data-quality baseline run by scripts/data_quality.py, metrics by scripts/step_common.py) and
the registry in moto."""

import json
import sys
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from pipeline_scripts.model_card import VersionDocs, card_for_version, render_card
from pipeline_scripts.module_files import load_module
from tests.conftest import SAMPLE_TRAIN_CSV, SHARED_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
BUCKET = "card-artifacts"
GROUP = "abalone-card-test"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"


def _load(name: str):
    return load_module(REPO_ROOT / "scripts" / f"{name}.py", f"card_test_{name}")


@pytest.fixture(scope="module")
def step_outputs(abalone_csv_path, tmp_path_factory) -> dict:
    """statistics.json from the real baseline step and two evaluation.json documents: a
    linear least-squares model (the challenger) and a one-feature one (the champion)."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))  # data_quality imports step_common
    try:
        data_quality, step_common = _load("data_quality"), _load("step_common")
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    frame = pd.read_csv(abalone_csv_path)
    base = tmp_path_factory.mktemp("baseline")
    (base / "input" / "data").mkdir(parents=True)
    frame.drop(columns="rings").to_csv(base / "input" / "data" / "train.csv", index=False)
    assert data_quality.main(["--mode", "baseline", "--base-dir", str(base)]) == 0
    statistics = json.loads((base / "output" / "statistics.json").read_text())

    labels = frame["rings"].to_numpy(float)
    numeric = frame.drop(columns=["rings", "sex"]).to_numpy(float)

    def evaluation(features):
        design = np.column_stack([features, np.ones(len(labels))])
        predictions = design @ np.linalg.lstsq(design, labels, rcond=None)[0]
        baseline = np.full_like(labels, labels.mean())
        return {
            "regression_metrics": step_common.regression_metrics(labels, predictions),
            "baseline_mean_predictor": step_common.regression_metrics(
                labels, baseline, with_deviation=False
            ),
        }

    return {
        "frame": frame,
        "statistics": statistics,
        "challenger": evaluation(numeric),
        "champion": evaluation(numeric[:, :1]),
    }


@pytest.fixture(scope="module")
def abalone_csv_path() -> Path:
    # Same choice as conftest's abalone_csv fixture, at module scope.
    real = SHARED_DIR / "data" / "abalone.csv"
    return real if real.exists() else SAMPLE_TRAIN_CSV


def _package(version: int, status: str, **extra) -> dict:
    """A DescribeModelPackage answer shaped like the training pipeline's versions."""
    return {
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": version,
        "ModelPackageDescription": "Trained by the training-pipeline pipeline",
        "ModelApprovalStatus": status,
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/v{version}/m.tar.gz"}]
        },
        "CustomerMetadataProperties": {
            "git_commit": "0123abcd",
            "training_data_url": f"s3://{BUCKET}/training/",
            "training_data_version": "s3://b/training/ (3 objects, sha256:00ff)",
        },
        **extra,
    }


def _row(card: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is `first_cell`."""
    for line in card.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r} in:\n{card}")


def test_card_shows_metrics_against_the_mean_predictor_and_the_champion(step_outputs):
    challenger, champion = step_outputs["challenger"], step_outputs["champion"]
    card = render_card(
        _package(2, "PendingManualApproval"),
        challenger,
        step_outputs["statistics"],
        champion=VersionDocs(_package(1, "Approved"), champion),
        hyperparameters={"max_depth": "5", "eta": "0.2"},
        attributions={"shell_weight": 1.9, "sex": 0.2, "length": 0.7},
    )
    assert card.startswith(f"# Model card: {GROUP} version 2\n")
    mse = _row(card, "mse")
    assert mse[1] == f"{challenger['regression_metrics']['mse']['value']:.4g}"
    assert mse[3] == f"{challenger['baseline_mean_predictor']['mse']['value']:.4g}"
    assert mse[4] == f"{champion['regression_metrics']['mse']['value']:.4g}"
    # All numeric features fit the labels at least as well as one of them (least squares).
    assert mse[5].startswith("better (")
    assert _row(card, "r2")[5].startswith("better (")
    assert "| metric | version 2 | ± sd | mean predictor | champion (version 1) |" in card
    # Lineage, hyperparameters sorted, attributions ranked.
    assert "- code commit: 0123abcd" in card
    assert "- training data version: s3://b/training/ (3 objects, sha256:00ff)" in card
    assert _row(card, "eta") == ["eta", "0.2"] and card.index("| eta") < card.index("| max_depth")
    explanations = card.split("## Explanations")[1]
    ranked = [explanations.index(f"| {name} |") for name in ("shell_weight", "length", "sex")]
    assert ranked == sorted(ranked)


def test_card_summarises_the_real_data_quality_baseline(step_outputs):
    frame = step_outputs["frame"]
    card = render_card(
        _package(1, "Approved"), step_outputs["champion"], step_outputs["statistics"]
    )
    assert f"{len(frame)} training records profiled." in card
    length = _row(card, "length")
    assert length[1] == "Fractional" and length[2] == "0.0%"
    assert length[3] == (
        f"mean {frame['length'].mean():.4g}, sd {frame['length'].std(ddof=0):.4g}, "
        f"range {frame['length'].min():.4g} to {frame['length'].max():.4g}"
    )
    sex = _row(card, "sex")
    assert sex[1] == "String"
    shares = frame["sex"].value_counts(normalize=True)
    top = shares.index[0]
    assert sex[3].startswith(f"3 distinct: {top} {shares[top]:.0%}")
    # Without a champion, hyperparameters or attributions the card says so.
    assert "No champion: no other version was Approved" in card
    assert "Hyperparameters\n\nNot recorded on the version." in card
    assert "No feature attributions recorded for this version." in card


def test_card_escapes_table_cells():
    card = render_card(
        _package(1, "Approved"), {}, None, hyperparameters={"objective": "reg:a|b\nc"}
    )
    assert "| objective | reg:a\\|b c |" in card
    assert "No evaluation metrics were found for this version." in card
    assert "No data-quality baseline was found for this version." in card


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield


def test_card_for_a_registered_version_reads_its_artefacts_and_rollback(aws, step_outputs):
    from pipeline_scripts.rollback import Registry, rollback

    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    s3.put_object(Bucket=BUCKET, Key="stats.json", Body=json.dumps(step_outputs["statistics"]))
    arns = []
    for label in ("champion", "challenger"):
        s3.put_object(Bucket=BUCKET, Key=f"{label}.json", Body=json.dumps(step_outputs[label]))
        uri = {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{label}.json"}
        stats = {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/stats.json"}
        package = _package(0, "Approved")
        arns.append(
            sm.create_model_package(
                ModelPackageGroupName=GROUP,
                ModelPackageDescription=package["ModelPackageDescription"],
                ModelApprovalStatus="Approved",
                InferenceSpecification={
                    **package["InferenceSpecification"],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
                ModelMetrics={"ModelQuality": {"Statistics": uri}},
                DriftCheckBaselines={
                    "ModelDataQuality": {"Statistics": stats, "Constraints": stats}
                },
                CustomerMetadataProperties=package["CustomerMetadataProperties"],
            )["ModelPackageArn"]
        )
    rollback(
        Registry(sm, s3, GROUP), "MSE 9.1 on batch 7", confirm=lambda _: True, out=lambda _: None
    )

    card = card_for_version(sm, s3, arns[1])

    assert card.startswith(f"# Model card: {GROUP} version 2\n")
    champion_mse = step_outputs["champion"]["regression_metrics"]["mse"]["value"]
    assert _row(card, "mse")[4] == f"{champion_mse:.4g}"  # version 1 read from S3
    assert f"{len(step_outputs['frame'])} training records profiled." in card
    assert "- status now: **Rejected** (Rolled back to version 1: MSE 9.1 on batch 7)" in card
    assert f"MSE 9.1 on batch 7 (batch inference then used {arns[0]})" in card
    # Version 1 has no older Approved version: no champion.
    assert "No champion" in card_for_version(sm, s3, arns[0])


@pytest.mark.e2e
def test_live_card_by_version_number_and_a_missing_version(aws, step_outputs):
    from pipeline_scripts.cli import main
    from pipeline_scripts.model_card import ModelCardError, card_for_version_number

    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    s3.put_object(Bucket=BUCKET, Key="v1.json", Body=json.dumps(step_outputs["challenger"]))
    attributions = {
        "kind": "model",
        "test": {
            "features": {
                "shell_weight": {"mean_abs": 1.9, "rank": 1},
                "sex": {"mean_abs": 0.2, "rank": 2},
            }
        },
    }
    s3.put_object(Bucket=BUCKET, Key="a1.json", Body=json.dumps(attributions))  # fmt: skip
    package = _package(0, "Approved")
    sm.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            **package["InferenceSpecification"],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelMetrics={"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/v1.json"}}},
        CustomerMetadataProperties={
            **package["CustomerMetadataProperties"], "attributions_uri": f"s3://{BUCKET}/a1.json"
        },
    )  # fmt: skip
    card = card_for_version_number(sm, s3, GROUP, 1)
    assert card.startswith(f"# Model card: {GROUP} version 1\n")
    assert "- status now: **PendingManualApproval**" in card
    assert _row(card, "shell_weight") == ["shell_weight", "1.9"]  # from attributions_uri
    with pytest.raises(ModelCardError) as caught:
        card_for_version_number(sm, s3, GROUP, 9)
    assert str(caught.value) == f"model package group '{GROUP}' has no version 9; its versions: 1"
    assert main(["model-card"]) == 1  # without --version: one line, exit 1
