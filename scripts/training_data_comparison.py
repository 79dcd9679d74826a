"""New training data compared with the previous approved version's training data.

Runs in the training pipelines after the data-quality baseline. Reads the whole new training
data (target column included: a shifted label distribution matters most) from
<base>/input/data/ and the previous approved version's training-data profile (statistics.json
and constraints.json) from <base>/input/previous/, and writes:

<base>/output/profile/    statistics.json, constraints.json: this data's profile (data_quality.py
                         --mode baseline); registered on the new version, so the next version
                         is compared with it.
<base>/output/comparison/ the check against the previous profile (data_quality.py --mode check:
                         statistics.json, constraint_violations.json, summary.json, with the
                         drift statistics of dq/drift_tests.py) and comparison.json, the findings:
                         {"previous_version", "finding_count", "findings", "summary"}.

`summary` is one line for the model version's CustomerMetadataProperties, e.g. "training data
vs version 3: 2 findings: target rings mean 9.93 to 11.9 +0.62 sd. shell_weight ...". With
--previous-version none (nothing approved yet) it says so and nothing is compared. Findings
never fail the step: a person reads them when approving the version.

Other options (--comparison-threshold, --drift-alpha, ...) go to data_quality.py unchanged.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

try:  # next to this file in the step code bundle, so on sys.path when run as a script
    import data_quality
except ImportError:  # loaded by its path (tests): make its folder importable
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import data_quality
from dq.monitor_format import load_json
from step_common import default_base_dir, exit_step, run_step

NO_PREVIOUS = "none"
# CustomerMetadataValue (botocore SageMaker model): 1..256 characters matching
# [\p{L}\p{Z}\p{N}_.:/=+\-@]*. Anything else becomes a space.
METADATA_MAX = 256
_NOT_METADATA = re.compile(r"[^\w .:/=+\-@]")


def metadata_value(text: str) -> str:
    """`text` as a valid CustomerMetadataValue: other characters -> space, at most 256."""
    value = re.sub(r"\s+", " ", _NOT_METADATA.sub(" ", text)).strip()
    return value if len(value) <= METADATA_MAX else value[: METADATA_MAX - 3] + "..."


def _means(statistics: dict) -> dict:
    """feature -> mean, for the numeric features of a statistics.json."""
    return {
        f["name"]: f["numerical_statistics"]["mean"]
        for f in statistics.get("features", [])
        if (f.get("numerical_statistics") or {}).get("mean") is not None
    }


def findings(check: dict, previous: dict, target: str) -> list[str]:
    """One short line per finding of the check, the target's first."""
    summary = check["summary.json"]
    new_means, old_means = _means(check["statistics.json"]), _means(previous)
    drift = (summary.get("drift") or {}).get("features", {})
    lines = []
    for violation in check["constraint_violations.json"]["violations"]:
        name, kind = violation["feature_name"], violation["constraint_check_type"]
        label = f"target {name}" if name == target else name
        if kind == "baseline_drift_check" and name in new_means and name in old_means:
            shift = drift.get(name, {}).get("shift_sd")
            sd = f" {shift:+.2g} sd" if shift is not None else ""
            line = f"{label} mean {old_means[name]:.3g} to {new_means[name]:.3g}{sd}"
        elif kind == "baseline_drift_check":
            share = drift.get(name, {}).get("share_change", 0.0)
            line = f"{label} category shares moved {100 * share:.0f} points"
        else:
            line = f"{label} {kind.removesuffix('_check').replace('_', ' ')}"
        lines.append(line)
    lines.sort(key=lambda line: not line.startswith("target "))
    return lines


def compare(check: dict, previous: dict, target: str, version: str) -> dict:
    lines = findings(check, previous, target)
    rows_before = previous.get("dataset", {}).get("item_count")
    rows_now = check["statistics.json"]["dataset"]["item_count"]
    count = f". rows {rows_before} to {rows_now}"
    if not any(f.get("name") == target for f in previous.get("features", [])):
        # A version registered before training-data profiles: its data-quality baseline (the
        # train split's features) has no target, and its row count is not comparable.
        lines = [line for line in lines if not line.startswith(f"target {target} ")]
        lines.append(f"target {target} not compared: version {version} has no profile of it")
        count = ""
    n = len(lines)
    text = f"{n} finding{'s' * (n != 1)}: " + ". ".join(lines) if lines else "no findings"
    return {
        "previous_version": version,
        "finding_count": n,
        "findings": lines,
        "rows": {"previous": rows_before, "new": rows_now},
        "summary": metadata_value(f"training data vs version {version}: {text}{count}"),
        "message": check["summary.json"]["message"],
    }


def parse_args(argv: list | None) -> tuple[argparse.Namespace, list]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--previous-version", required=True, help=f"or {NO_PREVIOUS!r}")
    parser.add_argument("--target", required=True)
    parser.add_argument("--data-version", help="the data's version; part of the cache key")
    parser.add_argument("--base-dir", type=Path, default=default_base_dir())
    return parser.parse_known_args(argv)


def _main(args: argparse.Namespace, settings: list) -> int:
    base = args.base_dir
    out = base / "output"

    def quality(mode: str, *more) -> dict:
        options = ["--mode", mode, "--base-dir", str(base), *settings, *more]
        return data_quality.run(data_quality.parse_args(options))

    data_quality.write_outputs(out / "profile", quality("baseline"))
    version = args.previous_version
    if version == NO_PREVIOUS:
        report = {
            "previous_version": NO_PREVIOUS,
            "finding_count": 0,
            "findings": [],
            "summary": "training data: no approved version yet - nothing to compare",
        }
    else:
        previous = base / "input" / "previous"
        statistics = previous / "statistics.json"
        check = quality(
            "check",
            *("--baseline-statistics", str(statistics)),
            *("--baseline-constraints", str(previous / "constraints.json")),
        )
        data_quality.write_outputs(out / "comparison", check)
        report = compare(check, load_json(statistics, "statistics"), args.target, version)
    data_quality.write_outputs(out / "comparison", {"comparison.json": report})
    print(report["summary"])
    return 0


def main(argv: list | None = None) -> int:
    args, settings = parse_args(argv)
    return run_step("training_data_comparison", _main, args, settings)


if __name__ == "__main__":
    exit_step(main())
