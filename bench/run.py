"""The benchmark: one command, from a clean clone (after `make test` or `make demo` created .venv).

    .venv/bin/python bench/run.py [--reps-small 5] [--reps-large 5] [--no-whylogs] [--no-demo]

1. Generates abalone-shaped CSVs of 1 M and 10 M rows into build/bench/ (deterministic, with
   data/make_sample_data.py's generator; not committed) and a whylogs 1.6.4 virtualenv in
   build/bench/whylogs-venv from bench/requirements-whylogs.lock (numpy 1.26, pandas 2.2:
   whylogs breaks on NumPy 2).
2. Profiling, at each size: our baseline and check (scripts/data_quality.py, as the pipeline
   runs them) vs the practical limit (bench/tools.py limit: pyarrow read + one numpy pass;
   with Arrow's default allocator and with ARROW_DEFAULT_MEMORY_POOL=system), pandas
   describe() and whylogs. Every run is its own process: wall time, and peak RSS from
   wait4(). The tools run interleaved, in a rotating order, `reps` times; medians are kept.
3. Scoring, at 1 M rows: the transform path (scripts/preprocess.py --mode apply, then scoring
   its output as the batch-transform step does: read as the plain loop reads, and as the
   XGBoost container parses it) vs a plain read-predict-write loop with xgboost on the same
   file, and predict() alone on in-memory arrays.
4. `make demo`, three times (median).

Writes build/bench/results.json and the results section of bench/README.md. Nothing here runs
in `make test`: the machine's load makes timings a measurement, never an assertion.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "bench"
README = REPO / "bench" / "README.md"
PY = sys.executable
WHYLOGS_PY = OUT / "whylogs-venv" / "bin" / "python"
TOOLS = REPO / "bench" / "tools.py"
DQ = REPO / "scripts" / "data_quality.py"
SIZES = {"1M": 1_000_000, "10M": 10_000_000}
TRANSFORM_PATH = "transform path end to end (preprocess.py apply + scoring)"
CONTAINER_PATH = "transform path end to end, scored as the XGBoost container parses and predicts"
PLAIN_LOOP = "plain xgboost read-predict-write (same raw file, same transform.json)"
TRANSFORM_TARGET = "transform path ≥ 80 % of the plain loop"  # issue 12
BLOCK = 1_000_000  # rows generated per seed


class Failure(Exception):
    """A measured command failed; the other measurements go on."""


@dataclasses.dataclass
class Run:
    wall: float
    rss_mb: float
    cpu: float  # user + system seconds of the process and its threads


# A small launcher starts each command: a child's peak RSS counts the pages of the process it
# was forked from (the high-water mark survives exec), so forking from this big process would
# inflate every figure. The launcher is a bare Python of about 10 MB.
LAUNCHER = """
import json, os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"wall": wall, "rss_kb": usage.ru_maxrss, "cpu": cpu, "status": code}))
"""


def measure(command: list, env: dict | None = None) -> Run:
    """Wall time and peak RSS (wait4's rusage) of `command` in a process of its own."""
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *map(str, command)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    report = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout else {}
    if report.get("status") != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise Failure(f"`{' '.join(map(str, command))}` failed: {last}")
    return Run(report["wall"], report["rss_kb"] / 1024, report["cpu"])


# ----------------------------------------------------------------------------- setup


def generate(rows: int, path: Path, seed: int) -> None:
    """Abalone-shaped rows from the project's own generator, 1 M rows per seed."""
    if path.exists():
        return
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    spec = importlib.util.spec_from_file_location("sample", REPO / "data" / "make_sample_data.py")
    sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sample)
    import numpy as np

    partial = path.with_suffix(".partial")
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    with partial.open("wb") as handle:
        handle.write((",".join(sample.COLUMNS) + "\n").encode())
        for block in range(0, rows, BLOCK):
            frame = sample.make_train(np.random.default_rng(seed + block // BLOCK), BLOCK)
            pa_csv.write_csv(pa.Table.from_pandas(frame[sample.COLUMNS]), handle, options)
    partial.rename(path)
    print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB)")


def tool_venv(python: Path, lock: Path) -> str | None:
    """Makes the virtualenv of `python` from `lock` unless it exists; None, or why it failed.
    (whylogs here, Evidently in bench/drift.py: each pins numpy/pandas our .venv can't.)"""
    if python.exists():
        return None
    try:
        subprocess.run([sys.executable, "-m", "venv", str(python.parents[1])], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-r", str(lock)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        return f"pip install -r {lock.name} failed: {(exc.stderr or '').strip()[-300:]}"
    return None


def whylogs_venv() -> str | None:
    """The whylogs virtualenv, or the reason it could not be made."""
    return tool_venv(WHYLOGS_PY, REPO / "bench" / "requirements-whylogs.lock")


def data_quality_job(name: str, data: Path, mode: str, baseline: Path | None = None) -> Path:
    """A job folder as the pipeline gives one: input/data/<file> (a link), input/baseline/."""
    job = OUT / "jobs" / name
    (job / "input" / "data").mkdir(parents=True, exist_ok=True)
    link = job / "input" / "data" / data.name
    if not link.exists():
        link.symlink_to(data)
    if baseline:
        (job / "input" / "baseline").mkdir(parents=True, exist_ok=True)
        for file in ("statistics.json", "constraints.json"):
            (job / "input" / "baseline" / file).write_bytes((baseline / file).read_bytes())
    return job


def scoring_setup() -> tuple[Path, Path]:
    """transform.json and xgboost-model trained by the pipeline's own scripts on the sample
    data, with the hyperparameters of pipelines.yaml."""
    sys.path.insert(0, str(REPO))
    from pipeline_scripts.config import load_pipeline_settings

    root = OUT / "model"
    model = root / "model" / "xgboost-model"
    transform = root / "prep" / "output" / "transform" / "transform.json"
    if model.exists():
        return transform, model
    data = root / "prep" / "input" / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "train.csv").write_bytes(
        (REPO / "data" / "train" / "abalone_synthetic_train.csv").read_bytes()
    )
    subprocess.run(
        [PY, str(REPO / "scripts" / "preprocess.py"), "--mode", "fit", "--base-dir",
         str(root / "prep")],
        check=True, capture_output=True,
    )  # fmt: skip
    hyper = dataclasses.asdict(load_pipeline_settings().training.hyperparameters)
    flags = [part for key, value in hyper.items() for part in (f"--{key}", str(value))]
    env = dict(
        os.environ,
        SM_MODEL_DIR=str(model.parent),
        SM_CHANNEL_TRAIN=str(root / "prep" / "output" / "train"),
        SM_CHANNEL_VALIDATION=str(root / "prep" / "output" / "validation"),
    )
    model.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [PY, str(REPO / "scripts" / "train.py"), *flags], check=True, env=env, capture_output=True
    )
    return transform, model


# ----------------------------------------------------------------------------- measuring


def interleaved(commands: dict, reps: int) -> dict:
    """{name: [Run]}: each rep runs every command once, starting one later each time."""
    names = list(commands)
    runs = {name: [] for name in names}
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            command, env = commands[name]
            runs[name].append(measure(command, env))
            print(f"  rep {rep + 1}/{reps} {name}: {runs[name][-1].wall:.2f} s, "
                  f"{runs[name][-1].rss_mb:.0f} MB", flush=True)  # fmt: skip
    return runs


def median(runs: list, field: str) -> float:
    return statistics.median(getattr(run, field) for run in runs)


def profiling(size: str, rows: int, reps: int, with_whylogs: bool) -> dict:
    data = OUT / f"abalone-{size.lower()}.csv"
    generate(rows, data, seed=1000)
    # The check compares against the baseline of another sample of the same population.
    reference = OUT / "abalone-reference-1m.csv"
    generate(BLOCK, reference, seed=7)
    base_job = data_quality_job("reference-baseline", reference, "baseline")
    if not (base_job / "output" / "statistics.json").exists():
        measure([PY, str(DQ), "--mode", "baseline", "--base-dir", str(base_job)])
    baseline_job = data_quality_job(f"baseline-{size}", data, "baseline")
    check_job = data_quality_job(f"check-{size}", data, "check", base_job / "output")
    commands = {
        "ours: baseline": ([PY, str(DQ), "--mode", "baseline", "--base-dir", str(baseline_job)],
                           None),
        "ours: check": ([PY, str(DQ), "--mode", "check", "--base-dir", str(check_job)], None),
        "limit (Arrow default allocator)": ([PY, str(TOOLS), "limit", str(data)], None),
        "limit (system allocator)": (
            [PY, str(TOOLS), "limit", str(data)], {"ARROW_DEFAULT_MEMORY_POOL": "system"}
        ),
        "pandas describe()": ([PY, str(TOOLS), "describe", str(data)], None),
    }  # fmt: skip
    if with_whylogs:
        commands["whylogs 1.6.4"] = ([str(WHYLOGS_PY), str(TOOLS), "whylogs", str(data)], None)
    print(f"profiling {size} rows ({data.stat().st_size / 1e6:.0f} MB CSV), {reps} reps")
    runs = interleaved(commands, reps)
    return {
        "rows": rows,
        "csv_mb": data.stat().st_size / 1e6,
        "reps": reps,
        "runs": {name: [dataclasses.asdict(r) for r in rs] for name, rs in runs.items()},
        "median": {
            name: {field: median(rs, field) for field in ("wall", "rss_mb", "cpu")}
            for name, rs in runs.items()
        },
    }


def scoring(reps: int) -> dict:
    transform, model = scoring_setup()  # puts REPO on sys.path
    from pipeline_scripts.config import load_pipeline_settings

    settings = load_pipeline_settings().transform
    data = OUT / "abalone-1m.csv"
    generate(SIZES["1M"], data, seed=1000)
    job = OUT / "jobs" / "preprocess-apply"
    (job / "input" / "data").mkdir(parents=True, exist_ok=True)
    (job / "input" / "transform").mkdir(parents=True, exist_ok=True)
    (job / "input" / "transform" / "transform.json").write_bytes(transform.read_bytes())
    link = job / "input" / "data" / data.name
    if not link.exists():
        link.symlink_to(data)
    transformed = job / "output" / "transform_input" / "batch.csv"
    commands = {
        "transform path: preprocess.py apply": (
            [PY, str(REPO / "scripts" / "preprocess.py"), "--mode", "apply", "--base-dir",
             str(job)], None),
        "transform path: score its output": (
            [PY, str(TOOLS), "score-transformed", str(transformed), str(model),
             str(OUT / "scored-transform.csv")], None),
        "transform path: score its output as the container does": (
            [PY, str(TOOLS), "score-container", str(transformed), str(model),
             str(OUT / "scored-container.csv"), str(settings.max_payload_mb),
             str(settings.max_concurrent_transforms)], None),
        "plain xgboost read-predict-write": (
            [PY, str(TOOLS), "score-plain", str(data), str(transform), str(model),
             str(OUT / "scored-plain.csv")], None),
    }  # fmt: skip
    print(f"scoring 1M rows, {reps} reps")
    measure(commands["transform path: preprocess.py apply"][0])  # its output feeds the next
    runs = interleaved(commands, reps)
    predict = []
    for _ in range(reps):
        result = subprocess.run(
            [PY, str(TOOLS), "predict-only", str(data), str(transform), str(model)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        predict.append(json.loads(result.stdout)["predict_seconds"])
    med = {name: median(rs, "wall") for name, rs in runs.items()}
    apply, score, container = (
        med["transform path: preprocess.py apply"],
        med["transform path: score its output"],
        med["transform path: score its output as the container does"],
    )
    rows = SIZES["1M"]
    return {
        "rows": rows,
        "reps": reps,
        "median_wall": med,
        "rows_per_s": {
            TRANSFORM_PATH: rows / (apply + score),
            "transform path, scoring step alone (on preprocess.py's output)": rows / score,
            CONTAINER_PATH: rows / (apply + container),
            PLAIN_LOOP: rows / med["plain xgboost read-predict-write"],
            "xgboost predict() alone, on in-memory arrays": rows / statistics.median(predict),
        },
        "median_rss_mb": {name: median(rs, "rss_mb") for name, rs in runs.items()},
        # CPU seconds (all threads) are less swayed than wall times by other work on the machine.
        "median_cpu": {name: median(rs, "cpu") for name, rs in runs.items()},
    }


def demo(reps: int) -> dict:
    """`make demo` `reps` times: wall times and each run's executions from its summary.json."""
    walls, statuses, outcomes = [], [], []
    for _ in range(reps):
        start = time.perf_counter()
        result = subprocess.run(["make", "demo"], cwd=REPO, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        statuses.append(result.returncode)
        summary = json.loads((REPO / "build" / "demo" / "summary.json").read_text())
        outcomes.append([f"{e['pipeline']} {e['status']}" for e in summary["executions"]])
    return {
        "walls": walls,
        "wall": statistics.median(walls),
        "exit_statuses": statuses,
        "executions": outcomes[-1],
    }


# ----------------------------------------------------------------------------- report


def machine() -> dict:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    memory = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    versions = {}
    for module in ("numpy", "pandas", "pyarrow", "xgboost"):
        versions[module] = __import__(module).__version__
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": cpu.group(1) if cpu else platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": round(int(memory.group(1)) / 1024**2, 1) if memory else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit,
        "load_average_start": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def faster_limit(median_: dict) -> float:
    return min(median_[name]["wall"] for name in median_ if name.startswith("limit"))


def render_profiling(size: str, block: dict) -> list:
    med = block["median"]
    limit, ours = faster_limit(med), med["ours: baseline"]["wall"]
    lines = [
        f"**Profiling {size} rows** ({block['csv_mb']:.0f} MB CSV, median of "
        f"{block['reps']} interleaved runs; ratios against the faster limit run)",
        "",
        "| tool | wall s | × limit | × ours (baseline) | CPU s | fastest run s | peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, values in med.items():
        fastest = min(run["wall"] for run in block["runs"][name])
        lines.append(
            f"| {name} | {values['wall']:.2f} | {values['wall'] / limit:.2f} | "
            f"{values['wall'] / ours:.2f} | {values['cpu']:.1f} | {fastest:.2f} | "
            f"{values['rss_mb']:.0f} |"
        )
    return [*lines, ""]


def render_scoring(score: dict) -> list:
    rates, plain = score["rows_per_s"], score["rows_per_s"][PLAIN_LOOP]
    lines = [
        f"**Scoring {score['rows'] // 1_000_000} M rows** (median of {score['reps']} runs; "
        "batch transform itself is SageMaker's container, so its scoring is reproduced with "
        "the same xgboost and the same input/output filters: read as the plain loop reads, and "
        "as the container parses and predicts, local_runtime/transform.py)",
        "",
        "| path | rows/s | × plain loop |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {name} | {rate / 1e6:.2f} M | {rate / plain:.2f} |" for name, rate in rates.items()
    ]
    walls = ", ".join(f"{k} {v:.2f} s" for k, v in score["median_wall"].items())
    lines += ["", f"Median wall times: {walls}."]
    if "median_cpu" in score:
        cpu = score["median_cpu"]
        path = cpu["transform path: preprocess.py apply"] + cpu["transform path: score its output"]
        share = cpu["plain xgboost read-predict-write"] / path
        lines[-1] += (
            " Median CPU seconds: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in cpu.items())
            + f"; by CPU time the transform path does {share:.0%} of the plain loop's rate."
        )
    return [*lines, ""]


def targets(results: dict) -> list:
    """(target, met, measured) for the issue's targets, from the largest size measured."""
    profiling = results["profiling"]
    found = []
    if profiling:
        large = profiling.get("10M") or next(iter(profiling.values()))
        med, runs = large["median"], large["runs"]
        limit = faster_limit(med)
        for mode in ("baseline", "check"):
            ratio = med[f"ours: {mode}"]["wall"] / limit
            found.append((f"{mode} ≤ 1.5× the limit", ratio <= 1.5, f"{ratio:.2f}×"))
        rss = max(med["ours: baseline"]["rss_mb"], med["ours: check"]["rss_mb"])
        found.append(("peak RSS ≤ 1 GB at the largest size", rss <= 1024, f"{rss:.0f} MB"))
        if "10M" in profiling and "1M" in profiling:
            flat = rss / profiling["1M"]["median"]["ours: baseline"]["rss_mb"]
            found.append(("peak RSS flat as rows grow (1M → 10M)", flat <= 1.25, f"{flat:.2f}×"))
        if "whylogs 1.6.4" in med:
            speedup = med["whylogs 1.6.4"]["wall"] / med["ours: baseline"]["wall"]
            best = min(r["wall"] for r in runs["whylogs 1.6.4"]) / min(
                r["wall"] for r in runs["ours: baseline"]
            )
            measured = f"{speedup:.1f}× (fastest runs: {best:.1f}×)"
            found.append(("≥ 15× faster than whylogs", speedup >= 15, measured))
        else:
            found.append(("≥ 15× faster than whylogs", False, results.get("whylogs_skipped", "")))
    if results.get("demo"):
        wall = results["demo"]["wall"]
        found.append(("`make demo` ≤ 60 s", wall <= 60, f"{wall:.1f} s"))
    score = results.get("scoring")
    if score:
        share = score["rows_per_s"][TRANSFORM_PATH] / score["rows_per_s"][PLAIN_LOOP]
        found.append((TRANSFORM_TARGET, share >= 0.8, f"{share:.0%}"))
    return found


def render(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Run {m['date']} on commit {m['git_commit']}: {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gb']} GB RAM, {m['os']}, Python {m['python']} "
        f"({', '.join(f'{k} {v}' for k, v in m['versions'].items())}). The machine was "
        f"shared with other work (load average {m['load_average_start'][0]:.1f} at the start, "
        f"{results['load_average_end'][0]:.1f} at the end on {m['cores']} cores): runs were "
        "interleaved and the medians are what counts; single runs varied by up to "
        f"{results['max_spread']:.0f} %.",
        "",
    ]
    for size, block in results["profiling"].items():
        lines += render_profiling(size, block)
    if results.get("scoring"):
        lines += render_scoring(results["scoring"])
    d = results.get("demo")
    if d:
        runs = ", ".join(f"{w:.1f}" for w in d["walls"])
        lines += [
            f"**`make demo`** (the whole loop, after install): median {d['wall']:.1f} s of "
            f"{len(d['walls'])} runs ({runs} s), exit statuses {d['exit_statuses']}; "
            f"executions: {'; '.join(d['executions'])}.",
            "",
        ]
    for failure in results["failures"]:
        lines += [f"Not measured: {failure}", ""]
    lines += ["| target | measured | verdict |", "| --- | ---: | --- |"]
    lines += [f"| {name} | {value} | {verdict(ok)} |" for name, ok, value in targets(results)]
    return "\n".join(lines) + "\n"


def write_readme(section: str, marker: str = "results") -> None:
    text = README.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    before, rest = text.split(start)
    _, after = rest.split(end)
    README.write_text(f"{before}{start}\n{section}{end}{after}")


def write_scoring_only(results: dict) -> str:
    """Replaces only the scoring table and the transform target's row of the results section
    (`--scoring-only`), noting when, where and at what load they were measured."""
    m, score = results["machine"], results["scoring"]
    share = score["rows_per_s"][TRANSFORM_PATH] / score["rows_per_s"][PLAIN_LOOP]
    block = render_scoring(score) + [
        f"Scoring measured {m['date']} on commit {m['git_commit']} with `bench/run.py "
        f"--scoring-only` ({m['cpu']}, {m['cores']} cores, load average "
        f"{m['load_average_start'][0]:.1f} at the start, {results['load_average_end'][0]:.1f} "
        "at the end: the machine was shared with other work).",
        "",
    ]
    text = README.read_text()
    start = text.index("**Scoring ")
    # The scoring block ends where the demo line or the targets table begins.
    ends = (text.find("**`make demo`**", start), text.find("| target |", start))
    end = min(i for i in ends if i > 0)
    text = text[:start] + "\n".join(block) + "\n" + text[end:]
    row = f"| {TRANSFORM_TARGET} | {share:.0%} | {verdict(share >= 0.8)} |"
    text = re.sub(r"^\| transform path ≥ .*$", row, text, count=1, flags=re.MULTILINE)
    README.write_text(text)
    return "\n".join(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps-small", type=int, default=5, help="runs per tool at 1M rows")
    parser.add_argument("--reps-large", type=int, default=5, help="runs per tool at 10M rows")
    parser.add_argument("--sizes", default="1M,10M", help="comma-separated of 1M, 10M")
    parser.add_argument("--no-whylogs", action="store_true")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--demo-reps", type=int, default=3, help="`make demo` runs")
    parser.add_argument(
        "--scoring-only", action="store_true", help="measure the scoring (1 M rows) only"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.scoring_only:
        results = {"machine": machine(), "scoring": scoring(args.reps_small)}
        results["load_average_end"] = os.getloadavg()
        (OUT / "results-scoring.json").write_text(json.dumps(results, indent=2) + "\n")
        print(write_scoring_only(results))
        return
    started = time.perf_counter()
    results = {"machine": machine(), "profiling": {}, "failures": []}
    skipped = "--no-whylogs" if args.no_whylogs else whylogs_venv()
    if skipped:
        results["whylogs_skipped"] = f"not run: {skipped}"
    for size in args.sizes.split(","):
        reps = args.reps_small if size == "1M" else args.reps_large
        try:
            results["profiling"][size] = profiling(size, SIZES[size], reps, not skipped)
        except Failure as exc:
            results["failures"].append(f"profiling {size} rows: {exc}")
    try:
        results["scoring"] = scoring(args.reps_small)
    except (Failure, subprocess.CalledProcessError) as exc:
        results["failures"].append(f"scoring: {exc}")
    if not args.no_demo:
        results["demo"] = demo(args.demo_reps)
    results["load_average_end"] = os.getloadavg()
    spreads = [
        (max(r["wall"] for r in runs) / min(r["wall"] for r in runs) - 1) * 100
        for block in results["profiling"].values()
        for runs in block["runs"].values()
    ]
    results["max_spread"] = max(spreads, default=0.0)
    results["total_seconds"] = time.perf_counter() - started
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    section = render(results)
    write_readme(section)
    print(section)
    print(f"total {results['total_seconds'] / 60:.1f} min; wrote {README} and "
          f"{OUT / 'results.json'}")  # fmt: skip


if __name__ == "__main__":
    main()
