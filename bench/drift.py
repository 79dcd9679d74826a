"""Drift alarms you can trust: batch-level false alarms and detection power, ours vs Evidently.

    .venv/bin/python bench/drift.py [--batches 200] [--batches-large 50]
        [--evidently-batches 30] [--evidently-batches-large 10] [--no-evidently]

UCI abalone (../shared/data/abalone.csv; the target `rings` dropped, as inference batches have
no label) is split at random (seed 7) into two halves. The baseline is made from the first half;
every batch is a bootstrap sample (rows drawn with replacement) of the second half, of 100, 200,
1,000 or 10,000 rows, then changed or not:
  - clean: unchanged (any drift alarm is a false alarm);
  - shift 0.2 / 0.3 / 0.5 sd: one numeric feature moved by that many baseline standard
    deviations; batch i shifts feature i mod 7, up for even i and down for odd i, so every
    feature and both directions count;
  - sex +15 points: 15 % of the batch's rows, taken from the F and I rows, relabelled M.
A batch is "alarmed" when the tool reports drift on any column (ours: any baseline_drift_check
violation; Evidently: DriftedColumnsCount > 0; its dataset-level verdict, drifted share >= 0.5,
is reported too). Rates come with Wilson 95 % intervals.

Ours runs in this process: scripts/data_quality.py --mode check, with the defaults that
pipelines.yaml also sets, on each batch written as CSV. Evidently 0.7.23 `DataDriftPreset()` with
its defaults runs in its own virtualenv (build/bench/evidently-venv from
bench/requirements-evidently.lock, made with bench/run.py's tool_venv), as a worker process of
this file that reads the same batch plan (row indices, written once to build/bench/drift/), so
both tools see identical batches. Evidently builds its HTML widgets on every run (about 1 s per
batch here), hence fewer batches for it. Everything is seeded: a rerun gives the same table.

Writes build/bench/drift/results.json and the drift section of bench/README.md. A separate
file from bench/run.py because it measures alarms, not time, and shares only helpers with it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "bench" / "drift"
DATA = REPO.parent / "shared" / "data" / "abalone.csv"
EVIDENTLY_PY = REPO / "build" / "bench" / "evidently-venv" / "bin" / "python"
EVIDENTLY_LOCK = REPO / "bench" / "requirements-evidently.lock"
SIZES = (100, 200, 1000, 10000)
LARGE = 10000  # sizes >= this use the --*-large batch counts
SHIFTS = (0.2, 0.3, 0.5)
CONDITIONS = ("clean", *(f"shift {s} sd" for s in SHIFTS), "sex +15 points")
NUMERIC = (
    "length",
    "diameter",
    "height",
    "whole_weight",
    "shucked_weight",
    "viscera_weight",
    "shell_weight",
)
SPLIT_SEED, PLAN_SEED = 7, 2026


# ----------------------------------------------------------------------------- shared (both venvs)


def halves() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.read_csv(DATA).drop(columns="rings")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(frame))
    half = len(frame) // 2
    return (
        frame.iloc[order[:half]].reset_index(drop=True),
        frame.iloc[order[half:]].reset_index(drop=True),
    )


def make_batch(
    baseline: pd.DataFrame, other: pd.DataFrame, rows: np.ndarray, condition: str, i: int
) -> pd.DataFrame:
    """Batch i of `condition`: the bootstrap rows `rows` of `other`, changed as documented."""
    batch = other.iloc[rows].reset_index(drop=True)
    if condition.startswith("shift"):
        size = float(condition.split()[1])
        name = NUMERIC[i % len(NUMERIC)]
        sign = 1.0 if i % 2 == 0 else -1.0
        batch[name] = batch[name] + sign * size * baseline[name].std(ddof=0)
    elif condition.startswith("sex"):
        candidates = np.flatnonzero(batch["sex"].to_numpy() != "M")
        batch.loc[candidates[: round(0.15 * len(batch))], "sex"] = "M"
    return batch


def batch_key(size: int, condition: str, i: int) -> str:
    return f"{size}|{condition}|{i}"


def wilson(hits: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return (math.nan, math.nan)
    z, p = 1.959963984540054, hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


# ----------------------------------------------------------------------------- Evidently worker


def evidently_worker(plan_path: str, out_path: str) -> None:
    """Runs in the Evidently venv: every planned batch through DataDriftPreset()."""
    import evidently
    from evidently import Report
    from evidently.presets import DataDriftPreset

    baseline, other = halves()
    plan = np.load(plan_path)
    results = {"version": evidently.__version__, "batches": {}}
    for key in plan.files:
        size, condition, i = key.split("|")
        batch = make_batch(baseline, other, plan[key], condition, int(i))
        snapshot = Report([DataDriftPreset()]).run(batch, baseline).dict()
        counted = next(
            m for m in snapshot["metrics"] if m["metric_name"].startswith("DriftedColumnsCount")
        )
        results["batches"][key] = {
            "drifted_columns": float(counted["value"]["count"]),
            "drifted_share": float(counted["value"]["share"]),
        }
    Path(out_path).write_text(json.dumps(results) + "\n")


# ----------------------------------------------------------------------------- ours


def _load_data_quality():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "data_quality", REPO / "scripts" / "data_quality.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_ours(baseline: pd.DataFrame, other: pd.DataFrame, plan: dict, work: Path) -> dict:
    dq = _load_data_quality()
    quiet = contextlib.redirect_stdout(io.StringIO())
    base_dir = work / "baseline"
    (base_dir / "input" / "data").mkdir(parents=True)
    baseline.to_csv(base_dir / "input" / "data" / "baseline.csv", index=False)
    with quiet:
        assert dq.main(["--mode", "baseline", "--base-dir", str(base_dir)]) == 0
    check = work / "check"
    (check / "input" / "data").mkdir(parents=True)
    batches = {}
    for key, rows in plan.items():
        size, condition, i = key.split("|")
        batch = make_batch(baseline, other, rows, condition, int(i))
        batch.to_csv(check / "input" / "data" / "batch.csv", index=False)
        arguments = ["--mode", "check", "--base-dir", str(check)]
        arguments += ["--baseline-statistics", str(base_dir / "output" / "statistics.json")]
        arguments += ["--baseline-constraints", str(base_dir / "output" / "constraints.json")]
        with contextlib.redirect_stdout(io.StringIO()):
            assert dq.main(arguments) == 0
        summary = json.loads((check / "output" / "summary.json").read_text())
        drifted = [
            v["feature_name"]
            for v in json.loads((check / "output" / "constraint_violations.json").read_text())[
                "violations"
            ]
            if v["constraint_check_type"] == "baseline_drift_check"
        ]
        batches[key] = {"drifted": drifted, "verdict": summary.get("drift", {}).get("verdict")}
    return batches


# ----------------------------------------------------------------------------- report


def rates(plan_keys: list, alarmed) -> dict:
    """(size, condition) -> [hits, n, low, high]."""
    table: dict = {}
    for key in plan_keys:
        size, condition, _ = key.split("|")
        cell = table.setdefault(f"{size}|{condition}", [0, 0])
        cell[0] += bool(alarmed(key))
        cell[1] += 1
    return {k: [h, n, *wilson(h, n)] for k, (h, n) in table.items()}


def percent(cell: list | None) -> str:
    if not cell:
        return "not run"
    hits, n, low, high = cell
    return f"{100 * hits / n:.0f} % ({100 * low:.0f}–{100 * high:.0f}), n={n}"


def render(results: dict) -> str:
    machine = results["machine"]
    lines = [
        f"Measured {machine['date']} on {machine['cpu']}, {machine['cores']} cores (shared with "
        f"other jobs; load {machine['load_average_start'][0]:.1f} at start), commit "
        f"{machine['git_commit']}, Evidently {results.get('evidently_version', 'not run')}; "
        f"{results['total_seconds'] / 60:.1f} min. Command: `{results['command']}`.",
        "",
        "Share of batches with a drift alarm on any column, with the 95 % Wilson interval and "
        "the number of batches. `clean` is the false-alarm rate (lower is better), the other "
        "rows detection power (higher is better).",
        "",
    ]
    for size in SIZES:
        lines += [f"**{size:,} rows**", ""]
        lines += [
            "| batches | ours | Evidently, any column | Evidently, dataset drift |",
            "| --- | ---: | ---: | ---: |",
        ]
        for condition in CONDITIONS:
            key = f"{size}|{condition}"
            lines.append(
                f"| {condition} | {percent(results['ours'].get(key))} | "
                f"{percent(results['evidently_any'].get(key))} | "
                f"{percent(results['evidently_dataset'].get(key))} |"
            )
        lines.append("")
    goals = results["goals"]
    lines += [
        "| goal | measured | verdict |",
        "| --- | --- | --- |",
        f"| ours: false alarms ≤ 5 % at every size | worst {goals['worst_false_alarm']} | "
        f"{'met' if goals['false_alarms_ok'] else '**not met**'} |",
        f"| ours: ≥ 90 % detection of a 0.3 sd shift at 200 rows | {goals['power_200']} | "
        f"{'met' if goals['power_ok'] else '**not met**'} |",
    ]
    return "\n".join(lines) + "\n"


def goals(ours: dict) -> dict:
    clean = [ours[f"{s}|clean"] for s in SIZES if f"{s}|clean" in ours]
    worst = max(clean, key=lambda c: c[0] / c[1])
    power = ours.get("200|shift 0.3 sd")
    return {
        "worst_false_alarm": percent(worst),
        "false_alarms_ok": all(c[0] / c[1] <= 0.05 for c in clean),
        "power_200": percent(power),
        "power_ok": bool(power) and power[0] / power[1] >= 0.90,
    }


def make_plan(batches: int, batches_large: int) -> dict:
    rng = np.random.default_rng(PLAN_SEED)
    other_rows = len(halves()[1])
    plan = {}
    for size in SIZES:
        count = batches_large if size >= LARGE else batches
        for condition in CONDITIONS:
            for i in range(count):
                plan[batch_key(size, condition, i)] = rng.integers(0, other_rows, size)
    return plan


def subset(plan: dict, batches: int, batches_large: int) -> dict:
    """The first batches of each (size, condition): what Evidently gets."""
    keep = {}
    for key, rows in plan.items():
        size, _, i = key.split("|")
        if int(i) < (batches_large if int(size) >= LARGE else batches):
            keep[key] = rows
    return keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="per size and condition")
    parser.add_argument("--batches-large", type=int, default=50, help="the same at 10,000 rows")
    parser.add_argument("--evidently-batches", type=int, default=30)
    parser.add_argument("--evidently-batches-large", type=int, default=10)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite bench/README.md")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"bench/drift.py: {DATA} not found; expected UCI abalone in ../shared/data/")
    import run as bench_run  # bench/run.py: machine(), tool_venv(), write_readme()

    started = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    results = {
        "machine": bench_run.machine(),
        "command": " ".join(["bench/drift.py", *sys.argv[1:]]),
    }
    plan = make_plan(args.batches, args.batches_large)
    evidently = None
    if not args.no_evidently:
        failed = bench_run.tool_venv(EVIDENTLY_PY, EVIDENTLY_LOCK)
        if failed:
            results["evidently_skipped"] = failed
        else:
            chosen = subset(plan, args.evidently_batches, args.evidently_batches_large)
            np.savez(OUT / "plan.npz", **chosen)
            # Runs alongside ours: one core each.
            evidently = subprocess.Popen(
                [str(EVIDENTLY_PY), __file__, "--evidently-worker", str(OUT / "plan.npz"),
                 str(OUT / "evidently.json")],
            )  # fmt: skip
    baseline, other = halves()
    with tempfile.TemporaryDirectory() as work:
        ours = run_ours(baseline, other, plan, Path(work))
    results["ours"] = rates(list(ours), lambda k: ours[k]["drifted"])
    results["ours_batches"] = ours
    results["evidently_any"], results["evidently_dataset"] = {}, {}
    if evidently is not None:
        if evidently.wait() != 0:
            results["evidently_skipped"] = f"worker exited with {evidently.returncode}"
        else:
            found = json.loads((OUT / "evidently.json").read_text())
            batches = found["batches"]
            results["evidently_version"] = found["version"]
            results["evidently_any"] = rates(list(batches), lambda k: batches[k]["drifted_columns"])
            results["evidently_dataset"] = rates(
                list(batches), lambda k: batches[k]["drifted_share"] >= 0.5
            )
            results["evidently_batches"] = batches
    results["goals"] = goals(results["ours"])
    results["total_seconds"] = time.perf_counter() - started
    (OUT / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    section = render(results)
    if not args.no_readme:
        bench_run.write_readme(section, marker="drift")
    print(section)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--evidently-worker"]:
        evidently_worker(*sys.argv[2:4])
    else:
        main()
