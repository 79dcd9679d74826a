"""Code shared by the step scripts: bad-input errors, the exit convention, matrices and metrics.

This module ships with every step: each processing job receives all of scripts/ beside its
entry script, and the training job's sourcedir.tar.gz holds it beside train.py, so the scripts
use a plain `import step_common`. It needs only numpy and the standard library (xgboost stays in
the scripts that use it) and keeps to Python 3.8 syntax, as the container's Python may be older.
"""

import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np


def default_base_dir():
    """The processing job root (/opt/ml/processing in SageMaker), found from where the step code
    is: every processing job receives scripts/ at <root>/input/code/, so the root is two levels
    above this file. A runner can therefore put a job anywhere (the local runtime's
    per-execution sandbox) without passing --base-dir."""
    return Path(__file__).resolve().parents[2]


class InputError(Exception):
    """Bad input; run_step() prints it as one stderr line and exits non-zero."""


def report_failure(message):
    """Says why the step failed: as the last stderr line (the job log) and in the file SageMaker
    turns into the job's reason, /opt/ml/output/failure for training (FailureReason) or
    /opt/ml/output/message for processing (ExitMessage; the notifier reads it, as a script
    error's FailureReason is only "AlgorithmError: ..."). Outside a job no file is written."""
    print(message, file=sys.stderr)
    if os.environ.get("SM_MODEL_DIR"):  # a training job: /opt/ml/model -> /opt/ml/output
        target = Path(os.environ["SM_MODEL_DIR"]).parent / "output" / "failure"
    elif Path(__file__).resolve().parent.parts[-2:] == ("input", "code"):
        target = default_base_dir().parent / "output" / "message"
    else:
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(message[:1024], encoding="utf-8")
    except OSError:  # the reason is still on stderr
        pass


def run_step(prog, step, *args):
    """Exit status of step(*args): its own return value (None counts as 0), or 1 on InputError,
    whose message is then reported as `<prog>: <message>` (see report_failure)."""
    try:
        status = step(*args)
    except InputError as error:
        report_failure(f"{prog}: {error}")
        return 1
    return status or 0


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
