"""Code shared by the step scripts: bad-input errors, the exit convention, matrices and metrics.

This module ships with every step: each processing job receives all of scripts/ beside its
entry script, and the training job's sourcedir.tar.gz holds it beside train.py, so the scripts
use a plain `import step_common`. It needs only numpy and the standard library (xgboost stays in
the scripts that use it) and keeps to Python 3.8 syntax, as the container's Python may be older.
"""

import math
import sys
import warnings

import numpy as np


class InputError(Exception):
    """Bad input; run_step() prints it as one stderr line and exits non-zero."""


def run_step(prog, step, *args):
    """Exit status of step(*args): its own return value (None counts as 0), or 1 on InputError,
    whose message is then printed as `<prog>: <message>`. It is the last stderr line, which
    SageMaker shows as the step's failure reason."""
    try:
        status = step(*args)
    except InputError as error:
        print(f"{prog}: {error}", file=sys.stderr)
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
