"""Model-quality step: compare batch predictions with ground truth against an MSE threshold.

in:  <base>/input/predictions/*.out (batch transform output, no header, `record_id,prediction`),
     <base>/input/ground_truth/ground_truth.csv (`record_id,label`),
     <base>/input/data_quality/summary.json (optional; the data-quality check's summary)
out: <base>/output/model_quality/statistics.json: Model Monitor regression statistics plus
     "threshold", "status" and a one-line "reason". status is one of
     passed | failed (MSE above the threshold) | skipped (no ground truth) |
     insufficient_labels (fewer than --min-labels labelled records: an MSE on so few records
     says nothing, so nothing is judged and nothing retrains).
labels that arrive later (--labels): <base>/input/labels/<batch id>.labels.csv (`record_id,label`,
     the labels file the batch dispatcher was started for) takes the place of ground_truth.csv
     and is joined on record_id with <base>/input/predictions/*.out, the batch's stored
     predictions. A record_id that appears twice is an error (exit 1); labels without a
     prediction are left out and named in "reason" and "labels.unmatched".
Exit 0 for every status: a quality FAILURE is a result, not a crash. The pipeline's
ModelQualityGate reads "status" and fails its own Fail step (ModelQualityBelowThreshold), the
one step whose failure starts retraining. Bad input or a crash exits 1 (one stderr line naming
the file and what was expected), so it fails this step and never retrains.
"""

import argparse
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from step_common import (
    InputError,
    default_base_dir,
    exit_step,
    parse_numbers,
    regression_metrics,
    run_step,
)

PROG = "model_quality"


def read_predictions(folder):
    """{record_id: prediction} from every *.out file under folder."""
    files = sorted(path for path in Path(folder).rglob("*.out") if path.is_file())
    if not files:
        raise InputError(f"{folder}: no *.out files found; expected batch transform output")
    parts = []
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numpy warns on empty files; they add nothing
                part = np.loadtxt(path, delimiter=",", ndmin=2, dtype=float)
        except ValueError as error:
            raise InputError(
                f"{path}: {error}; expected lines 'record_id,prediction' of numbers"
            ) from None
        if part.size and part.shape[1] != 2:
            raise InputError(
                f"{path}: {part.shape[1]} fields per line; expected 2 (record_id,prediction)"
            )
        parts.append(part.reshape(-1, 2))
    data = np.vstack(parts)
    ids = data[:, 0]
    if not np.all(np.isfinite(data)) or np.any(ids != np.round(ids)):
        raise InputError(
            f"{folder}: a record_id is not a whole number or a prediction is not a finite number"
        )
    predictions = pd.Series(data[:, 1], index=ids.astype(np.int64))
    if predictions.index.has_duplicates:
        duplicate = predictions.index[predictions.index.duplicated()][0]
        raise InputError(f"{folder}: record_id {duplicate} has more than one prediction")
    return predictions


def read_ground_truth(path):
    """Ground-truth frame with integer record_id and float label (possibly no rows)."""
    try:
        truth = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(
            f"{path}: not found; expected the preprocess step's ground truth"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else "empty file"
        raise InputError(f"{path}: malformed CSV ({message}); expected record_id,label") from None
    for column in ["record_id", "label"]:
        if column not in truth.columns:
            raise InputError(
                f"{path}: column {column!r} is missing; expected header record_id,label"
            )
        values = parse_numbers(truth[column].tolist())  # the steps' one number syntax
        bad = np.flatnonzero(np.isnan(values))
        if len(bad):
            raise InputError(
                f"{path}: column {column!r} has value {truth[column].iloc[bad[0]]!r} on line "
                f"{bad[0] + 2}; expected a number"
            )
        truth[column] = values
    if np.any(truth["record_id"] != np.round(truth["record_id"])):
        raise InputError(f"{path}: column 'record_id' has a fraction; expected whole numbers")
    return truth.astype({"record_id": np.int64})


def data_quality_note(path):
    """One-line summary of the data-quality check for the reason text."""
    if not path.exists():
        return "data quality: no summary available"
    try:
        summary = json.loads(path.read_text())
        count = int(summary["violation_count"])
        by_check = dict(summary.get("violations_by_check", {}))
        features = [str(name) for name in summary.get("features", [])]
        notes = [str(note) for note in summary.get("notes", [])]
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise InputError(
            f"{path}: unreadable ({type(error).__name__}: {error}); expected a data-quality "
            f"summary with an integer 'violation_count'"
        ) from None
    # Findings below a violation threshold (e.g. a few values that are not numbers, imputed
    # before scoring) are named too: the e-mail is where people see them.
    below = f"; below threshold: {'; '.join(notes)}" if notes else ""
    if count == 0:
        return "data quality: no violations" + below
    # The summary lists every check, most with 0; name only those that found something.
    checks = ", ".join(f"{check}: {n}" for check, n in sorted(by_check.items()) if n)
    shown = ", ".join(features[:5]) + (", ..." if len(features) > 5 else "")
    details = "; ".join(part for part in [checks, f"features: {shown}" if shown else ""] if part)
    plural = "s" if count != 1 else ""
    return f"data quality: {count} violation{plural}" + (f" ({details})" if details else "") + below


def read_late_labels(folder):
    """(path, ground truth) of the one *.labels.csv under folder; a duplicate id is an error."""
    files = sorted(path for path in Path(folder).rglob("*.labels.csv") if path.is_file())
    if len(files) != 1:
        raise InputError(
            f"{folder}: {len(files)} *.labels.csv files; expected exactly one (the arrived labels)"
        )
    truth = read_ground_truth(files[0])
    duplicated = truth["record_id"].duplicated(keep=False)
    if duplicated.any():
        ids = truth["record_id"][duplicated]
        lines = ", ".join(str(line + 2) for line in ids.index[ids == ids.iloc[0]])
        raise InputError(
            f"{files[0]}: record_id {ids.iloc[0]} appears on lines {lines} "
            f"({ids.nunique()} duplicated id(s)); expected one label per record"
        )
    return files[0], truth


def join_late_labels(base):
    """(ground truth restricted to predicted records, labels summary, note) for --labels."""
    path, truth = read_late_labels(base / "input" / "labels")
    predictions = read_predictions(base / "input" / "predictions")
    known = truth["record_id"].isin(predictions.index)
    unmatched = truth["record_id"][~known]
    summary = {"file": path.name, "received": len(truth), "matched": int(known.sum()),
               "unmatched": len(unmatched)}  # fmt: skip
    note = ""
    if len(unmatched):
        note = (
            f"; {len(unmatched)} of {len(truth)} labels in {path.name} match no prediction of "
            f"this batch (e.g. record_id {unmatched.iloc[0]}) and were left out"
        )
    return truth[known].reset_index(drop=True), summary, note


def check(base, threshold, min_labels=1, late_labels=False):
    """(statistics dict, exit status)."""
    truth_path = base / "input" / "ground_truth" / "ground_truth.csv"
    labels, extra = {}, ""
    if late_labels:
        truth_path = base / "input" / "labels"
        truth, labels, extra = join_late_labels(base)
    else:
        truth = read_ground_truth(truth_path)
    if late_labels:  # the batch's data quality was reported by the execution that scored it
        note = "labels arrived after scoring; data quality was checked when the batch was scored"
    else:
        note = data_quality_note(base / "input" / "data_quality" / "summary.json")
    note += extra
    stats = {"version": 0.0, "dataset": {"item_count": len(truth)}, "threshold": {"mse": threshold}}
    if labels:
        stats["labels"] = labels
    if truth.empty:
        reason = (
            f"no ground truth: {truth_path} has no rows, so model quality was not measured; {note}"
        )
        return {**stats, "regression_metrics": {}, "status": "skipped", "reason": reason}, 0

    if len(truth) < min_labels:
        reason = (
            f"insufficient labels: {len(truth)} labelled records, at least {min_labels} needed "
            f"(model_quality.min_labelled_records), so model quality was not judged; {note}"
        )
        return {**stats, "regression_metrics": {}, "status": "insufficient_labels",
                "reason": reason}, 0  # fmt: skip

    predictions = read_predictions(base / "input" / "predictions")
    unmatched = truth["record_id"][~truth["record_id"].isin(predictions.index)]
    if len(unmatched):
        raise InputError(
            f"{base / 'input' / 'predictions'}: no prediction for {len(unmatched)} ground-truth "
            f"records (e.g. record_id {unmatched.iloc[0]}); expected one per record"
        )
    labels = truth["label"].to_numpy(dtype=float)
    metrics = regression_metrics(labels, predictions[truth["record_id"]].to_numpy(dtype=float))
    value = {name: metric["value"] for name, metric in metrics.items()}
    failed = value["mse"] > threshold
    # R2 is "NaN" when all labels are equal; format it as text then.
    r2 = f"{value['r2']:.2f}" if isinstance(value["r2"], float) else value["r2"]
    reason = (
        f"MSE {value['mse']:.2f} {'exceeds' if failed else 'is within'} threshold "
        f"{threshold:.2f} on {len(truth)} records (RMSE {value['rmse']:.2f}, "
        f"MAE {value['mae']:.2f}, R2 {r2}); {note}"
    )
    status = "failed" if failed else "passed"
    return {**stats, "regression_metrics": metrics, "status": status, "reason": reason}, 0


def report(base, threshold, min_labels=1, late_labels=False):
    """Write statistics.json; the exit status (0: every outcome is a result)."""
    stats, status = check(base, threshold, min_labels, late_labels)
    out = base / "output" / "model_quality" / "statistics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stats, indent=2, allow_nan=False) + "\n")
    print(f"{PROG}: {stats['status']}: {stats['reason']}")
    return status


def positive(text):
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--base-dir", type=Path, default=default_base_dir())
    parser.add_argument("--mse-threshold", type=positive, default=6.0)
    parser.add_argument("--min-labels", type=int, default=1, help="fewer: insufficient_labels")
    parser.add_argument(
        "--labels", action="store_true", help="join input/labels/*.labels.csv with predictions"
    )
    args = parser.parse_args(argv)
    return run_step(PROG, report, args.base_dir, args.mse_threshold, args.min_labels, args.labels)


if __name__ == "__main__":
    exit_step(main())
