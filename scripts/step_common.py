"""Code shared by the step scripts: bad-input errors, the exit convention, the data conventions
(missing-value tokens, number syntax), matrices and metrics.

This module ships with every step: each processing job receives all of scripts/ (packages such
as dq/ included) beside its entry script, and the training job's sourcedir.tar.gz holds it
beside train.py, so the scripts use a plain `import step_common`. It needs only numpy and the
standard library (xgboost stays in the scripts that use it) and keeps to Python 3.8 syntax, as
the container's Python may be older.
"""

import contextlib
import gzip
import math
import os
import re
import sys
import traceback
import warnings
import zlib
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


# One definition of the data conventions for every step (preprocess and data_quality agree):
# cell values read as missing (fixed here rather than a library's default list, which changes
# between versions; compared after stripping spaces) ...
MISSING_TOKENS = tuple(
    sorted(
        ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"]
        + ["<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
    )
)
# ... and what a number looks like: a plain decimal, optionally with an exponent. No "inf",
# "1,5" (decimal comma), "1_000" or hex; a match that overflows (1e999) is not a number either.
# Digits are [0-9], not \d: Python's \d also matches other scripts' digits ("١٢"), Arrow's
# RE2 \d does not (google/re2 doc/syntax.txt: Perl classes are ASCII-only), and pandas, re and
# Arrow must read the same cells as numbers.
NUMBER_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
# An integer literal: a number written without a fraction or an exponent.
INTEGER_PATTERN = r"^[+-]?[0-9]+$"
_NUMBER = re.compile(NUMBER_PATTERN)
# Data files the steps read; the extension is matched case-insensitively (batch.CSV too).
CSV_SUFFIXES = (".csv", ".csv.gz")
GZIP_MAGIC = b"\x1f\x8b"
# SageMaker keeps the first 1 KB of /opt/ml/output/message as ExitMessage and the file must be
# UTF-8 ("Save and Access Metadata Information About Your Processing Job",
# docs.aws.amazon.com/sagemaker/latest/dg/byoc-metadata.html); botocore's model gives
# FailureReason and ExitMessage max 1024 too.
MESSAGE_LIMIT = 1024


def is_number(text):
    """Whether a (stripped) cell is a finite number in the one number syntax."""
    return bool(_NUMBER.match(text)) and math.isfinite(float(text))


def parse_numbers(texts):
    """A float array of cells in the one number syntax (spaces around them ignored); NaN where
    a cell is anything else, so callers name the first bad cell."""
    values = np.full(len(texts), math.nan)
    for i, text in enumerate(texts):
        text = str(text).strip()
        if is_number(text):
            values[i] = float(text)
    return values


def is_csv(path):
    return path.name.lower().endswith(CSV_SUFFIXES)


def csv_files(folder):
    """The CSV files (.csv or .csv.gz, any case) under folder, sorted."""
    return sorted(path for path in Path(folder).rglob("*") if path.is_file() and is_csv(path))


def open_bytes(path, name=None):
    """A binary file object of a data file's content: .csv.gz decompressed; gzip bytes or
    UTF-16 text in a file named .csv are an InputError saying so (not "not UTF-8")."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    with open(path, "rb") as handle:
        head = handle.read(4)
    problem = None
    if head.startswith(GZIP_MAGIC):
        problem = "is gzip-compressed; expected plain CSV text (name it .csv.gz to have it read)"
    elif head.startswith((b"\xff\xfe", b"\xfe\xff")):
        problem = "is UTF-16 text; expected UTF-8 (save it as 'CSV UTF-8')"
    if problem:
        raise InputError(f"{name or path}: {problem}")
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


def read_bytes(path, name=None):
    """All of a data file's content (see open_bytes), with a broken .gz an InputError; messages
    name the file as `name` if given."""
    try:
        with open_bytes(path, name) as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as error:
        if not path.name.lower().endswith(".gz"):
            raise
        raise InputError(
            f"{name or path}: not a readable gzip file ({error}); expected gzip-compressed CSV"
        ) from None


def not_utf8(path, data, error):
    """The InputError for bytes that are not UTF-8: where, and the usual cause."""
    line = data[: error.start].count(b"\n") + 1
    byte = data[error.start : error.start + 1].hex()
    return InputError(
        f"{path}: line {line} is not UTF-8 text (byte 0x{byte}); expected UTF-8, e.g. "
        f"export as 'CSV UTF-8' rather than Latin-1/Windows-1252"
    )


def one_line(text, limit=MESSAGE_LIMIT):
    """text on one line, at most `limit` UTF-8 bytes (cut at a character boundary)."""
    flat = " ".join(str(text).split())
    data = flat.encode("utf-8")
    if len(data) <= limit:
        return flat
    return data[: limit - 3].decode("utf-8", "ignore") + "..."


def report_failure(message):
    """Says why the step failed: as the last stderr line (the job log) and in the file SageMaker
    turns into the job's reason, /opt/ml/output/failure for training (FailureReason) or
    /opt/ml/output/message for processing (ExitMessage; the notifier reads it, as a script
    error's FailureReason is only "AlgorithmError: ..."). Outside a job no file is written.
    The reason is one line of at most MESSAGE_LIMIT bytes."""
    message = one_line(message)
    print(message, file=sys.stderr)
    if os.environ.get("SM_MODEL_DIR"):  # a training job: /opt/ml/model -> /opt/ml/output
        target = Path(os.environ["SM_MODEL_DIR"]).parent / "output" / "failure"
    elif Path(__file__).resolve().parent.parts[-2:] == ("input", "code"):
        target = default_base_dir().parent / "output" / "message"
    else:
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(message, encoding="utf-8")
    except OSError:  # the reason is still on stderr
        pass


def run_step(prog, step, *args):
    """Exit status of step(*args): its own return value (None counts as 0), or 1 on any
    failure, reported as one line (see report_failure): `<prog>: <message>` for an InputError;
    for anything else (a bug, out of memory, disk full) the error and where it happened, after
    the traceback in the job log."""
    try:
        status = step(*args)
    except InputError as error:
        report_failure(f"{prog}: {error}")
        return 1
    except Exception as error:  # noqa: BLE001 - every failure gets its reason
        traceback.print_exc()
        report_failure(f"{prog}: {unexpected(error)}")
        return 1
    return status or 0


def exit_step(status):
    """Ends the step's process with `status` (run_step's), as sys.exit would, except that the
    native libraries' thread pools are not torn down: Arrow's CPU thread pool can abort the
    interpreter's exit (std::terminate, exit status -6 instead of 1) when its workers are still
    busy or starting, as right after a failed read (apache/arrow#34314, #39862: intermittent,
    "terminate called without an active exception"; 2 of 40 fresh runs of preprocess.py on a
    bad transform.json here). Every output is closed by then; stdout and stderr are flushed."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(status if isinstance(status, int) else 0 if status is None else 1)


def unexpected(error):
    """One line for an error nobody anticipated: what, and in which script line."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    if isinstance(error, MemoryError):
        what = "out of memory; use a larger processing instance or split the data"
    elif isinstance(error, OSError) and error.errno == 28:  # ENOSPC
        what = "no space left on device; raise the job's volume size (VolumeSizeInGB)"
    else:
        what = f"{type(error).__name__}: {str(error) or 'no message'}"
    return f"unexpected error, {what}{where}; the job log has the details"


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
