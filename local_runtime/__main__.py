"""`make demo`: the whole MLOps loop on this machine, with no AWS account and no Docker."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path

gc.disable()  # imports only, until main() calls settle_heap() (local_runtime/heap.py)

from local_runtime.heap import settle_heap  # noqa: E402
from local_runtime.loop import DEFAULT_TRAIN_DATA, Options, run_loop  # noqa: E402
from pipeline_scripts.cli import DEFAULT_ENV_FILE, quiet_sdk  # noqa: E402
from pipeline_scripts.config import ConfigError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_runtime", description=__doc__)
    parser.add_argument(
        "--env-file",
        default=DEFAULT_ENV_FILE,
        help=f"the environment's tfvars file (default {DEFAULT_ENV_FILE})",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path("build/demo"),
        help="executions, report.html and summary.json (default build/demo)",
    )
    parser.add_argument(
        "--train-data",
        type=Path,
        default=DEFAULT_TRAIN_DATA,
        help="training CSV to upload (default: the synthetic sample)",
    )
    parser.add_argument(
        "--batch-data",
        type=Path,
        action="append",
        default=[],
        help="an inference batch CSV, with or without ground truth, instead of the demo's "
        "(a clean batch, a drifted one without labels and its labels later); repeat it for "
        "several batches, uploaded in that order (the report shows the last one scored)",
    )
    parser.add_argument(
        "--pipeline",
        dest="only_pipeline",
        help="run only this pipeline when a rule starts it (others are skipped)",
    )
    parser.add_argument(
        "--keep-state",
        action="store_true",
        help="keep earlier runs' files in --out-dir instead of wiping it",
    )
    args = parser.parse_args(argv)  # fmt: skip
    quiet_sdk()
    settle_heap()  # everything is imported by now
    # The progress lines are the display; handlers' and jobs' logs are in each step's log file.
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.ERROR)
    for path in (args.train_data, *args.batch_data):
        if not path.is_file():
            print(f"error: {path}: expected a CSV file, got no such file", file=sys.stderr)
            return 2
    try:
        summary = run_loop(Options(**{**vars(args), "batch_data": tuple(args.batch_data)}))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if summary.get("error"):
        print(
            f"error: {summary['error']} (summary.json and report.html are written)", file=sys.stderr
        )
        return 1
    failed_unexpectedly = [
        e for e in summary["executions"] if e["status"] != "Succeeded" and not e["failure_reason"]
    ]
    return 1 if failed_unexpectedly else 0


if __name__ == "__main__":
    sys.exit(main())
