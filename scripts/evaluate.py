"""Evaluation step: score the trained model on the test split, beside a mean-predictor baseline.

in:  <base>/input/model/model.tar.gz (holds xgboost-model), <base>/input/test/test.csv and
     <base>/input/train/train.csv (headerless, target first, as written by preprocess.py)
     With --champion-version V (not "none"): the currently Approved version's model at
     <base>/input/champion_model/model.tar.gz, scored with ITS OWN transform
     <base>/input/champion_transform/transform.json on the same raw test rows
     <base>/input/test_raw/test.csv (a champion may have been fitted on other data).
out: <base>/output/evaluation/evaluation.json in the Model Monitor model-quality statistics
     format; the pipeline's condition reads regression_metrics.mse.value. Beside it (ours):
     "champion" {"version", "item_count", "regression_metrics"} or {"version": "none"}, and
     "formatted" strings for messages and registry metadata.
"""

import argparse
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import xgboost as xgb
from preprocess import load_transform, read_folder, to_numbers, transform_rows
from step_common import InputError, default_base_dir, load_matrix, regression_metrics, run_step

PROG = "evaluate"


def load_model(path):
    """The booster stored as xgboost-model inside model.tar.gz, read without extracting files
    (so a crafted archive cannot write outside the working directory)."""
    try:
        with tarfile.open(path) as archive:
            member = next(
                (
                    m
                    for m in archive.getmembers()
                    if m.isfile() and Path(m.name).name == "xgboost-model"
                ),
                None,
            )
            if member is None:
                names = ", ".join(archive.getnames()) or "nothing"
                raise InputError(f"{path}: holds {names}; expected a file named xgboost-model")
            raw = archive.extractfile(member).read()
    except FileNotFoundError:
        raise InputError(f"{path}: not found; expected the training job's model.tar.gz") from None
    except tarfile.TarError as error:
        raise InputError(f"{path}: not a readable tar.gz archive ({error})") from None
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(raw))
    except xgb.core.XGBoostError:
        raise InputError(f"{path}: xgboost-model is not a model xgboost can load") from None
    return booster


def _format(value):
    return f"{value:.2f}" if isinstance(value, float) else str(value)  # "NaN" stays "NaN"


def champion_metrics(base, version, labels):
    """The champion's metrics on the raw test rows through its own transform; the rows must be
    the challenger's (same count and labels), else the comparison would mean nothing."""
    spec = load_transform(base / "input" / "champion_transform" / "transform.json")
    folder = base / "input" / "test_raw"
    try:  # read_folder names files relative to the folder: say which folder and why
        raw, origins = read_folder(folder, [spec["target"], *spec["features"]], True)
        numbers = {
            column: to_numbers(raw, column, origins, strict=True)
            for column in [spec["target"], *spec["numeric"]]
        }
    except InputError as error:
        raise InputError(f"champion version {version} on {folder}: {error}") from None
    own_labels = numbers[spec["target"]]
    if len(own_labels) != len(labels) or not np.allclose(own_labels, labels):
        raise InputError(
            f"{folder}: {len(own_labels)} raw test rows whose {spec['target']!r} values differ "
            f"from the {len(labels)} labels of test.csv; expected the same test split"
        )
    booster = load_model(base / "input" / "champion_model" / "model.tar.gz")
    features = transform_rows(spec, numbers, raw, origins)
    if features.shape[1] != booster.num_features():
        raise InputError(
            f"{base / 'input' / 'champion_transform' / 'transform.json'}: gives "
            f"{features.shape[1]} feature columns; the champion model expects "
            f"{booster.num_features()}"
        )
    predictions = booster.predict(xgb.DMatrix(features)).astype(float)
    return {
        "version": version,
        "item_count": len(labels),
        "regression_metrics": regression_metrics(labels, predictions),
    }


def evaluate(base, champion_version="none"):
    booster = load_model(base / "input" / "model" / "model.tar.gz")
    test_path = base / "input" / "test" / "test.csv"
    test = load_matrix(test_path)
    train_labels = load_matrix(base / "input" / "train" / "train.csv")[:, 0]
    if test.shape[1] - 1 != booster.num_features():
        raise InputError(
            f"{test_path}: {test.shape[1] - 1} feature columns; expected "
            f"{booster.num_features()} as the model was trained on"
        )
    labels = test[:, 0]
    predictions = booster.predict(xgb.DMatrix(test[:, 1:])).astype(float)
    baseline = np.full_like(labels, train_labels.mean())
    report = {
        "version": 0.0,
        "dataset": {"item_count": len(labels)},
        "regression_metrics": regression_metrics(labels, predictions),
        "baseline_mean_predictor": regression_metrics(labels, baseline, with_deviation=False),
    }
    # Champion versus challenger on the same rows; "none": no version is Approved yet.
    report["champion"] = (
        champion_metrics(base, champion_version, labels)
        if champion_version != "none"
        else {"version": "none"}
    )
    # Ours, beside Model Monitor's fields: the numbers as people read them, for the training
    # gate's Fail message and the registry metadata (pipeline expressions cannot format a
    # number); "none" when there is no champion (a valid metadata value, unlike "").
    champion_mse = report["champion"].get("regression_metrics", {}).get("mse", {})
    report["formatted"] = {
        "mse": _format(report["regression_metrics"]["mse"]["value"]),
        "mean_predictor_mse": _format(report["baseline_mean_predictor"]["mse"]["value"]),
        "champion_mse": _format(champion_mse["value"]) if champion_mse else "none",
        "champion_version": champion_version,
        "record_count": str(len(labels)),
    }
    # Whether the challenger beats the champion (always, with no champion): the register
    # step's optional reject_if_not_better condition reads it. A NaN MSE never wins.
    challenger = report["regression_metrics"]["mse"]["value"]
    champion = champion_mse.get("value") if champion_mse else None
    report["challenger_is_better"] = champion is None or (
        isinstance(challenger, float) and (not isinstance(champion, float) or challenger < champion)
    )
    out = base / "output" / "evaluation" / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    model_mse = report["regression_metrics"]["mse"]["value"]
    baseline_mse = report["baseline_mean_predictor"]["mse"]["value"]
    print(f"{PROG}: {len(labels)} records, MSE {model_mse:.4f} (mean predictor {baseline_mse:.4f})")
    if champion_version == "none":
        print(f"{PROG}: no Approved version: challenger only")
    else:
        print(
            f"{PROG}: challenger MSE {report['formatted']['mse']} vs champion (version "
            f"{champion_version}) {report['formatted']['champion_mse']} on the same "
            f"{len(labels)} records"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--base-dir", type=Path, default=default_base_dir())
    parser.add_argument(
        "--champion-version", default="none", help='Approved version to compare with, or "none"'
    )
    args = parser.parse_args(argv)
    return run_step(PROG, evaluate, args.base_dir, args.champion_version)


if __name__ == "__main__":
    sys.exit(main())
