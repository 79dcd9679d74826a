"""Evaluation step: score the trained model on the test split, beside a mean-predictor baseline.

in:  <base>/input/model/model.tar.gz (holds xgboost-model), <base>/input/test/test.csv and
     <base>/input/train/train.csv (headerless, target first, as written by preprocess.py)
     With --champion-version V (not "none"): the currently Approved version's model at
     <base>/input/champion_model/model.tar.gz, scored with ITS OWN transform
     <base>/input/champion_transform/transform.json on the same raw test rows
     <base>/input/test_raw/test.csv (a champion may have been fitted on other data).
     <base>/input/recent/: the labelled rows JoinLabelledBatches held out from training
     (raw, target included; no .csv file: none), scored by the challenger through its
     transform <base>/input/transform/transform.json and by the champion through its own.
out: <base>/output/evaluation/evaluation.json in the Model Monitor model-quality statistics
     format; the pipeline's condition reads regression_metrics.mse.value. Beside it (ours):
     "champion" {"version", "item_count", "regression_metrics"} or {"version": "none"}, and
     "recent" {"item_count", "challenger": {"mse"}, "champion": {"mse"}} ("champion" only with
     one; {"item_count": 0} without recent rows), and "formatted" strings for messages and
     registry metadata.
"""

import argparse
import json
import tarfile
from pathlib import Path

import numpy as np
import xgboost as xgb
from preprocess import load_transform, read_folder, to_numbers, transform_rows
from step_common import (
    InputError,
    csv_files,
    default_base_dir,
    exit_step,
    load_matrix,
    regression_metrics,
    run_step,
)

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


def score_raw(booster, transform_path, folder, what):
    """(labels, predictions, target name) of the raw rows in folder, through the transform at
    transform_path (preprocess.py's functions: the maths of inference, not a copy)."""
    spec = load_transform(transform_path)
    try:  # read_folder names files relative to the folder: say which folder and why
        raw, origins = read_folder(folder, [spec["target"], *spec["features"]], True)
        numbers = {
            column: to_numbers(raw, column, origins, strict=True)
            for column in [spec["target"], *spec["numeric"]]
        }
        features = transform_rows(spec, numbers, raw, origins)
    except InputError as error:
        raise InputError(f"{what} on {folder}: {error}") from None
    if features.shape[1] != booster.num_features():
        raise InputError(
            f"{transform_path}: gives {features.shape[1]} feature columns; the {what} model "
            f"expects {booster.num_features()}"
        )
    predictions = booster.predict(xgb.DMatrix(features)).astype(float)
    return numbers[spec["target"]], predictions, spec["target"]


def _champion_model(base):
    return load_model(base / "input" / "champion_model" / "model.tar.gz")


def _champion_transform(base):
    return base / "input" / "champion_transform" / "transform.json"


def champion_metrics(base, version, labels):
    """The champion's metrics on the raw test rows through its own transform; the rows must be
    the challenger's (same count and labels), else the comparison would mean nothing."""
    folder = base / "input" / "test_raw"
    what = f"champion version {version}"
    own_labels, predictions, target = score_raw(
        _champion_model(base), _champion_transform(base), folder, what
    )
    if len(own_labels) != len(labels) or not np.allclose(own_labels, labels):
        raise InputError(
            f"{folder}: {len(own_labels)} raw test rows whose {target!r} values differ "
            f"from the {len(labels)} labels of test.csv; expected the same test split"
        )
    return {
        "version": version,
        "item_count": len(labels),
        "regression_metrics": regression_metrics(labels, predictions),
    }


def recent_metrics(base, booster, champion_version):
    """Challenger (through its new transform) and champion (through its own) on the labelled
    rows JoinLabelledBatches held out: recent data neither was trained on (a row once held out
    stays held out, labelled_batches.py held_out())."""
    folder = base / "input" / "recent"
    if not folder.is_dir() or not csv_files(folder):
        return {"item_count": 0}
    transform = base / "input" / "transform" / "transform.json"
    labels, predictions, _ = score_raw(booster, transform, folder, "challenger")
    recent = {
        "item_count": len(labels),
        "challenger": {"mse": regression_metrics(labels, predictions, False)["mse"]},
    }
    if champion_version != "none":
        what = f"champion version {champion_version}"
        own_labels, own, _ = score_raw(
            _champion_model(base), _champion_transform(base), folder, what
        )
        recent["champion"] = {"mse": regression_metrics(own_labels, own, False)["mse"]}
    return recent


def _formatted_recent(recent):
    """recent_* strings; "none" when there is nothing to show (a valid metadata value)."""
    count = recent["item_count"]
    challenger = recent.get("challenger", {}).get("mse", {})
    champion = recent.get("champion", {}).get("mse", {})
    return {
        "recent_record_count": str(count) if count else "none",
        "recent_mse": _format(challenger["value"]) if challenger else "none",
        "recent_champion_mse": _format(champion["value"]) if champion else "none",
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
    report["recent"] = recent_metrics(base, booster, champion_version)
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
        **_formatted_recent(report["recent"]),
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
    if report["recent"]["item_count"]:
        formatted = report["formatted"]
        print(
            f"{PROG}: on {formatted['recent_record_count']} recent labelled records: challenger "
            f"MSE {formatted['recent_mse']} vs champion {formatted['recent_champion_mse']}"
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
    exit_step(main())
