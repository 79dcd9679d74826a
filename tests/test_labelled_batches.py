"""Retraining learns the drift (issue 10 point 4): the data-version Lambda's labelled_batches
action against moto (versioned bucket), and scripts/labelled_batches.py on small real data."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import boto3
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT, put, run_step_script
from tests.test_pipeline_lambdas import aws, training_data_version  # noqa: F401 - fixture

BUCKET = "mlops-data"
BASE = f"s3://{BUCKET}/abalone"
EVENT = {
    "action": "labelled_batches",
    "labels_uri": f"{BASE}/labels/",
    "predictions_uri": f"{BASE}/predictions/",
    "snapshot_uri": f"{BASE}/labelled-batches/",
    "days": 30,
}
BATCH = b"sex,length,rings\nM,0.41,\nF,0.52,\nI,0.30,\n"


def _run(**changes) -> dict:
    return training_data_version.handler({**EVENT, **changes}, None)


@pytest.fixture
def s3(aws):  # noqa: F811 - the moto fixture
    client = boto3.client("s3")
    client.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def _scored(s3, batch_id: str, body: bytes = BATCH) -> dict:
    """A batch as the inference pipeline leaves it: the object and its scoring run's report."""
    key = f"abalone/inference/{batch_id}.csv"
    uploaded = s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    report = {"record_count": 3, "batch_uri": f"s3://{BUCKET}/{key}",
              "batch_version": uploaded["VersionId"], "batch_etag": uploaded["ETag"]}  # fmt: skip
    s3.put_object(
        Bucket=BUCKET,
        Key=f"abalone/predictions/{batch_id}/report/batch_report.json",
        Body=json.dumps(report).encode(),
    )
    return report


def _labels(s3, batch_id: str, body: bytes = b"record_id,label\n1,9\n3,11\n") -> dict:
    return s3.put_object(Bucket=BUCKET, Key=f"abalone/labels/{batch_id}.labels.csv", Body=body)


def _read(s3, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_copies_the_exact_versions_and_writes_the_lineage_manifest(s3):
    report = _scored(s3, "b1")
    labels = _labels(s3, "b1")
    # Overwritten after it was scored: training must learn from what was scored and labelled.
    s3.put_object(Bucket=BUCKET, Key="abalone/inference/b1.csv", Body=b"sex,length\nX,9\n")

    result = _run()

    manifest = json.loads(_read(s3, result["manifest_uri"]))
    assert result["manifest_uri"] == result["snapshot_uri"] + "manifest.json"
    assert result["snapshot_uri"].startswith(f"{BASE}/labelled-batches/")
    (entry,) = manifest["labelled_batches"]
    assert entry["batch"]["uri"] == report["batch_uri"]
    assert entry["batch"]["version_id"] == report["batch_version"]
    assert entry["labels"]["version_id"] == labels["VersionId"]
    assert _read(s3, entry["batch"]["snapshot_uri"]) == BATCH
    assert entry["batch"]["snapshot_uri"] == f"{result['snapshot_uri']}batches/b1/b1.csv"
    assert entry["labels"]["snapshot_uri"] == f"{result['snapshot_uri']}labels/b1/b1.labels.csv"
    assert entry["batch"]["sha256"] == hashlib.sha256(BATCH).hexdigest()
    assert result["labelled_batches"] == manifest["summary"]
    assert result["labelled_batches"].startswith("batches=1 sha256=")


def test_same_labelled_set_is_the_same_snapshot_and_new_labels_another(s3):
    from pipeline_scripts.api_model import constraint_errors, member_shape

    _scored(s3, "b1")
    _labels(s3, "b1")
    first, again = _run(), _run()
    assert first == again
    _labels(s3, "b1", b"record_id,label\n1,10\n")  # corrected labels: a new version
    changed = _run()
    assert changed["snapshot_uri"] != first["snapshot_uri"]
    assert changed["labelled_batches"] != first["labelled_batches"]
    # Recorded on the model version: a valid CustomerMetadataValue.
    shape = member_shape("CreateModelPackage", "CustomerMetadataProperties")
    assert constraint_errors({"labelled_batches": changed["labelled_batches"]}, shape, "m") == []


def test_only_labels_that_arrived_within_the_window(s3):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    for batch_id in ("old", "new"):
        _scored(s3, batch_id)
        _labels(s3, batch_id)
    old = s3_backends[DEFAULT_ACCOUNT_ID]["global"].get_object(
        BUCKET, "abalone/labels/old.labels.csv"
    )
    old.last_modified -= timedelta(days=40)

    def batch_ids(days):
        manifest = json.loads(_read(s3, _run(days=days)["manifest_uri"]))
        return [entry["batch_id"] for entry in manifest["labelled_batches"]]

    assert batch_ids(30) == ["new"]
    assert batch_ids(60) == ["new", "old"]
    assert batch_ids(0) == []
    assert _run(days=0)["labelled_batches"].startswith("batches=0 sha256=")


def test_deleted_labels_and_other_files_under_the_prefix_are_ignored(s3):
    _scored(s3, "b1")
    _labels(s3, "b1")
    s3.delete_object(Bucket=BUCKET, Key="abalone/labels/b1.labels.csv")
    s3.put_object(Bucket=BUCKET, Key="abalone/labels/notes.txt", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="abalone/labels/old/b1.labels.csv", Body=b"x")
    assert _run()["labelled_batches"].startswith("batches=0 ")


def test_labels_for_a_batch_never_scored_name_the_labels_and_the_missing_report(s3):
    _labels(s3, "ghost")
    with pytest.raises(training_data_version.DataVersionError) as error:
        _run()
    message = str(error.value)
    assert message.startswith(f"{BASE}/labels/ghost.labels.csv: no batch report at ")
    assert f"{BASE}/predictions/ghost/report/batch_report.json" in message


def test_a_batch_version_that_no_longer_exists_is_named(s3):
    report = _scored(s3, "b1")
    _labels(s3, "b1")
    s3.delete_object(
        Bucket=BUCKET, Key="abalone/inference/b1.csv", VersionId=report["batch_version"]
    )
    with pytest.raises(training_data_version.DataVersionError) as error:
        _run()
    assert f"cannot copy {report['batch_uri']} version {report['batch_version']}" in str(
        error.value
    )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("days", -1, "'days' is -1; expected a whole number >= 0"),
        ("days", "30", "'days' is '30'"),
        ("labels_uri", f"{BASE}/labels", "expected a prefix ending in '/'"),
        ("snapshot_uri", "bucket/x/", "'snapshot_uri' must be an S3 URI"),
    ],
)
def test_bad_event_names_the_field(aws, field, value, expected):  # noqa: F811
    with pytest.raises(training_data_version.DataVersionError, match=expected.replace("(", r"\(")):
        _run(**{field: value})


# ------------------------------------------------------------------- scripts/labelled_batches.py

TRAIN = "sex,length,rings\nM,0.455,15\nF,0.53,9\n"


def _snapshot(base, batches: dict) -> None:
    """input/train and input/snapshot as the step receives them; batches: id -> (csv, labels)."""
    put(base / "input" / "train" / "train.csv", TRAIN)
    entries = []
    for batch_id, (batch, labels) in batches.items():
        put(base / "input" / "snapshot" / "batches" / batch_id / f"{batch_id}.csv", batch)
        put(base / "input" / "snapshot" / "labels" / batch_id / f"{batch_id}.labels.csv", labels)
        entries.append({"batch_id": batch_id, "batch": {"uri": f"s3://b/in/{batch_id}.csv"},
                        "labels": {"uri": f"s3://b/labels/{batch_id}.labels.csv"}})  # fmt: skip
    manifest = {"labelled_batches": entries, "summary": f"batches={len(entries)} sha256=0"}
    put(base / "input" / "snapshot" / "manifest.json", json.dumps(manifest))


def test_joins_line_number_ids_and_leaves_out_unlabelled_rows(tmp_path):
    _snapshot(tmp_path, {"b1": ("sex,length\nM,0.41\nF,0.52\nI,0.30\n",
                                "record_id,label\n3,7\n1,11\n9,5\n")})  # fmt: skip
    run_step_script("labelled_batches.py", "--base-dir", tmp_path, "--target", "rings")

    out = tmp_path / "output"
    assert (out / "training" / "train.csv").read_text() == TRAIN
    joined = pd.read_csv(out / "training" / "labelled_batches.csv")
    assert list(joined.columns) == ["sex", "length", "rings"]
    # Line 1 (M) got 11, line 3 (I) got 7; line 2 has no label; id 9 is not in the batch.
    assert joined.to_dict("records") == [
        {"sex": "M", "length": 0.41, "rings": 11.0},
        {"sex": "I", "length": 0.30, "rings": 7.0},
    ]
    report = json.loads((out / "report" / "labelled_batches.json").read_text())
    assert (report["training_data_rows"], report["labelled_rows"], report["training_records"]) == (
        2, 2, 4)  # fmt: skip
    (batch,) = report["batches"]
    assert (batch["batch_rows"], batch["unlabelled_rows"], batch["unmatched_labels"]) == (3, 1, 1)


def test_joins_on_the_id_column_and_replaces_in_batch_labels(tmp_path):
    _snapshot(tmp_path, {"b1": ("id,sex,length,rings\n70,M,0.41,1\n42,F,0.52,\n",
                                "record_id,label\n42,8\n")})  # fmt: skip
    run_step_script("labelled_batches.py", "--base-dir", tmp_path, "--target", "rings",
                    "--id-column", "id")  # fmt: skip
    joined = pd.read_csv(tmp_path / "output" / "training" / "labelled_batches.csv")
    assert joined.to_dict("records") == [{"sex": "F", "length": 0.52, "rings": 8.0}]


def test_the_demo_batch_and_its_late_labels_become_training_rows(tmp_path):
    data = REPO_ROOT / "data" / "later"
    late = "abalone_synthetic_batch_late"
    _snapshot(tmp_path, {late: ((data / f"{late}.csv").read_text(),
                                (data / f"{late}.labels.csv").read_text())})  # fmt: skip
    put(
        tmp_path / "input" / "train" / "train.csv",
        REPO_ROOT / "data/train/abalone_synthetic_train.csv",
    )
    run_step_script("labelled_batches.py", "--base-dir", tmp_path, "--target", "rings")
    joined = pd.read_csv(tmp_path / "output" / "training" / "labelled_batches.csv")
    batch = pd.read_csv(data / f"{late}.csv")
    labels = pd.read_csv(data / f"{late}.labels.csv")
    assert len(joined) == len(labels) == len(batch)
    expected = batch.assign(
        rings=labels.set_index("record_id").loc[range(1, len(batch) + 1), "label"].to_numpy()
    )
    pd.testing.assert_frame_equal(joined, expected, check_dtype=False)


def _split(base, batches, *args):
    """(trained-on rows, held-out rows, report) of labelled_batches.py on these batches."""
    _snapshot(base, batches)
    run_step_script("labelled_batches.py", "--base-dir", base, "--target", "rings", *args)
    out = base / "output"
    report = json.loads((out / "report" / "labelled_batches.json").read_text())
    recent = out / "recent" / "recent.csv"
    held = pd.read_csv(recent) if recent.exists() else None
    return pd.read_csv(out / "training" / "labelled_batches.csv"), held, report


def test_a_seeded_share_of_the_labelled_rows_is_held_out_for_evaluation(tmp_path):
    data = REPO_ROOT / "data" / "later"
    late = "abalone_synthetic_batch_late"
    batch = (data / f"{late}.csv").read_text(), (data / f"{late}.labels.csv").read_text()
    args = ("--test-fraction", "0.15", "--seed", "42")
    trained, held, report = _split(tmp_path / "a", {late: batch}, *args)
    # Disjoint, and together every labelled row: no row is both trained on and scored.
    assert len(trained) + len(held) == report["labelled_rows"] == 1000
    assert 100 < len(held) < 200  # about 15%
    assert (report["labelled_rows_trained_on"], report["recent_rows_held_out"]) == (
        len(trained), len(held))  # fmt: skip
    assert report["batches"][0]["held_out_rows"] == len(held)
    assert report["training_records"] == 2 + len(trained)
    # Together exactly the rows a run without holdout trains on (as a multiset).
    everything, _, _ = _split(tmp_path / "all", {late: batch}, "--test-fraction", "0")
    columns = list(everything.columns)
    pd.testing.assert_frame_equal(
        pd.concat([trained, held]).sort_values(columns).reset_index(drop=True),
        everything.sort_values(columns).reset_index(drop=True),
    )
    assert list(held.columns) == ["sex", "length", "rings"]
    # Deterministic: the same set splits the same way (step cache, fingerprint) ...
    again_trained, again_held, _ = _split(tmp_path / "b", {late: batch}, *args)
    pd.testing.assert_frame_equal(again_held, held)
    pd.testing.assert_frame_equal(again_trained, trained)
    # ... and a row held out stays held out when another batch joins the set: an earlier
    # retraining's champion never trained on the rows it is compared on.
    more = {late: batch, "b2": ("sex,length\n" + "M,0.5\n" * 40, "record_id,label\n" + "".join(
        f"{i},{i % 9 + 3}\n" for i in range(1, 41)))}  # fmt: skip
    _, grown, _ = _split(tmp_path / "c", more, *args)
    pd.testing.assert_frame_equal(grown.iloc[: len(held)], held)
    # Another seed, another share.
    _, reseeded, _ = _split(tmp_path / "d", {late: batch}, "--test-fraction", "0.15", "--seed", "7")
    assert not reseeded.equals(held)


def test_nothing_held_out_leaves_a_marker_not_an_empty_output(tmp_path):
    trained, held, report = _split(
        tmp_path, {"b1": ("sex,length\nM,0.41\n", "record_id,label\n1,11\n")},
        "--test-fraction", "0.0",
    )  # fmt: skip
    assert held is None and len(trained) == 1 and report["recent_rows_held_out"] == 0
    assert (tmp_path / "output" / "recent" / "no_recent_rows.txt").is_file()


def test_training_data_is_copied_unchecked_for_preprocess_to_judge(tmp_path):
    """Without labelled batches, bad training data passes through unchanged: Preprocess
    names what is wrong, as before the step existed."""
    _snapshot(tmp_path, {})
    bad = "sex,length,rings\nM,n/a?,15\n"
    put(tmp_path / "input" / "train" / "train.csv", bad)
    run_step_script("labelled_batches.py", "--base-dir", tmp_path, "--target", "rings")
    assert (tmp_path / "output" / "training" / "train.csv").read_text() == bad
    assert not (tmp_path / "output" / "training" / "labelled_batches.csv").exists()
    report = json.loads((tmp_path / "output" / "report" / "labelled_batches.json").read_text())
    assert (report["training_records"], report["batches"]) == (1, [])


@pytest.mark.parametrize(
    ("batch", "labels", "expected"),
    [
        ("sex,length\nM,1\n", "record_id,label\n1,3\n1,4\n", "record_id 1 appears on lines 2, 3"),
        ("sex\nM\n", "record_id,label\n1,3\n", "b1.csv: required column 'length' is missing"),
    ],
)
def test_bad_batch_or_labels_fail_naming_the_file(tmp_path, batch, labels, expected):
    _snapshot(tmp_path, {"b1": (batch, labels)})
    result = run_step_script(
        "labelled_batches.py", "--base-dir", tmp_path, "--target", "rings", expect_ok=False
    )
    assert result.returncode == 1
    assert expected in result.stderr.strip().splitlines()[-1]


# ------------------------------------------------------------------------------- end to end


@pytest.mark.e2e
def test_same_labelled_set_registers_nothing_and_new_labels_register(tmp_path):
    """The training pipeline as upserted, three times: the late batch's labels (one new
    version), the same again (cached, nothing registered: the e-mail's step says so), then a
    corrected labels file (a new labelled set: trained and registered)."""
    import yaml

    from local_runtime.aws import embedded_aws
    from local_runtime.loop import create_project_bucket
    from local_runtime.runner import PipelineRunner
    from pipeline_scripts.config import DEFAULT_SETTINGS_FILE, load_config
    from pipeline_scripts.deploy import upload_code, upsert_pipeline
    from pipeline_scripts.render import render

    settings = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    settings["training"]["hyperparameters"]["num_round"] = 30
    put(tmp_path / "pipelines.yaml", yaml.safe_dump(settings))
    config = load_config(
        REPO_ROOT / "env_files" / "dev_env.tfvars", settings_file=tmp_path / "pipelines.yaml"
    )
    env = config.env
    late = REPO_ROOT / "data" / "later" / "abalone_synthetic_batch_late"
    with embedded_aws(env.region):
        s3 = boto3.client("s3")
        create_project_bucket(env)
        prefix = env.s3_base_uri.removeprefix(f"s3://{env.bucket_name}/")
        train_key = env.train_data_uri.removeprefix(f"s3://{env.bucket_name}/") + "train.csv"
        s3.upload_file(str(REPO_ROOT / "data/train/abalone_synthetic_train.csv"),
                       env.bucket_name, train_key)  # fmt: skip
        # The late batch as the inference pipeline leaves it: the object and its report.
        batch_key = env.inference_data_uri.removeprefix(f"s3://{env.bucket_name}/") + late.name
        uploaded = s3.put_object(
            Bucket=env.bucket_name,
            Key=f"{batch_key}.csv",
            Body=late.with_suffix(".csv").read_bytes(),
        )
        report = {
            "batch_uri": f"s3://{env.bucket_name}/{batch_key}.csv",
            "batch_version": uploaded["VersionId"],
            "batch_etag": uploaded["ETag"],
        }
        s3.put_object(
            Bucket=env.bucket_name,
            Key=f"{prefix}/predictions/{late.name}/report/batch_report.json",
            Body=json.dumps(report).encode(),
        )
        labels_key = f"{prefix}/labels/{late.name}.labels.csv"
        labels = (late.parent / f"{late.name}.labels.csv").read_text()
        s3.put_object(Bucket=env.bucket_name, Key=labels_key, Body=labels.encode())
        rendered = render(config)
        upload_code(s3, rendered.code_assets, env.kms_key)
        training = next(p for p in rendered.pipelines if p.name == env.pipeline_train)
        upsert_pipeline(boto3.client("sagemaker"), training, config, recreate=False)
        runner = PipelineRunner(tmp_path / "runs")

        # Few boosting rounds for speed: the threshold is not what this test is about.
        lenient = {"MseThreshold": "10"}
        first = runner.start(env.pipeline_train, lenient)
        same = runner.start(env.pipeline_train, lenient)
        # Corrected labels for one record: a new version of the labels file.
        s3.put_object(Bucket=env.bucket_name, Key=labels_key,
                      Body=labels.replace("\n1,11\n", "\n1,12\n").encode())  # fmt: skip
        corrected = runner.start(env.pipeline_train, lenient)

        versions = boto3.client("sagemaker").list_model_packages(
            ModelPackageGroupName=env.model_package_group_name
        )["ModelPackageSummaryList"]
    assert [e.status for e in (first, same, corrected)] == ["Succeeded"] * 3, first.failure_reason
    registered = [e.steps["RegisterModel"].status for e in (first, same, corrected)]
    assert registered == ["Succeeded", "NotExecuted", "Succeeded"]
    assert len(versions) == 2
    labelled = [e.step("CollectLabelledBatches").outputs["labelled_batches"]
                for e in (first, same, corrected)]  # fmt: skip
    assert labelled[0] == labelled[1] != labelled[2]
    # The same snapshot (named by its content): the step cache serves the second run, and a
    # corrected label misses it from JoinLabelledBatches on.
    for name in ("JoinLabelledBatches", "Preprocess", "TrainModel"):
        assert same.step(name).cache_hit_source == first.execution_arn, name
        assert corrected.step(name).cache_hit_source is None, name
    assert labelled[0].startswith("batches=1 ")
    report = json.loads(
        (first.steps["JoinLabelledBatches"].workdir / "processing" / "output" / "report"
         / "labelled_batches.json").read_text()
    )  # fmt: skip
    # Trained on the labelled rows less the seeded share held out (EvaluateModel's recent).
    held = report["recent_rows_held_out"]
    assert report["labelled_rows_trained_on"] + held == 1000 and held > 0
    assert report["training_records"] == 4000 + 1000 - held
