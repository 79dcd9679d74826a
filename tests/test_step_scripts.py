"""The step scripts (scripts/*.py), run as the containers run them: as subprocesses on real files.

Runs on real UCI abalone when ../shared/ is present (else the generated sample) through the
`abalone_csv` fixture; the slower runs (fit, train, evaluate) happen once per module.
"""

import io
import json
import math
import re
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from pipeline_scripts.module_files import load_module
from tests.conftest import REPO_ROOT, put, shared_path
from tests.conftest import run_step_script as run

SCRIPTS = REPO_ROOT / "scripts"
SAMPLE_BATCH_CSV = REPO_ROOT / "data" / "inference" / "abalone_synthetic_batch_drift.csv"
FIT_ARGS = ["--target", "rings", "--test-fraction", "0.15", "--validation-fraction", "0.15"]
NUM_ROUND = 80  # enough for a real model, small enough to keep the tests fast
METRIC_REGEX = r"validation-rmse:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"  # the pipeline's
THRESHOLD = 6.0  # the project's default accuracy_mse_threshold


def last_line(text):
    return text.strip().splitlines()[-1]


def matrix(path):
    return np.loadtxt(path, delimiter=",", ndmin=2)


# --- the pipeline's steps, chained the way the pipelines chain them -------------------------


def fit(csv, base, *extra):
    put(base / "input" / "data" / csv.name, csv)
    run("preprocess.py", "--mode", "fit", "--base-dir", base, *FIT_ARGS, *extra)
    return base


def train(fit_base, model_dir, *flags):
    env = {
        "SM_CHANNEL_TRAIN": str(fit_base / "output" / "train"),
        "SM_CHANNEL_VALIDATION": str(fit_base / "output" / "validation"),
        "SM_MODEL_DIR": str(model_dir),
    }
    flags = flags or ("--num_round", NUM_ROUND, "--eta", "0.1")
    return run("train.py", *flags, env=env)


def evaluate(fit_base, model_dir, base):
    (base / "input" / "model").mkdir(parents=True)
    with tarfile.open(base / "input" / "model" / "model.tar.gz", "w:gz") as archive:
        archive.add(model_dir / "xgboost-model", arcname="xgboost-model")
    put(base / "input" / "test" / "test.csv", fit_base / "output" / "test" / "test.csv")
    put(base / "input" / "train" / "train.csv", fit_base / "output" / "train" / "train.csv")
    run("evaluate.py", "--base-dir", base)
    return json.loads((base / "output" / "evaluation" / "evaluation.json").read_text())


def apply(fit_base, batch_files, base, expect_ok=True):
    """preprocess --mode apply on {file name: text or Path} with the fitted transform."""
    transform = fit_base / "output" / "transform" / "transform.json"
    put(base / "input" / "transform" / "transform.json", transform)
    for name, source in batch_files.items():
        put(base / "input" / "data" / name, source)
    return run("preprocess.py", "--mode", "apply", "--base-dir", base, expect_ok=expect_ok)


def batch_transform(model_dir, apply_base, out_file):
    """What the SageMaker XGBoost batch transform writes for batch.csv (input filter $[1:],
    joined with the input, output filter $[0,-1]): lines `record_id,prediction`."""
    batch = matrix(apply_base / "output" / "transform_input" / "batch.csv")
    booster = xgb.Booster(model_file=str(model_dir / "xgboost-model"))
    predictions = booster.predict(xgb.DMatrix(batch[:, 1:]))
    lines = [f"{int(i)},{p}" for i, p in zip(batch[:, 0], predictions, strict=True)]
    put(out_file, "\n".join(lines) + "\n")


def model_quality(base, threshold=THRESHOLD):
    result = run(
        "model_quality.py", "--base-dir", base, "--mse-threshold", threshold, expect_ok=False
    )
    stats_file = base / "output" / "model_quality" / "statistics.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else None
    return result, stats


@pytest.fixture(scope="module")
def runs():
    """Outputs of the slower script runs, made once and shared by this module's tests."""
    return {}


@pytest.fixture
def fitted(abalone_csv, runs, tmp_path_factory):
    if "fit" not in runs:
        runs["fit"] = fit(abalone_csv, tmp_path_factory.mktemp("fit"), "--seed", "42")
    return runs["fit"]


@pytest.fixture
def trained(fitted, runs, tmp_path_factory):
    """(model dir, train.py's completed process)."""
    if "train" not in runs:
        model_dir = tmp_path_factory.mktemp("model")
        # Float notation for an int and an unknown entry, as a tuning job may send them.
        flags = ["--num_round", NUM_ROUND, "--eta", "0.1", "--max_depth", "4.0"]
        runs["train"] = model_dir, train(fitted, model_dir, *flags, "--_tuning_job", "x")
    return runs["train"]


@pytest.fixture
def evaluation(fitted, trained, runs, tmp_path_factory):
    if "evaluate" not in runs:
        runs["evaluate"] = evaluate(fitted, trained[0], tmp_path_factory.mktemp("evaluate"))
    return runs["evaluate"]


def transform_spec(fit_base):
    return json.loads((fit_base / "output" / "transform" / "transform.json").read_text())


def expected_features(spec, raw):
    """The transform computed here from transform.json: (x - mean) / std after filling
    missing values, one-hot with all zeros for unseen categories."""
    columns = []
    for name in spec["features"]:
        if name in spec["numeric"]:
            stats = spec["numeric"][name]
            values = pd.to_numeric(raw[name], errors="coerce").fillna(stats["fill"])
            columns.append((values.to_numpy(dtype=float) - stats["mean"]) / stats["std"])
        else:
            stats = spec["categorical"][name]
            values = raw[name].fillna(stats["fill"]).to_numpy(dtype=object)
            columns += [(values == c).astype(float) for c in stats["categories"]]
    return np.column_stack(columns)


# --- preprocess: fit ------------------------------------------------------------------------


def test_fit_writes_split_sizes_and_baseline(fitted, abalone_csv):
    n = len(pd.read_csv(abalone_csv))
    sizes = {
        name: len(matrix(fitted / "output" / name / f"{name}.csv"))
        for name in ["train", "validation", "test"]
    }
    assert sizes == {
        "train": n - 2 * round(0.15 * n),
        "validation": round(0.15 * n),
        "test": round(0.15 * n),
    }
    spec = transform_spec(fitted)
    assert spec["target"] == "rings"
    assert spec["features"] == [
        "sex", "length", "diameter", "height", "whole_weight", "shucked_weight",
        "viscera_weight", "shell_weight",
    ]  # fmt: skip
    assert spec["output_columns"][:3] == ["sex_F", "sex_I", "sex_M"]
    train = matrix(fitted / "output" / "train" / "train.csv")
    assert train.shape[1] == 1 + len(spec["output_columns"])  # target first, no header
    baseline = pd.read_csv(fitted / "output" / "baseline" / "baseline.csv")
    assert list(baseline.columns) == spec["features"]  # raw features, header, no target
    assert len(baseline) == sizes["train"]


@pytest.mark.e2e
def test_fit_split_is_a_seeded_partition(fitted, abalone_csv, tmp_path):
    targets = np.concatenate(
        [matrix(fitted / "output" / s / f"{s}.csv")[:, 0] for s in ["train", "validation", "test"]]
    )
    assert sorted(targets) == sorted(pd.read_csv(abalone_csv)["rings"].astype(float))
    again = fit(abalone_csv, tmp_path / "again", "--seed", "42")
    other = fit(abalone_csv, tmp_path / "other", "--seed", "7")
    for part in ["train/train.csv", "test/test.csv", "transform/transform.json"]:
        assert (again / "output" / part).read_bytes() == (fitted / "output" / part).read_bytes()
    assert (other / "output" / "test/test.csv").read_bytes() != (
        fitted / "output" / "test/test.csv"
    ).read_bytes()


def test_transform_is_fitted_on_the_train_split_only(fitted, abalone_csv):
    spec = transform_spec(fitted)
    train_raw = pd.read_csv(fitted / "output" / "baseline" / "baseline.csv")
    full = pd.read_csv(abalone_csv)
    for name, stats in spec["numeric"].items():
        assert stats["mean"] == pytest.approx(train_raw[name].mean(), rel=1e-12)
        assert stats["std"] == pytest.approx(train_raw[name].std(ddof=0), rel=1e-12)
        assert stats["fill"] == pytest.approx(train_raw[name].median(), rel=1e-12)
    assert spec["numeric"]["length"]["mean"] != pytest.approx(full["length"].mean(), rel=1e-6)
    assert spec["categorical"]["sex"] == {
        "categories": ["F", "I", "M"],
        "fill": train_raw["sex"].mode()[0],
    }
    # The written train split is exactly the baseline rows pushed through the transform.
    # Features are written as float32 digits (the model reads float32): compared as float32.
    train = matrix(fitted / "output" / "train" / "train.csv")
    expected = expected_features(spec, train_raw).astype(np.float32)
    np.testing.assert_array_equal(train[:, 1:].astype(np.float32), expected)


# --- preprocess: apply ----------------------------------------------------------------------


def test_apply_uses_the_saved_transform_and_never_refits(fitted, abalone_csv, tmp_path):
    # A batch from a very different distribution: a refit would standardise it to mean 0.
    batch = pd.read_csv(abalone_csv, dtype=str).head(40).drop(columns="rings")
    batch["length"] = (batch["length"].astype(float) * 2 + 0.3).round(4).astype(str)
    batch.loc[0, "sex"] = "X"  # unseen category
    batch.loc[1, "sex"] = ""  # missing category
    batch.loc[2, "height"] = ""  # missing number
    batch.loc[3, "diameter"] = "abc"  # not a number: imputed here, flagged by data quality
    result = apply(fitted, {"batch.csv": batch.to_csv(index=False)}, tmp_path)

    spec = transform_spec(fitted)
    out = tmp_path / "output"
    written = matrix(out / "transform_input" / "batch.csv")
    np.testing.assert_array_equal(written[:, 0], np.arange(1, 41))  # record_id: data line
    raw = batch.replace({"": None, "abc": None})
    # Written as float32 digits (the model reads float32): compared as float32.
    expected = expected_features(spec, raw).astype(np.float32)
    np.testing.assert_array_equal(written[:, 1:].astype(np.float32), expected)
    assert written[0, 1:4].tolist() == [0.0, 0.0, 0.0]  # unseen category -> all zeros
    fill = spec["categorical"]["sex"]["fill"]
    assert written[1, 1:4].tolist() == [float(c == fill) for c in ["F", "I", "M"]]
    assert "column 'diameter' has non-numeric value 'abc' on line 5" in result.stderr
    assert not (out / "transform").exists()

    features = pd.read_csv(out / "features" / "features.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(features, batch, check_dtype=False)  # raw, incl. 'X', 'abc'
    assert (out / "ground_truth" / "ground_truth.csv").read_text() == "record_id,label\n"
    report = json.loads((out / "report" / "batch_report.json").read_text())
    assert report == {"record_count": 40, "ground_truth_count": 0}


def test_apply_with_ground_truth_over_several_files(fitted, abalone_csv, tmp_path):
    rows = pd.read_csv(abalone_csv, dtype=str).head(10)
    first = rows.head(6).assign(site="north")  # extra column: reaches the data-quality check
    first.loc[2, "rings"] = ""  # this record has no ground truth
    files = {"a.csv": first.to_csv(index=False), "b.csv": rows.tail(4).to_csv(index=False)}
    apply(fitted, files, tmp_path)

    out = tmp_path / "output"
    truth = pd.read_csv(out / "ground_truth" / "ground_truth.csv")
    assert truth["record_id"].tolist() == [1, 2, 4, 5, 6, 7, 8, 9, 10]
    assert truth["label"].tolist() == rows["rings"].astype(int).drop(index=2).tolist()
    features = pd.read_csv(out / "features" / "features.csv")
    assert "rings" not in features.columns and "site" in features.columns
    assert len(matrix(out / "transform_input" / "batch.csv")) == 10
    report = json.loads((out / "report" / "batch_report.json").read_text())
    assert report == {"record_count": 10, "ground_truth_count": 9}


# --- preprocess: bad input ------------------------------------------------------------------

HEADER = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight,rings"
ROW = "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15"
GOOD = "\n".join([HEADER, *[ROW] * 20]) + "\n"


def without(column):
    """GOOD with one column removed."""
    return pd.read_csv(io.StringIO(GOOD), dtype=str).drop(columns=column).to_csv(index=False)


FIT_BAD_INPUT = {
    "no csv files": ({"notes.txt": GOOD}, ["input/data: no .csv files found"]),
    "empty file": ({"d.csv": ""}, ["d.csv: file is empty"]),
    "header only": ({"d.csv": HEADER + "\n"}, ["no data rows"]),
    "missing target": (
        {"d.csv": without("rings")},
        ["d.csv: required column 'rings' is missing"],
    ),
    "missing categorical": ({"d.csv": without("sex")}, ["d.csv: required column 'sex' is missing"]),
    "non-numeric": (
        {"d.csv": GOOD.replace(f"{ROW}\n{ROW}", f"{ROW}\n{ROW.replace('0.455', 'abc')}", 1)},
        ["d.csv: column 'length' has non-numeric value 'abc' on line 3; expected a number"],
    ),
    "truncated": (
        {"d.csv": GOOD + "F,0.53,0.42"},
        ["d.csv: line 22 has 3 fields; expected 9", "truncated"],
    ),
    "bad quoting": ({"d.csv": GOOD + 'F,"0.53"x,0.4\n'}, ["d.csv: malformed CSV"]),
    "files disagree": (
        {"a.csv": GOOD, "b.csv": without("height")},
        ["b.csv: column 'height' is not in both this file and", "a.csv"],
    ),
    "missing target value": (
        {"d.csv": GOOD.replace(ROW, ROW[:-3] + ",", 1)},
        ["d.csv: column 'rings' is empty on line 2; expected a number"],
    ),
    "too few rows": ({"d.csv": "\n".join([HEADER, ROW, ROW, ROW])}, ["only 3 data rows"]),
    "utf-16": ({"d.csv": b"\xff\xfe\x00sex,l\x00\x81\n"}, ["d.csv: is UTF-16 text"]),
    "latin-1": (
        {"d.csv": GOOD.replace("M,", "\u00e9,", 3).encode("latin-1")},
        ["d.csv: line 2 is not UTF-8 text (byte 0xe9)"],
    ),
}


@pytest.mark.parametrize("case", FIT_BAD_INPUT, ids=str)
def test_fit_rejects_bad_input_naming_file_and_column(case, tmp_path):
    files, expected = FIT_BAD_INPUT[case]
    for name, content in files.items():
        put(tmp_path / "input" / "data" / name, content)
    result = run("preprocess.py", "--mode", "fit", "--base-dir", tmp_path, expect_ok=False)
    assert result.returncode == 1
    line = last_line(result.stderr)
    assert line.startswith("preprocess: ")
    for part in expected:
        assert part in line
    assert not (tmp_path / "output" / "transform").exists()


APPLY_BAD_INPUT = {
    "missing feature": (
        {"batch.csv": without("shell_weight")},
        ["batch.csv: required column 'shell_weight' is missing"],
    ),
    "non-numeric label": (
        {"batch.csv": GOOD.replace(ROW, ROW[:-2] + "old", 1)},
        ["batch.csv: column 'rings' has non-numeric value 'old' on line 2"],
    ),
    "truncated": ({"batch.csv": GOOD + "F,0.53"}, ["batch.csv: line 22 has 2 fields"]),
    "empty data": ({"batch.csv": HEADER + "\n"}, ["no data rows"]),
    "no csv files": ({}, ["no .csv files found"]),
}


@pytest.mark.parametrize("case", APPLY_BAD_INPUT, ids=str)
def test_apply_rejects_bad_input_naming_file_and_column(case, fitted, tmp_path):
    files, expected = APPLY_BAD_INPUT[case]
    (tmp_path / "input" / "data").mkdir(parents=True)
    result = apply(fitted, files, tmp_path, expect_ok=False)
    assert result.returncode == 1
    line = last_line(result.stderr)
    assert line.startswith("preprocess: ")
    for part in expected:
        assert part in line


def test_apply_without_transform_says_which_file_is_missing(tmp_path):
    put(tmp_path / "input" / "data" / "batch.csv", GOOD)
    result = run("preprocess.py", "--mode", "apply", "--base-dir", tmp_path, expect_ok=False)
    assert result.returncode == 1
    assert "input/transform/transform.json: not found" in last_line(result.stderr)


# --- train ----------------------------------------------------------------------------------


def test_train_saves_a_json_model_and_logs_validation_rmse(fitted, trained):
    model_dir, result = trained
    assert "train: ignoring unknown arguments --_tuning_job x" in result.stderr
    model_file = model_dir / "xgboost-model"
    assert model_file.read_bytes().startswith(b"{")  # JSON, as the contract says
    json.loads(model_file.read_text())
    booster = xgb.Booster(model_file=str(model_file))
    assert booster.num_boosted_rounds() == NUM_ROUND
    assert booster.num_features() == len(transform_spec(fitted)["output_columns"])

    logged = [float(value) for value in re.findall(METRIC_REGEX, result.stdout)]
    assert len(logged) == NUM_ROUND
    assert re.search(r"^\[0\]\ttrain-rmse:[0-9.]+\tvalidation-rmse:[0-9.]+$", result.stdout, re.M)
    validation = matrix(fitted / "output" / "validation" / "validation.csv")
    predictions = booster.predict(xgb.DMatrix(validation[:, 1:]))
    rmse = math.sqrt(np.mean((predictions - validation[:, 0]) ** 2))
    assert logged[-1] == pytest.approx(rmse, abs=1e-4)  # the log is xgboost's, on this data


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--eta", "2"], "argument --eta: expected a value in [0, 1], got 2"),
        (["--num_round", "2.5"], "argument --num_round: expected a whole number, got 2.5"),
    ],
)
def test_train_rejects_bad_hyperparameters(flags, expected, tmp_path):
    result = run("train.py", *flags, expect_ok=False)
    assert result.returncode == 2
    assert expected in last_line(result.stderr)


@pytest.mark.e2e
def test_train_rejects_bad_channels(fitted, tmp_path):
    put(tmp_path / "train" / "train.csv", GOOD)  # has a header and a text column
    env = {"SM_CHANNEL_TRAIN": str(tmp_path / "train"), "SM_CHANNEL_VALIDATION": str(tmp_path)}
    result = run("train.py", env=env, expect_ok=False)
    assert result.returncode == 1
    line = last_line(result.stderr)
    assert "train/train.csv: could not convert string" in line
    assert "expected numbers only, no header, target in the first column" in line

    env["SM_CHANNEL_TRAIN"] = str(tmp_path / "nothing")
    result = run("train.py", env=env, expect_ok=False)
    assert "nothing ($SM_CHANNEL_TRAIN): no .csv files found" in last_line(result.stderr)


# --- evaluate -------------------------------------------------------------------------------


def regression(labels, predictions):
    error = predictions - labels
    mse = np.mean(error**2)
    return {
        "mse": mse,
        "rmse": np.sqrt(mse),
        "mae": np.mean(np.abs(error)),
        "r2": 1 - np.sum(error**2) / np.sum((labels - labels.mean()) ** 2),
    }


def test_evaluate_matches_numpy_and_beats_the_mean_predictor(fitted, trained, evaluation):
    test = matrix(fitted / "output" / "test" / "test.csv")
    booster = xgb.Booster(model_file=str(trained[0] / "xgboost-model"))
    predictions = booster.predict(xgb.DMatrix(test[:, 1:])).astype(float)
    train_mean = matrix(fitted / "output" / "train" / "train.csv")[:, 0].mean()

    assert evaluation["version"] == 0.0
    assert evaluation["dataset"] == {"item_count": len(test)}
    model = evaluation["regression_metrics"]
    for name, value in regression(test[:, 0], predictions).items():
        assert model[name]["value"] == pytest.approx(value, rel=1e-9)
        assert 0 < model[name]["standard_deviation"] < abs(value)  # >= 200 records
    mean_predictor = evaluation["baseline_mean_predictor"]
    for name, value in regression(test[:, 0], np.full(len(test), train_mean)).items():
        assert mean_predictor[name] == {"value": pytest.approx(value, rel=1e-9)}
    assert model["mse"]["value"] < mean_predictor["mse"]["value"]
    assert model["r2"]["value"] > 0.3
    # for the training gate's Fail message: two decimals, not 13.444444444444445
    assert evaluation["formatted"] == {
        "mse": f"{model['mse']['value']:.2f}",
        "mean_predictor_mse": f"{mean_predictor['mse']['value']:.2f}",
        # no champion given: the challenger alone (tests/test_champion.py has the comparison)
        "champion_version": "none",
        "champion_mse": "none",
        "record_count": str(len(test)),
        # no recent labelled rows given (tests/test_champion.py scores them)
        "recent_record_count": "none",
        "recent_mse": "none",
        "recent_champion_mse": "none",
    }


def test_real_abalone_model_is_within_threshold_and_mean_predictor_is_not(abalone_csv, evaluation):
    assert abalone_csv == shared_path("data/abalone.csv")  # skips cleanly without ../shared
    mse = evaluation["regression_metrics"]["mse"]["value"]
    assert mse < THRESHOLD < evaluation["baseline_mean_predictor"]["mse"]["value"]


@pytest.mark.e2e
def test_evaluate_small_test_set_has_no_standard_deviation(fitted, trained, tmp_path):
    small = tmp_path / "small"
    put(
        small / "output" / "test" / "test.csv",
        "".join((fitted / "output" / "test" / "test.csv").read_text().splitlines(True)[:50]),
    )
    put(small / "output" / "train" / "train.csv", fitted / "output" / "train" / "train.csv")
    report = evaluate(small, trained[0], tmp_path / "evaluate")
    assert report["dataset"] == {"item_count": 50}
    assert {m["standard_deviation"] for m in report["regression_metrics"].values()} == {"NaN"}


@pytest.mark.e2e
def test_evaluate_rejects_bad_input(fitted, trained, tmp_path):
    evaluate_dir = tmp_path / "evaluate"
    put(evaluate_dir / "input" / "test" / "test.csv", fitted / "output" / "test" / "test.csv")
    put(evaluate_dir / "input" / "train" / "train.csv", fitted / "output" / "train" / "train.csv")
    model_tar = evaluate_dir / "input" / "model" / "model.tar.gz"
    model_tar.parent.mkdir(parents=True)
    with tarfile.open(model_tar, "w:gz") as tar:
        tar.add(trained[0] / "xgboost-model", arcname="model.json")  # wrong name inside
    result = run("evaluate.py", "--base-dir", evaluate_dir, expect_ok=False)
    assert result.returncode == 1
    assert "model.tar.gz: holds model.json; expected a file named xgboost-model" in last_line(
        result.stderr
    )

    with tarfile.open(model_tar, "w:gz") as tar:
        tar.add(trained[0] / "xgboost-model", arcname="xgboost-model")
    test_csv = evaluate_dir / "input" / "test" / "test.csv"
    test_csv.write_text("1.0,2.0,3.0\n")
    result = run("evaluate.py", "--base-dir", evaluate_dir, expect_ok=False)
    assert "test/test.csv: 2 feature columns; expected 10 as the model was trained on" in last_line(
        result.stderr
    )


def test_run_step_turns_input_errors_into_one_last_stderr_line(capsys):
    """step_common.run_step, the exit convention every step script's main() uses."""
    common = load_module(SCRIPTS / "step_common.py", "step_common_under_test")

    def step(outcome):
        if isinstance(outcome, Exception):
            raise outcome
        print("working", file=sys.stderr)
        return outcome

    assert common.run_step("demo", step, None) == 0
    assert common.run_step("demo", step, 1) == 1  # the step's own status (model_quality's fail)
    capsys.readouterr()
    assert common.run_step("demo", step, common.InputError("x.csv: bad; expected y")) == 1
    assert capsys.readouterr().err.splitlines() == ["demo: x.csv: bad; expected y"]
    # Anything else too: the traceback goes to the job log, then the one-line reason, last.
    assert common.run_step("demo", step, KeyError("bug")) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Traceback (most recent call last):"
    assert re.fullmatch(
        r"demo: unexpected error, KeyError: 'bug' \(at test_step_scripts\.py:\d+\); "
        r"the job log has the details",
        err[-1],
    )
    assert common.run_step("demo", step, MemoryError()) == 1
    assert "demo: unexpected error, out of memory" in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize(
    "error, expected",
    [
        ("InputError('x.csv: ' + 'é' * 2000)", "step: x.csv: éé"),
        ("ZeroDivisionError('division by zero')", "step: unexpected error, ZeroDivisionError"),
        ("OSError(28, 'No space left on device')", "step: unexpected error, no space left"),
    ],
)
def test_every_failure_writes_a_one_line_exit_message_within_sagemakers_limit(
    tmp_path, error, expected
):
    """In a processing job layout (<root>/input/code/) the reason lands in
    <root>/output/message, which SageMaker returns as ExitMessage (first 1 KB, UTF-8)."""
    code = tmp_path / "ml" / "processing" / "input" / "code"  # /opt/ml/processing/input/code
    code.mkdir(parents=True)
    (code / "step_common.py").write_text((SCRIPTS / "step_common.py").read_text())
    (code / "step.py").write_text(
        "import sys\nfrom step_common import InputError, run_step\n"
        f"def step():\n    raise {error}\n"
        "sys.exit(run_step('step', step))\n"
    )
    result = subprocess.run(
        [sys.executable, str(code / "step.py")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    message = (tmp_path / "ml" / "output" / "message").read_bytes()  # /opt/ml/output/message
    assert len(message) <= 1024
    text = message.decode("utf-8")  # SageMaker fails the job if it is not UTF-8
    assert "\n" not in text and text.startswith(expected)
    assert last_line(result.stderr) == text


# --- model_quality --------------------------------------------------------------------------


def quality_inputs(base, labels, predictions, summary=None):
    """ground_truth.csv and two shuffled *.out files (joined on record_id, not on order)."""
    ids = np.arange(len(labels))
    put(
        base / "input" / "ground_truth" / "ground_truth.csv",
        "record_id,label\n" + "".join(f"{i},{y}\n" for i, y in zip(ids, labels, strict=True)),
    )
    order = np.random.default_rng(0).permutation(len(ids))
    for part, rows in enumerate(np.array_split(order, 2)):
        lines = "".join(f"{ids[r]},{predictions[r]}\n" for r in rows)
        put(base / "input" / "predictions" / f"part{part}.csv.out", lines)
    if summary is not None:
        put(base / "input" / "data_quality" / "summary.json", json.dumps(summary))


LABELS = np.array([5 + (i % 11) for i in range(300)], dtype=float)
SUMMARY = {
    "violation_count": 3,
    "violations_by_check": {
        "baseline_drift_check": 2,
        "completeness_check": 1,
        "data_type_check": 0,
    },
    "features": ["shell_weight", "whole_weight"],
    "message": "3 violations",
}


@pytest.mark.parametrize(
    ("offset", "status", "returncode", "verdict"),
    [
        (2.0, "passed", 0, "MSE 4.00 is within threshold 6.00"),
        # A failure is a result (exit 0); the pipeline's ModelQualityGate fails on it.
        (3.0, "failed", 0, "MSE 9.00 exceeds threshold 6.00"),
    ],
)
def test_model_quality_passes_or_fails_on_the_threshold(
    offset, status, returncode, verdict, tmp_path
):
    predictions = LABELS + offset * np.where(np.arange(300) % 2, 1, -1)
    quality_inputs(tmp_path, LABELS, predictions, SUMMARY)
    result, stats = model_quality(tmp_path)
    assert result.returncode == returncode
    expected = regression(LABELS, predictions)
    reason = (
        f"{verdict} on 300 records (RMSE {expected['rmse']:.2f}, MAE {expected['mae']:.2f}, "
        f"R2 {expected['r2']:.2f}); data quality: 3 violations (baseline_drift_check: 2, "
        f"completeness_check: 1; features: shell_weight, whole_weight)"
    )
    assert stats["status"] == status and stats["reason"] == reason
    assert stats["threshold"] == {"mse": 6.0}
    assert stats["dataset"] == {"item_count": 300}
    for name, value in expected.items():
        assert stats["regression_metrics"][name]["value"] == pytest.approx(value, rel=1e-9)


def test_model_quality_at_exactly_the_threshold_passes(tmp_path):
    """The contract (README): a batch fails when its MSE is *above* the threshold; equal
    passes, as the training gate accepts MSE <= threshold."""
    predictions = LABELS + 2.0 * np.where(np.arange(300) % 2, 1, -1)  # MSE exactly 4.0
    quality_inputs(tmp_path, LABELS, predictions, SUMMARY)
    result, stats = model_quality(tmp_path, threshold=4.0)
    assert result.returncode == 0
    assert stats["regression_metrics"]["mse"]["value"] == 4.0
    assert stats["status"] == "passed"
    assert stats["reason"].startswith("MSE 4.00 is within threshold 4.00 on 300 records")
    _, above = model_quality(tmp_path, threshold=3.999)
    assert above["status"] == "failed"


def test_model_quality_skips_without_ground_truth(tmp_path):
    put(tmp_path / "input" / "ground_truth" / "ground_truth.csv", "record_id,label\n")
    result, stats = model_quality(tmp_path)
    assert result.returncode == 0
    assert stats["status"] == "skipped"
    assert stats["reason"].startswith("no ground truth: ")
    assert "data quality: no summary available" in stats["reason"]
    assert stats["dataset"] == {"item_count": 0}


MODEL_QUALITY_BAD_INPUT = {
    "missing prediction": (
        lambda base: (base / "input" / "predictions" / "part1.csv.out").unlink(),
        "predictions: no prediction for 150 ground-truth records",
    ),
    "malformed predictions": (
        lambda base: put(base / "input" / "predictions" / "part1.csv.out", "1,2,3\n"),
        "part1.csv.out: 3 fields per line; expected 2 (record_id,prediction)",
    ),
    "non-numeric label": (
        lambda base: put(
            base / "input" / "ground_truth" / "ground_truth.csv", "record_id,label\n0,ten\n"
        ),
        "ground_truth.csv: column 'label' has value 'ten' on line 2; expected a number",
    ),
    "missing column": (
        lambda base: put(base / "input" / "ground_truth" / "ground_truth.csv", "record_id\n0\n"),
        "ground_truth.csv: column 'label' is missing",
    ),
    "bad summary": (
        lambda base: put(base / "input" / "data_quality" / "summary.json", '{"features": []}'),
        "summary.json: unreadable (KeyError: 'violation_count')",
    ),
    "no predictions": (
        lambda base: shutil.rmtree(base / "input" / "predictions"),
        "predictions: no *.out files found",
    ),
}


@pytest.mark.parametrize("case", MODEL_QUALITY_BAD_INPUT, ids=str)
def test_model_quality_rejects_bad_input(case, tmp_path):
    spoil, expected = MODEL_QUALITY_BAD_INPUT[case]
    quality_inputs(tmp_path, LABELS, LABELS + 1)
    spoil(tmp_path)
    result, stats = model_quality(tmp_path)
    assert result.returncode == 1 and stats is None
    assert last_line(result.stderr).startswith("model_quality: ")
    assert expected in last_line(result.stderr)


# --- the synthetic sample through the real scripts ------------------------------------------


@pytest.mark.e2e
def test_synthetic_drift_batch_fails_model_quality(tmp_path):
    """A model trained on the synthetic sample passes evaluation, then fails model quality
    on the drifted batch, which is what the sample data is for."""
    sample = REPO_ROOT / "data" / "train" / "abalone_synthetic_train.csv"
    fit_base = fit(sample, tmp_path / "fit")
    train(fit_base, tmp_path / "model")
    report = evaluate(fit_base, tmp_path / "model", tmp_path / "evaluate")
    mse = report["regression_metrics"]["mse"]["value"]
    assert mse < THRESHOLD < report["baseline_mean_predictor"]["mse"]["value"]

    apply(fit_base, {SAMPLE_BATCH_CSV.name: SAMPLE_BATCH_CSV}, tmp_path / "apply")
    quality = tmp_path / "quality"
    put(
        quality / "input" / "ground_truth" / "ground_truth.csv",
        tmp_path / "apply" / "output" / "ground_truth" / "ground_truth.csv",
    )
    batch_transform(
        tmp_path / "model", tmp_path / "apply", quality / "input" / "predictions" / "batch.csv.out"
    )
    result, stats = model_quality(quality)
    assert result.returncode == 0 and stats["status"] == "failed"
    assert stats["dataset"] == {"item_count": 1000}
    assert stats["regression_metrics"]["mse"]["value"] > 10
