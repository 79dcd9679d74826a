"""scripts/explain.py on real data: a model trained by scripts/train.py on abalone (the
`abalone_csv` fixture) after preprocess.py's fit, batches in preprocess.py's apply format, and
the renderers in code/notifier/explanations.py that the notifier and the report use."""

import json
import shutil
import sys
import tarfile

import boto3
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from pipeline_scripts.module_files import load_module
from tests.conftest import REPO_ROOT, put
from tests.conftest import run_step_script as run

SCRIPTS = REPO_ROOT / "scripts"
FEATURES = [
    "sex", "length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
    "shell_weight",
]  # fmt: skip


explanations = load_module(REPO_ROOT / "code" / "notifier" / "explanations.py")
sys.path.insert(0, str(SCRIPTS))  # explain.py imports evaluate and step_common beside it
script = load_module(SCRIPTS / "explain.py", "explain_under_test")


def train_model(fit_base, out, *flags):
    """scripts/train.py on the fitted splits; returns the model.tar.gz the job would upload."""
    model_dir = out / "model"
    env = {
        "SM_CHANNEL_TRAIN": str(fit_base / "output" / "train"),
        "SM_CHANNEL_VALIDATION": str(fit_base / "output" / "validation"),
        "SM_MODEL_DIR": str(model_dir),
    }
    run("train.py", *flags, env=env)
    archive = out / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(model_dir / "xgboost-model", arcname="xgboost-model")
    return archive


@pytest.fixture(scope="module")
def cache():
    return {}


@pytest.fixture
def model(abalone_csv, cache, tmp_path_factory):
    """(fit base, model.tar.gz, booster), made once per module: one fit, one small model."""
    if "model" not in cache:
        base = tmp_path_factory.mktemp("fit")
        put(base / "input" / "data" / "abalone.csv", abalone_csv)
        run("preprocess.py", "--mode", "fit", "--base-dir", base, "--target", "rings")
        out = tmp_path_factory.mktemp("train")
        archive = train_model(base, out, "--num_round", 60, "--eta", 0.1)
        booster = xgb.Booster()
        with tarfile.open(archive) as tar:
            booster.load_model(bytearray(tar.extractfile("xgboost-model").read()))
        cache["model"] = base, archive, booster
    return cache["model"]


def held_out(fit_base):
    """Transformed rows the model never trained on (test and validation splits, no target)."""
    parts = [fit_base / "output" / s / f"{s}.csv" for s in ("test", "validation")]
    return np.vstack([np.loadtxt(p, delimiter=",", ndmin=2)[:, 1:] for p in parts])


def layout(model, base, batch=None, archive=None):
    """A processing-job layout for explain.py; batch: a transformed matrix written as batch.csv
    with record ids 0..n-1 (preprocess.py --mode apply's format)."""
    fit_base, default_archive, _ = model
    put(base / "input" / "model" / "model.tar.gz", archive or default_archive)
    put(
        base / "input" / "transform" / "transform.json",
        fit_base / "output/transform/transform.json",
    )
    put(base / "input" / "train" / "train.csv", fit_base / "output" / "train" / "train.csv")
    put(base / "input" / "test" / "test.csv", fit_base / "output" / "test" / "test.csv")
    if batch is not None:
        path = base / "input" / "batch" / "batch.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(batch)
        frame.insert(0, "record_id", np.arange(len(batch)))
        frame.to_csv(path, header=False, index=False)
    return base


def explain(model, base, mode, batch=None, *flags, archive=None):
    """explain.py's main() in this process (the subprocess's import time would dominate the
    tests; the CLI itself is exercised by the error-line test). Returns the job base."""
    layout(model, base, batch, archive)
    assert script.main(["--mode", mode, "--base-dir", str(base), *map(str, flags)]) == 0
    return base


def attributions(base):
    return json.loads((base / "output" / "explanations" / "attributions.json").read_text())


def bootstrap(rows, size, seed, shift=None):
    """A batch drawn with replacement from rows; shift=(column, sd) adds sd to that
    standardised column, i.e. shifts the raw feature by that many training standard deviations."""
    batch = rows[np.random.default_rng(seed).integers(0, len(rows), size)].copy()
    if shift:
        batch[:, shift[0]] += shift[1]
    return batch


def test_per_record_contributions_sum_to_predictions_with_the_batch_ids(model, tmp_path):
    fit_base, _, booster = model
    batch = held_out(fit_base)[:300]
    base = explain(model, tmp_path, "batch", batch, "--per-record")
    table = pd.read_csv(base / "output" / "per_record" / "attributions.csv")
    assert list(table.columns) == ["record_id", *FEATURES, "bias"]
    assert table["record_id"].tolist() == list(range(300))
    # xgboost's SHAP identity: features + bias = the prediction (float32 arithmetic).
    predictions = booster.predict(xgb.DMatrix(batch))
    np.testing.assert_allclose(table[[*FEATURES, "bias"]].sum(axis=1), predictions, atol=1e-3)
    summary = attributions(base)["batch"]
    assert summary["rows"] == 300
    np.testing.assert_allclose(
        summary["features"]["shell_weight"]["mean_abs"], table["shell_weight"].abs().mean()
    )


def test_one_hot_columns_sum_back_to_their_feature(model, tmp_path):
    fit_base, _, booster = model
    batch = held_out(fit_base)[:200]
    base = explain(model, tmp_path, "batch", batch, "--per-record")
    table = pd.read_csv(base / "output" / "per_record" / "attributions.csv")
    spec = json.loads((fit_base / "output" / "transform" / "transform.json").read_text())
    raw = booster.predict(xgb.DMatrix(batch), pred_contribs=True)
    columns = spec["output_columns"]
    sex = [columns.index(f"sex_{c}") for c in spec["categorical"]["sex"]["categories"]]
    assert len(sex) == 3  # F, I, M
    np.testing.assert_allclose(table["sex"], raw[:, sex].sum(axis=1), atol=1e-5)
    np.testing.assert_allclose(
        table["shell_weight"], raw[:, columns.index("shell_weight")], atol=1e-6
    )
    np.testing.assert_allclose(table["bias"], raw[:, -1], atol=1e-6)


def test_shifted_feature_changes_its_attribution_while_clean_bootstrap_does_not(model, tmp_path):
    fit_base, _, _ = model
    rows = held_out(fit_base)
    spec = json.loads((fit_base / "output" / "transform" / "transform.json").read_text())
    height = spec["output_columns"].index("height")

    clean = explain(model, tmp_path / "clean", "batch", bootstrap(rows, 1000, seed=1))
    document = attributions(clean)
    assert {c["verdict"] for c in document["changes"].values()} == {"stable"}
    assert document["sentences"] == []
    lines = explanations.explanation_lines(document)
    assert lines[0].startswith("Top drivers of this batch's 1000 predictions: shell_weight")
    assert lines[-1] == "No feature's attribution changed against the training baseline."

    shifted_batch = bootstrap(rows, 1000, seed=1, shift=(height, 0.5))
    shifted = explain(model, tmp_path / "shifted", "batch", shifted_batch)
    document = attributions(shifted)
    assert document["changes"]["height"]["verdict"] == "changed"
    before = document["baseline"]["features"]["height"]
    after = document["batch"]["features"]["height"]
    assert after["mean_abs"] > before["mean_abs"]  # heights further from the mean drive more
    assert document["sentences"][0].startswith(
        f"height: mean |contribution| {before['mean_abs']:.3g} → {after['mean_abs']:.3g}"
    )
    assert document["sentences"][0].endswith(", changed")
    lines = explanations.explanation_lines(document)
    assert f"- {document['sentences'][0]}" in lines
    header, rows = explanations.batch_table(document)
    assert [row[0] for row in rows] == sorted(
        FEATURES, key=lambda name: document["batch"]["features"][name]["rank"]
    )
    row = next(row for row in rows if row[0] == "height")
    assert row[1:3] == [
        f"{before['mean_abs']:.3g} ({before['rank']})",
        f"{after['mean_abs']:.3g} ({after['rank']})",
    ]
    assert row[-1] == "changed"
    assert [r[-1] for r in rows].count("changed") == len(document["sentences"])
    table = explanations.markdown(header, rows).splitlines()
    assert len(table) == 2 + len(FEATURES) and table[1] == "|" + " --- |" * len(header)


def test_small_clean_batches_do_not_raise_changes(model, tmp_path):
    """The standard-error guard: 200-row clean batches vary a lot, and are still stable."""
    rows = held_out(model[0])
    for seed in range(3):
        base = explain(model, tmp_path / str(seed), "batch", bootstrap(rows, 200, seed))
        assert attributions(base)["sentences"] == []


def test_baseline_sample_is_bounded_and_seeded(model, tmp_path):
    train_rows = len(np.loadtxt(model[0] / "output/train/train.csv", delimiter=",", ndmin=2))
    batch = held_out(model[0])[:50]
    runs = {}
    for name, flags in [("a", ["--seed", 3]), ("b", ["--seed", 3]), ("c", ["--seed", 4])]:
        base = explain(model, tmp_path / name, "batch", batch, "--baseline-rows", 150, *flags)
        runs[name] = attributions(base)["baseline"]
    assert runs["a"]["rows"] == 150
    assert runs["a"]["source_rows"] == train_rows
    assert runs["a"] == runs["b"]  # same seed, same sample
    assert runs["a"]["features"] != runs["c"]["features"]
    # The batch summary is of a seeded sample too (unless every record is written).
    base = explain(model, tmp_path / "d", "batch", held_out(model[0])[:500], "--batch-rows", 120)
    assert (attributions(base)["batch"]["rows"], attributions(base)["batch"]["source_rows"]) == (
        120,
        500,
    )
    # A bound above the data is the whole train split.
    base = explain(model, tmp_path / "all", "batch", batch, "--baseline-rows", 10**6)
    assert attributions(base)["baseline"]["rows"] == train_rows


def test_output_size_does_not_grow_with_batch_rows(model, tmp_path):
    rows = held_out(model[0])

    def shape(value):
        if isinstance(value, dict):
            return {key: shape(item) for key, item in value.items()}
        return type(value).__name__

    sizes, shapes = [], []
    for size in (20, 5000):
        base = explain(model, tmp_path / str(size), "batch", bootstrap(rows, size, seed=2))
        path = base / "output" / "explanations" / "attributions.json"
        document = json.loads(path.read_text())
        document.pop("sentences")  # one per changed feature, at most one per feature
        sizes.append(path.stat().st_size)
        shapes.append(shape(document))
    assert shapes[0] == shapes[1]
    assert max(sizes) < 8_000


@pytest.mark.e2e
def test_model_mode_global_importance_and_champion_table(model, tmp_path):
    fit_base, _, _ = model
    test_rows = len(np.loadtxt(fit_base / "output/test/test.csv", delimiter=",", ndmin=2))
    base = explain(model, tmp_path / "version", "model")
    version = attributions(base)
    assert version["kind"] == "model"
    assert version["test"]["rows"] == test_rows
    features = version["test"]["features"]
    assert sorted(v["rank"] for v in features.values()) == list(range(1, len(FEATURES) + 1))
    assert sum(v["share"] for v in features.values()) == pytest.approx(1.0)
    importance = explanations.global_importance(version)
    assert list(importance) == FEATURES
    assert max(importance, key=importance.get) == next(
        name for name, v in features.items() if v["rank"] == 1
    )
    line = explanations.explanation_lines(version)[0]
    assert line.startswith(f"Top drivers on the {test_rows}-row test split: ")

    # A champion trained differently: the table puts both side by side, this version's order.
    champion_archive = train_model(fit_base, tmp_path / "champion", "--num_round", 15)
    base = explain(model, tmp_path / "champion_explain", "model", archive=champion_archive)
    champion = attributions(base)
    table = explanations.importance_table(version, champion).splitlines()
    assert table[0].startswith("| feature | this version") and "champion" in table[0]
    assert len(table) == 2 + len(FEATURES)
    first = next(name for name, v in features.items() if v["rank"] == 1)
    new, old = features[first]["mean_abs"], champion["test"]["features"][first]["mean_abs"]
    assert table[2] == (
        f"| {first} | {new:.3g} (1) | {old:.3g} "
        f"({champion['test']['features'][first]['rank']}) | {new / old - 1:+.0%} |"
    )
    assert "champion" not in explanations.importance_table(version)


def test_batch_with_the_wrong_columns_is_one_clear_line(model, tmp_path):
    batch = held_out(model[0])[:10, :-1]  # one feature column short
    base = layout(model, tmp_path, batch)
    result = run("explain.py", "--mode", "batch", "--base-dir", base, expect_ok=False)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"explain: {base / 'input' / 'batch' / 'batch.csv'}: 10 columns; expected 11 (an id or "
        f"target column, then the 10 columns the model was trained on)"
    )


def test_step_factories_render_jobs_that_explain_py_accepts():
    """The rendered ExplainModel/ExplainBatch jobs: explain.py from the bundle, the inputs at the
    paths it reads, the outputs it writes, and arguments its own parser accepts."""
    # Through pipeline_scripts, which sets the region the SDK needs before importing it.
    from pipeline_scripts.assets import StepCode
    from pipeline_scripts.config import load_config
    from pipeline_scripts.explain_step import (
        ExplainSettings,
        explain_batch_step,
        explain_model_step,
    )
    from pipeline_scripts.render import offline_session
    from pipeline_scripts.steps import StepFactory
    from pipeline_scripts.training_pipeline import ParameterString, Pipeline

    config = load_config(REPO_ROOT / "env_files" / "dev_env.tfvars")
    session = offline_session(config)
    steps = StepFactory(
        config, session, "explain-test", StepCode(f"{config.env.s3_base_uri}/code"),
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5", caching=False,
    )  # fmt: skip
    uri = ParameterString("Uri", default_value="s3://bucket/prefix")
    common = {"model_data_url": uri, "transform_uri": uri}
    built = [
        explain_model_step(steps, train_uri=uri, test_uri=uri, **common),
        explain_batch_step(
            steps,
            baseline_uri=uri,
            batch_uri=uri,
            settings=ExplainSettings(per_record=True),
            **common,
        ),
    ]
    pipeline = Pipeline(
        name="explain-test", parameters=[uri], steps=built, sagemaker_session=session
    )
    jobs = {s["Name"]: s["Arguments"] for s in json.loads(pipeline.definition())["Steps"]}
    expected = {
        "ExplainModel": ({"model", "transform", "train", "test"}, ["explanations"]),
        "ExplainBatch": (
            {"model", "transform", "baseline", "batch"},
            ["explanations", "per_record"],
        ),
    }
    for name, (inputs, outputs) in expected.items():
        job = jobs[name]
        entrypoint = job["AppSpecification"]["ContainerEntrypoint"]
        assert entrypoint == ["python3", "/opt/ml/processing/input/code/explain.py"]
        paths = {i["InputName"]: i["S3Input"]["LocalPath"] for i in job["ProcessingInputs"]}
        assert paths == {n: f"/opt/ml/processing/input/{n}" for n in inputs | {"code"}}
        written = job["ProcessingOutputConfig"]["Outputs"]
        assert [o["OutputName"] for o in written] == outputs
        assert [o["S3Output"]["LocalPath"] for o in written] == [
            f"/opt/ml/processing/output/{o}" for o in outputs
        ]
        args = script.parse_args(job["AppSpecification"]["ContainerArguments"])
        assert (args.mode, args.per_record) == (
            name.removeprefix("Explain").lower(),
            name == "ExplainBatch",
        )
        assert (args.baseline_rows, args.batch_rows, args.min_change) == (2000, 20000, 0.25)


def test_batch_reuses_the_baseline_recorded_at_training_time(model, tmp_path, capsys):
    batch = held_out(model[0])[:100]
    sample = ["--baseline-rows", 300, "--seed", 5]
    recorded = attributions(explain(model, tmp_path / "model", "model", None, *sample))
    # The same sample computed in batch mode from the train split...
    computed = attributions(explain(model, tmp_path / "computed", "batch", batch, *sample))
    assert computed["baseline"] == recorded["baseline"]
    # ...and read from the version's file, with no train split present.
    base = layout(model, tmp_path / "reused", batch)
    shutil.rmtree(base / "input" / "train")
    put(base / "input" / "baseline" / "attributions.json", tmp_path / "model" / "output" /
        "explanations" / "attributions.json")  # fmt: skip
    assert script.main(["--mode", "batch", "--base-dir", str(base)]) == 0
    assert attributions(base)["baseline"] == recorded["baseline"]

    # A file of a model with other features is refused in one line.
    recorded["baseline"]["features"].pop("sex")
    path = base / "input" / "baseline" / "attributions.json"
    path.write_text(json.dumps(recorded))
    capsys.readouterr()
    assert script.main(["--mode", "batch", "--base-dir", str(base)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"explain: {path}: baseline features {FEATURES[1:]}; expected {FEATURES} from "
        f"transform.json (the attributions of another model version?)"
    )


def test_a_version_without_attributions_samples_its_train_split_or_reports_the_batch_alone(
    model, tmp_path
):
    """What the model resolver passes as `baseline` for a version registered before
    explanations: its train split (CSV files), or a folder with neither file."""
    batch = held_out(model[0])[:200]
    sample = ["--baseline-rows", 300, "--seed", 5]
    computed = attributions(explain(model, tmp_path / "computed", "batch", batch, *sample))
    base = layout(model, tmp_path / "legacy", batch)
    (base / "input" / "train").rename(base / "input" / "baseline")
    assert script.main(["--mode", "batch", "--base-dir", str(base), *map(str, sample)]) == 0
    assert attributions(base)["baseline"] == computed["baseline"]

    alone = layout(model, tmp_path / "alone", batch)
    shutil.rmtree(alone / "input" / "train")
    put(alone / "input" / "baseline" / "transform.json",
        alone / "input" / "transform" / "transform.json")  # fmt: skip
    assert script.main(["--mode", "batch", "--base-dir", str(alone)]) == 0
    document = attributions(alone)
    assert document["baseline"] is None and document["changes"] == {}
    assert document["batch"]["rows"] == 200
    (line,) = explanations.explanation_lines(document)
    assert line.endswith("(no training baseline recorded for this model version to compare with).")
    _, rows = explanations.batch_table(document)
    assert {row[-1] for row in rows} == {"no baseline"} and len(rows) == len(FEATURES)


def _notifier():
    return load_module(REPO_ROOT / "code" / "notifier" / "notifier.py", "notifier_explained")


@pytest.mark.parametrize("kind", ["execution", "step"])
def test_inference_emails_say_which_features_changed(model, tmp_path, monkeypatch, kind):
    """The Succeeded e-mail of a batch run and the model-quality failure e-mail read
    ExplainBatch's attributions.json where the pipeline writes it (read with s3:GetObject as
    lambda.tf allows) and carry its lines."""
    from moto import mock_aws

    from pipeline_scripts.config import env_file_path, load_env_config
    from pipeline_scripts.pipeline_parts import MODEL_QUALITY_FAILED_STEP

    fit_base = model[0]
    rows = held_out(fit_base)
    spec = json.loads((fit_base / "output" / "transform" / "transform.json").read_text())
    shifted = bootstrap(rows, 1000, seed=1, shift=(spec["output_columns"].index("height"), 0.5))
    document = attributions(explain(model, tmp_path / "shifted", "batch", shifted))
    assert document["sentences"]

    env = load_env_config(env_file_path("dev"))
    name = "pipeline_execution_succeeded" if kind == "execution" else (
        "pipeline_step_failed_model_quality_gate")  # fmt: skip
    event = json.loads((REPO_ROOT / "tests" / "events" / f"{name}.json").read_text())
    arn = event["detail"]["pipelineExecutionArn"]
    arn = arn.split(":pipeline/")[0] + f":pipeline/{env.pipeline_inf}/execution/" + "e1x2p3l4"
    event["detail"]["pipelineExecutionArn"] = arn
    if kind == "step":
        assert event["detail"]["stepName"] == MODEL_QUALITY_FAILED_STEP
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", env.region)
    with mock_aws():
        s3 = boto3.client("s3", region_name=env.region)
        s3.create_bucket(
            Bucket=env.bucket_name, CreateBucketConfiguration={"LocationConstraint": env.region}
        )
        topic = boto3.client("sns", region_name=env.region).create_topic(Name="t")["TopicArn"]
        monkeypatch.setenv("SNS_TOPIC_ARN", topic)
        monkeypatch.setenv("INFERENCE_PIPELINE", env.pipeline_inf)
        monkeypatch.setenv("ARTIFACTS_URI", env.artifacts_uri)
        notifier = _notifier()
        config = notifier.load_config(None, None)
        missing = notifier.build_notification(event, config).body
        assert "Explanations unavailable (ExplainBatch's attributions.json unreadable)." in missing
        prefix = env.artifacts_uri.removeprefix(f"s3://{env.bucket_name}/")
        key = f"{prefix}/{env.pipeline_inf}/e1x2p3l4/ExplainBatch/explanations/attributions.json"
        s3.put_object(Bucket=env.bucket_name, Key=key, Body=json.dumps(document))
        body = notifier.build_notification(event, config).body
    assert "EXPLANATIONS (feature attributions)" in body
    for line in explanations.explanation_lines(document):
        assert f"  {line}" in body.splitlines()
    assert f"  - {document['sentences'][0]}" in body.splitlines()
