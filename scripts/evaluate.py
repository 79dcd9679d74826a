"""Evaluation step: score the trained model on the test split, beside a mean-predictor baseline.

in:  <base>/input/model/model.tar.gz (holds xgboost-model), <base>/input/test/test.csv and
     <base>/input/train/train.csv (headerless, target first, as written by preprocess.py)
out: <base>/output/evaluation/evaluation.json in the Model Monitor model-quality statistics
     format; the pipeline's condition reads regression_metrics.mse.value.
"""

import argparse
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import xgboost as xgb
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
    # Ours, beside Model Monitor's fields: the numbers as people read them, for the training
    # gate's Fail message (pipeline expressions cannot format a number).
    report["formatted"] = {
        "mse": _format(report["regression_metrics"]["mse"]["value"]),
        "mean_predictor_mse": _format(report["baseline_mean_predictor"]["mse"]["value"]),
    }
    out = base / "output" / "evaluation" / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    model_mse = report["regression_metrics"]["mse"]["value"]
    baseline_mse = report["baseline_mean_predictor"]["mse"]["value"]
    print(f"{PROG}: {len(labels)} records, MSE {model_mse:.4f} (mean predictor {baseline_mse:.4f})")


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--base-dir", type=Path, default=default_base_dir())
    return run_step(PROG, evaluate, parser.parse_args(argv).base_dir)


if __name__ == "__main__":
    sys.exit(main())
