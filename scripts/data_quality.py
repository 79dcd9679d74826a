"""Data-quality baseline and check in the SageMaker Model Monitor file formats.

Our own replacement for Model Monitor's data-quality analyzer (closed to new customers), run as
an ordinary processing step. It needs numpy and pyarrow, which the SageMaker XGBoost 3.0-5
image ships (pyarrow 22.0.0, installed there for ml-io), so nothing is installed at run time
and the job can run without internet access. This file is the command line; the engine is the
dq package beside it (one module per idea, listed in dq/__init__.py), which with
step_common.py (the conventions every step script shares) every processing job receives in
the step code bundle: `python3 .../input/code/data_quality.py` has that folder on sys.path.

--mode baseline: CSV or Parquet files under <base>/input/data/ ->
    <out>/statistics.json, <out>/constraints.json
--mode check:    batch files under <base>/input/data/ + the baseline's statistics.json and
    constraints.json (default <base>/input/baseline/) ->
    <out>/statistics.json (of the batch), <out>/constraint_violations.json, <out>/summary.json
--shard (with baseline or check): only profile this instance's share of the data and write
    <out>/partial-<host>.json (host from /opt/ml/config/resourceconfig.json), for a processing
    job with several instances and ShardedByS3Key input.
--mode merge:    the partial-*.json files under <base>/input/partials/ -> the same files as the
    one-pass baseline or check they were made for (check also reads the baseline files).

<out> defaults to <base>/output. Violations are data: the check exits 0 and reports them in
summary.json ("violation_count" is what the pipeline reads). Unreadable input (no data files,
a file that cannot be parsed, bytes that are not UTF-8, a header with no rows, missing or
invalid baseline files) exits 1 with one line on stderr, printed last, naming the file and
what was expected; so does any other failure (step_common.run_step), that line also being the
job's ExitMessage.

How it scales: files are read in chunks of dq.readers.CHUNK_BYTES (CSV: split at line ends, each
chunk parsed by Arrow's multi-threaded reader while the previous one is profiled; Parquet:
record batches), so peak memory does not grow with the row count. Every statistic is mergeable:
counts, min and max add or compare exactly, mean and variance combine with Chan et al.'s
parallel formulas, quantiles live in a KLL sketch, distinct counts in a HyperLogLog sketch and
string values in a Misra-Gries frequent-items summary (exact below MAX_TRACKED_VALUES distinct
values). A sharded run therefore gives the one-pass result: counts, min, max and distinct counts
exactly, mean and variance up to floating-point rounding, quantiles within the sketch's error
bound (see dq.sketches.KllSketch).

Checks (constraint_check_type): data_type_check, completeness_check, baseline_drift_check,
missing_column_check, extra_column_check, categorical_values_check, non_negative_check. Numeric
drift is the Kolmogorov-Smirnov distance (largest gap between the two cumulative distributions)
computed from the two KLL sketches; categorical drift is the L-infinity distance between the
category frequency vectors. With comparison_method Robust (the default) a drift is reported only
when it is statistically significant across all features (dq/drift_tests.py: rank and KS tests,
chi-square for categories, Holm's correction at drift_alpha) and large enough to matter (mean
shift >= drift_min_shift_sd standard deviations or distance >= the threshold); a batch of fewer
than drift_min_rows rows gets an "inconclusive" drift verdict in summary.json instead.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

# dq/ is beside this file in the step code bundle, and `python3 <file>` puts the file's folder
# first on sys.path (Python docs, sys.path: "python script.py: prepend the script's directory").
try:
    import dq  # noqa: F401 - only whether it is importable
except ImportError:  # loaded by its path (tests, bench): make its folder importable
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from dq.checks import run_check
from dq.common import warn
from dq.monitor_format import load_baseline, run_baseline, write_outputs
from dq.readers import data_files, profile_files
from dq.settings import CHOICES, SETTING_NAMES, Settings
from dq.shards import load_partials, shard_name
from step_common import INTEGER_PATTERN, InputError, default_base_dir, exit_step, run_step


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _probability(text: str) -> float:
    value = _threshold(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _row_count(text: str) -> int:
    if not re.match(INTEGER_PATTERN, text.strip()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def parse_args(argv: list | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Data-quality baseline and check writing SageMaker Model Monitor files.",
        epilog="Threshold precedence in check mode: a feature's monitoringConfigOverrides > "
        "these options > the baseline's monitoring_config > built-in defaults. In baseline "
        "mode the options set what constraints.json records.",
    )
    parser.add_argument("--mode", choices=("baseline", "check", "merge"), required=True)
    parser.add_argument(
        "--shard",
        action="store_true",
        help="baseline/check: profile this instance's share of the data only and write "
        "partial-<host>.json for --mode merge (a job with several instances, ShardedByS3Key)",
    )
    parser.add_argument(
        "--base-dir",
        type=Path,
        default=default_base_dir(),  # it runs as <root>/input/code/data_quality.py
        help="job root: data is read from <base>/input/data/ (default: two levels above this "
        "script's folder, /opt/ml/processing in SageMaker)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="where the JSON files go (default <base>/output)",
    )
    parser.add_argument(
        "--partials",
        type=Path,
        metavar="DIR",
        help="merge: folder of the shards' partial-*.json (default <base>/input/partials)",
    )
    parser.add_argument(
        "--baseline-statistics",
        type=Path,
        metavar="FILE",
        help="check: baseline statistics.json (default <base>/input/baseline/statistics.json)",
    )
    parser.add_argument(
        "--baseline-constraints",
        type=Path,
        metavar="FILE",
        help="check: baseline constraints.json (default <base>/input/baseline/constraints.json)",
    )
    options = {
        "datatype_check_threshold": "largest allowed share of values of the wrong type "
        "(default 0: any is a violation)",
        "domain_content_threshold": "largest allowed share of string values outside the "
        "baseline domain (default 0)",
        "comparison_threshold": "largest allowed Kolmogorov-Smirnov distance between the "
        "baseline and batch distributions of a numeric feature (default 0.1)",
        "categorical_comparison_threshold": "largest allowed L-infinity distance between the "
        "baseline and batch category shares (default 0.1)",
        "completeness_tolerance": "check only: how far (0..1) completeness may fall below the "
        "baseline's before it is a violation (default 0)",
        "drift_min_shift_sd": "check, Robust: smallest mean shift, in baseline standard "
        "deviations, that is a drift (default 0.1); smaller ones alarm only via the distance",
    }
    for key, text in options.items():
        flag = "--" + key.replace("_", "-")
        parser.add_argument(flag, dest=key, type=_threshold, metavar="X", help=text)
    parser.add_argument(
        "--comparison-method",
        choices=CHOICES["comparison_method"],
        help="Robust (default): a drift must be statistically significant across all features "
        "(see --drift-alpha) and large enough (thresholds, --drift-min-shift-sd); Simple: the "
        "distance thresholds alone decide, as in Model Monitor",
    )
    parser.add_argument(
        "--drift-alpha",
        type=_probability,
        metavar="A",
        help="check, Robust: largest chance that a batch from the baseline's distribution "
        "raises any drift alarm (Holm's correction across features; default 0.05)",
    )
    parser.add_argument(
        "--drift-min-rows",
        type=_row_count,
        metavar="N",
        help="check, Robust: with fewer rows the drift verdict is 'inconclusive', not a "
        "violation (default 50)",
    )
    args = parser.parse_args(argv)
    if args.mode == "baseline" and args.completeness_tolerance is not None:
        parser.error("--completeness-tolerance applies to --mode check only")
    if args.shard and args.mode == "merge":
        parser.error("--shard applies to --mode baseline or check")
    return args


def run(args: argparse.Namespace) -> dict:
    base = args.base_dir
    cli_settings = {
        key: value
        for key, value in vars(args).items()
        if key in SETTING_NAMES and value is not None
    }
    data_dir = base / "input" / "data"
    if args.shard:
        # ShardedByS3Key hands out whole objects, so with fewer objects than instances some
        # instances get none: an empty partial, not an error (the merge step checks the total).
        files = data_files(data_dir, allow_empty=True)
        if not files:
            warn(f"{data_dir}: no data files for this shard; writing an empty partial")
        name = shard_name(base)
        return {f"partial-{name}.json": profile_files(data_dir, files).to_json(args.mode, name)}

    if args.mode == "merge":
        partials = args.partials or base / "input" / "partials"
        mode, profile = load_partials(partials)
        source, names = partials, "any shard's files"
    else:
        mode, files = args.mode, data_files(data_dir)
        source, names = data_dir, ", ".join(p.relative_to(data_dir).as_posix() for p in files)
    if mode == "check":  # before the data: a bad baseline should not cost a pass over it
        baseline_dir = base / "input" / "baseline"
        features, file_settings = load_baseline(
            args.baseline_statistics or baseline_dir / "statistics.json",
            args.baseline_constraints or baseline_dir / "constraints.json",
        )
    if args.mode != "merge":
        profile = profile_files(data_dir, files)
    if profile.item_count == 0:
        raise InputError(f"{source}: no data rows in {names}; expected at least one record")
    if mode == "baseline":
        return run_baseline(profile, Settings().updated(cli_settings))
    # Options over the baseline's monitoring_config over the defaults (overrides: run_check).
    return run_check(profile, features, Settings().updated({**file_settings, **cli_settings}))


def main(argv: list | None = None) -> int:
    """Exit status; every failure, bad input or not, ends with one line naming it (run_step)."""
    return run_step("data_quality", _main, parse_args(argv))


def _main(args: argparse.Namespace) -> int:
    output_dir = args.output_dir or args.base_dir / "output"
    documents = run(args)
    write_outputs(output_dir, documents)
    for name in documents:
        print(f"wrote {output_dir / name}")
    if "summary.json" in documents:
        print(documents["summary.json"]["message"])
    return 0


if __name__ == "__main__":
    exit_step(main())
