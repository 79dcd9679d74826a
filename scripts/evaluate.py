"""Evaluation step: score the trained model on the test split, beside a mean-predictor baseline.

in:  <base>/input/model/model.tar.gz (holds xgboost-model), <base>/input/test/test.csv and
     <base>/input/train/train.csv (headerless, target first, as written by preprocess.py)
out: <base>/output/evaluation/evaluation.json in the Model Monitor model-quality statistics
     format; the pipeline's condition reads regression_metrics.mse.value.
"""

import argparse
import json
import math
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import xgboost as xgb

PROG = "evaluate"


class InputError(Exception):
    """Bad input; main() prints it as one stderr line and exits non-zero."""


# Identical in train.py and evaluate.py (each job receives its own script);
# tests/test_step_scripts.py checks the two copies stay the same.
def load_matrix(path):
    """A headerless all-numeric CSV (target first, then features) as a 2-D float array."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns on empty files; reported below
            matrix = np.loadtxt(path, delimiter=",", ndmin=2, dtype=float)
    except FileNotFoundError:
        raise InputError(f"{path}: not found; expected a headerless numeric CSV") from None
    except ValueError as error:
        raise InputError(
            f"{path}: {error}; expected numbers only, no header, target in the first column"
        ) from None
    if matrix.size == 0:
        raise InputError(f"{path}: no data rows; expected a headerless numeric CSV")
    if matrix.shape[1] < 2:
        raise InputError(f"{path}: only one column; expected the target then feature columns")
    bad = np.flatnonzero(~np.isfinite(matrix[:, 0]))
    if len(bad):
        raise InputError(
            f"{path}: target (first column) is {matrix[bad[0], 0]} on line {bad[0] + 1}; "
            f"expected a number"
        )
    return matrix


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


# Identical in evaluate.py and model_quality.py (each step receives one file);
# tests/test_step_scripts.py checks the two copies stay the same.
def regression_metrics(labels, predictions, with_deviation=True):
    """{metric: {"value": v, "standard_deviation": sd}} for mse, rmse, mae and r2, as Model
    Monitor writes them: sd over 5 seeded samples of 80% (no replacement) when n >= 200,
    else "NaN" (Model Monitor's spelling of undefined). Non-finite values become "NaN"."""

    def point(y, p):
        error = p - y
        mse = float(np.mean(error**2))
        spread = float(np.sum((y - np.mean(y)) ** 2))
        r2 = 1 - float(np.sum(error**2)) / spread if spread > 0 else math.nan
        return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(error))), "r2": r2}

    def clean(value):
        return value if math.isfinite(value) else "NaN"

    values = point(labels, predictions)
    if not with_deviation:
        return {name: {"value": clean(value)} for name, value in values.items()}
    n = len(labels)
    deviations = dict.fromkeys(values, math.nan)
    if n >= 200:
        rng = np.random.default_rng(0)
        samples = [rng.choice(n, size=int(0.8 * n), replace=False) for _ in range(5)]
        resampled = [point(labels[rows], predictions[rows]) for rows in samples]
        deviations = {name: float(np.std([r[name] for r in resampled])) for name in values}
    return {
        name: {"value": clean(values[name]), "standard_deviation": clean(deviations[name])}
        for name in values
    }


def evaluate(base):
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
    out = base / "output" / "evaluation" / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    model_mse = report["regression_metrics"]["mse"]["value"]
    baseline_mse = report["baseline_mean_predictor"]["mse"]["value"]
    print(f"{PROG}: {len(labels)} records, MSE {model_mse:.4f} (mean predictor {baseline_mse:.4f})")


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--base-dir", type=Path, default=Path("/opt/ml/processing"))
    args = parser.parse_args(argv)
    try:
        evaluate(args.base_dir)
    except InputError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
