"""Training step (SageMaker script mode, xgboost 3.0.5): fit a gradient-boosted regressor.

Channels come from SM_CHANNEL_TRAIN and SM_CHANNEL_VALIDATION (folders of *.csv files with no
header, target first, as written by preprocess.py); the model goes to
$SM_MODEL_DIR/xgboost-model in xgboost's JSON format, the file name the SageMaker XGBoost
serving container loads. Hyperparameters arrive as `--name value` flags. Every round logs
`[i]\ttrain-rmse:x\tvalidation-rmse:y` through xgboost's EvaluationMonitor, as the image's
algorithm mode does (aws/sagemaker-xgboost-container callback.py); SageMaker reads the image's
built-in metric validation:rmse from it (pipeline_scripts/xgboost_image.py).
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import xgboost as xgb
from step_common import InputError, exit_step, load_matrix, run_step

PROG = "train"


def load_channel(env_name, default):
    """(features, target) from all CSV files of one channel folder."""
    folder = Path(os.environ.get(env_name, default))
    files = sorted(path for path in folder.rglob("*.csv") if path.is_file())
    if not files:
        raise InputError(f"{folder} (${env_name}): no .csv files found; expected training data")
    matrices = []
    for path in files:
        matrix = load_matrix(path)
        if matrices and matrix.shape[1] != matrices[0].shape[1]:
            raise InputError(
                f"{path}: {matrix.shape[1]} columns; expected {matrices[0].shape[1]} "
                f"like {files[0]}"
            )
        matrices.append(matrix)
    data = np.vstack(matrices)
    return data[:, 1:], data[:, 0]


def number(kind, low, high=None):
    """argparse type: an int or float in [low, high]. Accepts "5.0" for ints because tuning
    jobs may send integer hyperparameters in float notation."""

    def parse(text):
        value = float(text)
        if kind is int:
            if value != int(value):
                raise argparse.ArgumentTypeError(f"expected a whole number, got {text}")
            value = int(value)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected a value in [{low}, {high}], got {text}")
        return value

    return parse


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--num_round", type=number(int, 1), default=300)
    parser.add_argument("--max_depth", type=number(int, 0), default=4)
    parser.add_argument("--eta", type=number(float, 0, 1), default=0.05)
    parser.add_argument("--subsample", type=number(float, 0.01, 1), default=0.8)
    parser.add_argument("--colsample_bytree", type=number(float, 0.01, 1), default=0.8)
    parser.add_argument("--min_child_weight", type=number(float, 0), default=5.0)
    parser.add_argument("--gamma", type=number(float, 0), default=0.0)
    parser.add_argument("--objective", default="reg:squarederror")
    parser.add_argument("--seed", type=int, default=0)
    # SageMaker may pass extra entries (e.g. tuning metadata); they are not ours to reject.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"{PROG}: ignoring unknown arguments {' '.join(unknown)}", file=sys.stderr)
    return args


def train(args):
    x_train, y_train = load_channel("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")
    x_val, y_val = load_channel("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")
    if x_val.shape[1] != x_train.shape[1]:
        raise InputError(
            f"validation data has {x_val.shape[1]} feature columns; expected {x_train.shape[1]} "
            f"like the training data"
        )
    params = {
        "objective": args.objective,
        "max_depth": args.max_depth,
        "eta": args.eta,
        "subsample": args.subsample,
        "colsample_bytree": args.colsample_bytree,
        "min_child_weight": args.min_child_weight,
        "gamma": args.gamma,
        "seed": args.seed,
        # Always rmse, whatever the objective: the built-in validation:rmse is the tuning
        # objective. Evals "train" then "validation": the metric regex needs the tab before it.
        "eval_metric": "rmse",
    }
    dtrain = xgb.DMatrix(x_train, label=y_train)
    dval = xgb.DMatrix(x_val, label=y_val)
    try:
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=args.num_round,
            evals=[(dtrain, "train"), (dval, "validation")],
            verbose_eval=False,
            callbacks=[xgb.callback.EvaluationMonitor()],  # the container's own log format
        )
    except xgb.core.XGBoostError as error:
        message = str(error).strip().splitlines()[0]
        raise InputError(f"xgboost rejected the hyperparameters {params}: {message}") from None
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    model_dir.mkdir(parents=True, exist_ok=True)
    # save_model() would pick UBJSON for a name without ".json"; the contract is JSON.
    (model_dir / "xgboost-model").write_bytes(booster.save_raw(raw_format="json"))
    print(f"{PROG}: saved {model_dir / 'xgboost-model'} ({len(y_train)} training rows)")


def main(argv=None):
    # Line-buffer stdout so each round's metric line reaches the job log (and the tuner) at once.
    sys.stdout.reconfigure(line_buffering=True)
    return run_step(PROG, train, parse_args(argv))


if __name__ == "__main__":
    exit_step(main())
