"""scripts/data_quality.py: our Model Monitor-format data-quality baseline and check.

Most tests call the script's main() in-process (it is one self-contained file, loaded from its
path); a few run it as a subprocess to pin the CLI contract: exit codes and the last stderr line.
The sharded path is run exactly as the rendered pipeline definition says.
"""

import ast
import dataclasses
import functools
import gzip
import importlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_scripts.module_files import load_module
from tests.conftest import run_step_script

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "data_quality.py"


def _load_script():
    if str(SCRIPT.parent) not in sys.path:  # as in a job: step_common.py is beside it
        sys.path.insert(0, str(SCRIPT.parent))
    return load_module(SCRIPT, "data_quality")


dq = _load_script()
# The engine's modules (scripts/dq/, importable now that scripts/ is on sys.path).
dq_checks = importlib.import_module("dq.checks")
dq_readers = importlib.import_module("dq.readers")
dq_sketches = importlib.import_module("dq.sketches")
dq_settings = importlib.import_module("dq.settings")


# ----------------------------------------------------------------------------- helpers


def write_csv(directory: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    frame.to_csv(path, index=False)
    return path


def run_baseline(base: Path, frame: pd.DataFrame, *options: str) -> dict:
    write_csv(base / "input" / "data", frame)
    assert dq.main(["--mode", "baseline", "--base-dir", str(base), *options]) == 0
    return {
        name: read_json(base / "output" / f"{name}.json") for name in ("statistics", "constraints")
    }


def put_baseline(base: Path, baseline: dict) -> None:
    (base / "input" / "baseline").mkdir(parents=True, exist_ok=True)
    for name, document in baseline.items():
        (base / "input" / "baseline" / f"{name}.json").write_text(json.dumps(document))


def run_check(base: Path, baseline: dict, frame: pd.DataFrame, *options: str) -> dict:
    """Check `frame` against `baseline` (as returned by run_baseline); all outputs by name."""
    put_baseline(base, baseline)
    write_csv(base / "input" / "data", frame)
    assert dq.main(["--mode", "check", "--base-dir", str(base), *options]) == 0
    return check_outputs(base / "output")


def check_outputs(directory: Path) -> dict:
    names = ("statistics", "constraint_violations", "summary")
    return {name: read_json(directory / f"{name}.json") for name in names}


def read_json(path: Path) -> dict:
    def no_nan(constant):
        raise AssertionError(f"{path} contains the non-JSON literal {constant}")

    return json.loads(Path(path).read_text(), parse_constant=no_nan)


def violation_set(result: dict) -> set[tuple[str, str]]:
    return {
        (v["feature_name"], v["constraint_check_type"])
        for v in result["constraint_violations"]["violations"]
    }


@functools.lru_cache
def _halves(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.read_csv(path, dtype=str).drop(columns=["rings"], errors="ignore")
    order = np.random.default_rng(7).permutation(len(frame))
    half = len(frame) // 2
    return (
        frame.iloc[order[:half]].reset_index(drop=True),
        frame.iloc[order[half:]].reset_index(drop=True),
    )


@pytest.fixture
def halves(abalone_csv):
    """(baseline half, batch half) of the abalone features as text, target dropped."""
    if not abalone_csv.exists():
        pytest.skip(f"{abalone_csv} not present")
    first, second = _halves(abalone_csv)
    return first.copy(), second.copy()


@pytest.fixture
def abalone_baseline(tmp_path, halves):
    return run_baseline(tmp_path / "baseline", halves[0])


def feature(document: dict, name: str) -> dict:
    return next(f for f in document["features"] if f["name"] == name)


def random_frame(seed: int, n: int) -> tuple[pd.DataFrame, dict]:
    """Text columns as a CSV holds them, and the numbers behind the numeric ones."""
    rng = np.random.default_rng(seed)
    floats = rng.normal(3.0, 2.5, n)
    ints = rng.integers(-50, 1000, n)
    missing = rng.random(n) < 0.03
    frame = pd.DataFrame(
        {
            "x": np.where(missing, "", [repr(float(v)) for v in floats]),
            "k": [str(v) for v in ints],
            "c": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    return frame, {"x": floats[~missing], "k": ints}


def true_rank_error(sketch, values: np.ndarray) -> float:
    """Largest |sketch rank - true rank| / n over 200 quantiles of `values`."""
    ordered = np.sort(values)
    items, weights = sketch.items_and_weights()
    order = np.argsort(items)
    cumulative = np.cumsum(weights[order])
    points = np.quantile(ordered, np.linspace(0.005, 0.995, 200))
    estimated = cumulative[np.searchsorted(items[order], points, side="right") - 1]
    exact = np.searchsorted(ordered, points, side="right")
    return float(np.max(np.abs(estimated - exact)) / len(values))


# ----------------------------------------------------------------------------- statistics


def test_statistics_equal_numpy_on_random_data(tmp_path):
    n = 20000  # well past k = 2048, so the sketch has compacted
    frame, numbers = random_frame(1, n)
    stats = run_baseline(tmp_path, frame)["statistics"]
    assert stats["dataset"]["item_count"] == n

    for name, kind in [("x", "Fractional"), ("k", "Integral")]:
        values = numbers[name].astype(float)
        f = feature(stats, name)
        assert f["inferred_type"] == kind
        num = f["numerical_statistics"]
        assert num["common"] == {"num_present": len(values), "num_missing": n - len(values)}
        assert num["min"] == np.min(values) and num["max"] == np.max(values)
        # Chan's merge of per-chunk moments: equal to numpy up to floating-point rounding.
        assert num["mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert num["sum"] == pytest.approx(np.sum(values), rel=1e-12)
        assert num["std_dev"] == pytest.approx(np.std(values), rel=1e-12)
        distinct = len(np.unique(values))
        assert num["distinct_count"] == pytest.approx(distinct, rel=4 * 0.0163)  # 4 sigma

        buckets = num["distribution"]["kll"]["buckets"]
        assert len(buckets) == 10
        assert sum(b["count"] for b in buckets) == len(values)  # KLL keeps the total weight
        assert buckets[0]["lower_bound"] == num["min"] and buckets[-1]["upper_bound"] == num["max"]
        assert all(
            a["upper_bound"] == b["lower_bound"]
            for a, b in zip(buckets[:-1], buckets[1:], strict=True)
        )
        # Each bucket count comes from two sketch ranks, each within the documented bound.
        expected = np.histogram(values, bins=10)[0]
        slack = 2 * 0.0048 * len(values)
        assert np.all(np.abs(np.array([b["count"] for b in buckets]) - expected) <= slack)
        sketch = num["distribution"]["kll"]["sketch"]
        assert sketch["parameters"] == {"c": 0.64, "k": 2048.0}
        weight = sum(len(level) * 2**i for i, level in enumerate(sketch["data"]))
        assert weight == len(values)
        assert all(np.all(np.diff(level) >= 0) for level in sketch["data"])

    strings = feature(stats, "c")["string_statistics"]
    assert strings["common"] == {"num_present": n, "num_missing": 0}
    assert strings["distinct_count"] == 3
    buckets = strings["distribution"]["categorical"]["buckets"]
    counts = frame["c"].value_counts()
    assert [(b["value"], b["count"]) for b in buckets] == list(counts.items())


def test_small_sample_sketch_holds_every_value(tmp_path):
    frame = pd.DataFrame({"x": ["3.5", "1", "2", "2", " 10 ", "NA"]})
    num = feature(run_baseline(tmp_path, frame)["statistics"], "x")["numerical_statistics"]
    assert num["distribution"]["kll"]["sketch"]["data"] == [[1.0, 2.0, 2.0, 3.5, 10.0]]
    assert num["common"] == {"num_present": 5, "num_missing": 1}
    counts = [b["count"] for b in num["distribution"]["kll"]["buckets"]]
    assert counts == [1.0, 2.0, 1.0, *[0.0] * 6, 1.0]  # width 0.9 from 1 to 10


@pytest.mark.parametrize("order", ["random", "sorted", "reversed"])
def test_quantile_error_is_within_the_documented_bound(order):
    """1M values in 100 chunks; sorted input is KLL's hardest case for a naive sampler."""
    rng = np.random.default_rng(11)
    values = rng.lognormal(0.0, 1.0, 1_000_000)
    if order != "random":
        values = np.sort(values)[:: 1 if order == "sorted" else -1]
    sketch = dq_sketches.KllSketch(seed=3)
    for chunk in np.array_split(values, 100):
        sketch.update_sorted(np.sort(chunk))
    items, weights = sketch.items_and_weights()
    assert weights.sum() == len(values) and len(items) < 6000  # bounded, weight exact
    error = true_rank_error(sketch, values)
    assert 0 < error <= sketch.rank_error_bound(delta=1e-4)  # union over the 200 points
    # The a priori bound in the docstring: sqrt(18.3 ln(2/delta)) / k, 0.48 % at delta = 1 %.
    assert sketch.rank_error_bound(0.01) <= math.sqrt(18.3 * math.log(200)) / 2048 <= 0.0049


def test_merged_sketches_stay_within_the_bound():
    rng = np.random.default_rng(5)
    parts = [rng.normal(i, 1.0 + i, 50_000 + 7_000 * i) for i in range(8)]
    sketches = []
    for i, part in enumerate(parts):
        sketch = dq_sketches.KllSketch(seed=i)
        for chunk in np.array_split(part, 5):
            sketch.update_sorted(np.sort(chunk))
        sketches.append(dq_sketches.KllSketch.from_json(json.loads(json.dumps(sketch.to_json()))))
    merged = sketches[0]
    for other in sketches[1:]:
        merged.merge(other)
    values = np.concatenate(parts)
    assert merged.n == len(values) and merged.items_and_weights()[1].sum() == len(values)
    assert true_rank_error(merged, values) <= merged.rank_error_bound(delta=1e-4) <= 0.0066


def test_hyperloglog_estimates_and_merges():
    rng = np.random.default_rng(2)
    values = rng.normal(0, 1, 300_000)
    left, right = dq_sketches.HyperLogLog(), dq_sketches.HyperLogLog()
    left.update(dq_sketches.hash_numbers(values[:200_000]))
    right.update(dq_sketches.hash_numbers(values[100_000:]))
    assert left.estimate() == pytest.approx(200_000, rel=4 * 0.0163)
    left.merge(right)  # overlapping halves: the union is counted once
    assert left.estimate() == pytest.approx(300_000, rel=4 * 0.0163)
    small = dq_sketches.HyperLogLog()
    small.update(dq_sketches.hash_texts([f"id-{i}" for i in range(500)]))
    assert small.estimate() == pytest.approx(500, abs=25)  # linear counting: 3.5 sigma


def test_frequent_items_are_exact_until_the_cap_then_bounded(monkeypatch):
    monkeypatch.setattr(dq_sketches, "MAX_TRACKED_VALUES", 50)
    rng = np.random.default_rng(4)
    stream = np.concatenate([rng.integers(0, 10, 5000), rng.integers(10, 5000, 5000)])
    rng.shuffle(stream)
    summaries = []
    for part in np.array_split(stream, 7):
        items = dq_sketches.FrequentItems()
        for chunk in np.array_split(part, 3):
            values, counts = np.unique(chunk, return_counts=True)
            items.update([str(v) for v in values], counts)
        summaries.append(items)
    merged = summaries[0]
    for other in summaries[1:]:
        merged.merge(other)
    assert len(merged.counts) <= 50 and merged.error > 0
    true = {str(v): int(c) for v, c in zip(*np.unique(stream, return_counts=True), strict=True)}
    for value in map(str, range(10)):  # the heavy hitters survive, low by at most `error`
        assert true[value] - merged.error <= merged.counts[value] <= true[value]
    exact = dq_sketches.FrequentItems()
    exact.update(["a", "b"], np.array([3, 1]))
    exact.update(["b"], np.array([2]))
    assert exact.counts == {"a": 3, "b": 3} and exact.error == 0


def test_cdf_distance_is_the_two_sample_ks_statistic():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 300), rng.normal(0.3, 1.2, 200)
    grid = np.concatenate([a, b])
    exact = np.max(
        np.abs(
            np.searchsorted(np.sort(a), grid, side="right") / len(a)
            - np.searchsorted(np.sort(b), grid, side="right") / len(b)
        )
    )
    distance = dq_checks.cdf_distance((a, np.ones(len(a))), (b, np.ones(len(b))))
    assert distance == pytest.approx(exact)


# ----------------------------------------------------------------------------- streaming


def numbers_of(stats: dict) -> dict:
    """Per feature, the statistics that do not depend on how the data was chunked."""
    out = {}
    for f in stats["features"]:
        group = f.get("numerical_statistics") or f["string_statistics"]
        kept = {k: v for k, v in group.items() if k not in ("distribution", "mean", "sum")}
        kept.pop("std_dev", None)
        if "string_statistics" in f:
            kept["buckets"] = group["distribution"]["categorical"]["buckets"]
        out[f["name"]] = (f["inferred_type"], kept)
    return out


def assert_same_statistics(one: dict, other: dict, *, sketch_slack: float) -> None:
    assert one["dataset"] == other["dataset"]
    assert numbers_of(one) == numbers_of(other)
    for a, b in zip(one["features"], other["features"], strict=True):
        if "numerical_statistics" not in a:
            continue
        x, y = a["numerical_statistics"], b["numerical_statistics"]
        for key in ("mean", "sum", "std_dev"):
            assert x[key] == pytest.approx(y[key], rel=1e-12), (a["name"], key)
        counts = [
            np.array([b["count"] for b in s["distribution"]["kll"]["buckets"]]) for s in (x, y)
        ]
        assert np.all(np.abs(counts[0] - counts[1]) <= sketch_slack * x["common"]["num_present"])


def test_small_chunks_give_the_one_chunk_result(tmp_path, monkeypatch):
    """Streaming: the file is read in ~150 chunks, with quoted newlines and commas in values
    that straddle chunk ends (and Arrow's 1 MB blocks in the one-chunk read), and statistics
    match a single-chunk read."""
    frame, _ = random_frame(8, 60000)
    choices = ['a "quoted", note', "three\nline\nnote", "plain"]
    notes = np.random.default_rng(8).choice(choices, 60000)
    frame["note"] = notes
    one = run_baseline(tmp_path / "one", frame)["statistics"]
    monkeypatch.setattr(dq_readers, "CHUNK_BYTES", 16384)
    many = run_baseline(tmp_path / "many", frame)["statistics"]
    assert_same_statistics(one, many, sketch_slack=2 * 0.0048)
    buckets = feature(many, "note")["string_statistics"]["distribution"]["categorical"]
    assert {b["value"]: b["count"] for b in buckets["buckets"]} == dict(
        zip(*np.unique(notes, return_counts=True), strict=True)
    )


def test_parquet_gives_the_csv_result(tmp_path):
    frame, _ = random_frame(9, 5000)
    csv_stats = run_baseline(tmp_path / "csv", frame)["statistics"]
    table = pa.table(
        {
            "x": pa.array(pd.to_numeric(frame["x"]).to_numpy(), pa.float64()),  # NaN = missing
            "k": pa.array(frame["k"].astype(int)),
            "c": pa.array(frame["c"]).dictionary_encode(),
        }
    )
    (tmp_path / "pq" / "input" / "data").mkdir(parents=True)
    pq.write_table(table, tmp_path / "pq" / "input" / "data" / "part.parquet", row_group_size=999)
    assert dq.main(["--mode", "baseline", "--base-dir", str(tmp_path / "pq")]) == 0
    parquet_stats = read_json(tmp_path / "pq" / "output" / "statistics.json")
    assert_same_statistics(csv_stats, parquet_stats, sketch_slack=2 * 0.0048)


def test_gzip_and_upper_case_csv_give_the_csv_result(tmp_path):
    frame, _ = random_frame(3, 3000)
    csv_stats = run_baseline(tmp_path / "csv", frame)["statistics"]
    data = tmp_path / "gz" / "input" / "data"
    data.mkdir(parents=True)
    (data / "part.CSV.GZ").write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    assert dq.main(["--mode", "baseline", "--base-dir", str(tmp_path / "gz")]) == 0
    gz_stats = read_json(tmp_path / "gz" / "output" / "statistics.json")
    assert_same_statistics(csv_stats, gz_stats, sketch_slack=0)


def test_wrong_type_values_within_the_threshold_are_counted_not_violations(tmp_path):
    """Model Monitor's semantics: a share of wrong-type values above datatype_check_threshold
    is a violation. Ours too, and every one below it is still counted in summary.json."""
    good = pd.DataFrame({"x": [str(v / 10) for v in range(200)]})
    baseline = run_baseline(tmp_path / "b", good)
    batch = good.copy()
    batch.loc[[3, 7, 11], "x"] = ["abc", "1,5", "inf"]
    loose = run_check(tmp_path / "loose", baseline, batch, "--datatype-check-threshold", "0.1")
    assert loose["summary"]["violation_count"] == 0
    (note,) = loose["summary"]["notes"]
    assert note.startswith(
        "x: 3 of 200 values (1.50%) are not Fractional (e.g. 'abc', '1,5', 'inf')"
    )
    assert note in loose["summary"]["message"]
    strict = run_check(tmp_path / "strict", baseline, batch)  # default threshold 0
    assert violation_set(strict) == {("x", "data_type_check")}
    assert strict["summary"]["notes"] == []


def test_values_too_large_to_summarise_are_a_finding(tmp_path):
    good = pd.DataFrame({"x": [str(v / 10) for v in range(200)]})
    baseline = run_baseline(tmp_path / "b", good)
    batch = good.copy()
    batch.loc[[0, 1], "x"] = ["1e308", "1.5e308"]
    result = run_check(tmp_path / "c", baseline, batch)
    found = [
        v for v in result["constraint_violations"]["violations"] if "too large" in v["description"]
    ]
    assert [(v["feature_name"], v["constraint_check_type"]) for v in found] == [
        ("x", "data_type_check")
    ]


def test_parquet_types_are_read_as_numbers_or_text(tmp_path, capsys):
    from decimal import Decimal

    data = tmp_path / "input" / "data"
    data.mkdir(parents=True)
    table = pa.table(
        {
            "flag": [True, False, None],
            "when": pa.array([1, 2, 3], pa.timestamp("s")),
            "price": pa.array([Decimal("1.50"), Decimal("-2.25"), None], pa.decimal128(5, 2)),
            "name": pa.array(["a", " b", "NA"], pa.large_string()),
            "raw": pa.array([b"x", b"y", b"x"], pa.binary()),
            "half": pa.array([1.5, None, float("nan")], pa.float16()),
        }
    )
    pq.write_table(table, data / "types.parquet")
    assert dq.main(["--mode", "baseline", "--base-dir", str(tmp_path)]) == 0
    stats = read_json(tmp_path / "output" / "statistics.json")
    kinds = {f["name"]: f["inferred_type"] for f in stats["features"]}
    assert kinds == {
        "flag": "String",
        "when": "String",
        "price": "Fractional",
        "name": "String",
        "raw": "String",
        "half": "Fractional",
    }
    price = feature(stats, "price")["numerical_statistics"]
    assert (price["min"], price["max"], price["common"]["num_missing"]) == (-2.25, 1.5, 1)
    name = feature(stats, "name")["string_statistics"]
    assert name["common"] == {"num_present": 2, "num_missing": 1}  # "NA": a missing token
    assert feature(stats, "half")["numerical_statistics"]["common"]["num_missing"] == 2

    pq.write_table(
        pa.table({"bad": pa.array([b"ok", b"\xff\xfe"], pa.binary())}), data / "b.parquet"
    )
    assert dq.main(["--mode", "baseline", "--base-dir", str(tmp_path)]) == 1
    assert "column 'bad' holds bytes that are not UTF-8" in _stderr_last_line(capsys)
    (data / "b.parquet").unlink()
    pq.write_table(pa.table({"nested": [[1, 2], [3]]}), data / "n.parquet")
    assert dq.main(["--mode", "baseline", "--base-dir", str(tmp_path)]) == 1
    assert "column 'nested' has type list<element: int64>" in _stderr_last_line(capsys)


# ----------------------------------------------------------------------------- partials


def run_shards(tmp_path: Path, mode: str, shares: list[list[Path]], *options: str) -> Path:
    """Runs `--shard` once per share of the files, as algo-1, algo-2, ...; returns the folder
    holding every instance's partial (one S3 prefix in SageMaker)."""
    partials = tmp_path / "partials"
    for i, share in enumerate(shares, start=1):
        host = tmp_path / f"algo-{i}"
        (host / "config").mkdir(parents=True)
        (host / "config" / "resourceconfig.json").write_text(
            json.dumps({"current_host": f"algo-{i}", "hosts": ["algo-1", "algo-2", "algo-3"]})
        )
        data = host / "processing" / "input" / "data"
        data.mkdir(parents=True)
        for path in share:
            (data / path.name).write_bytes(path.read_bytes())
        argv = ["--mode", mode, "--shard", "--base-dir", str(host / "processing")]
        assert dq.main([*argv, "--output-dir", str(partials), *options]) == 0
    return partials


@pytest.fixture
def split_files(tmp_path):
    """Four CSV files of one random data set, and the data set."""
    frame, _ = random_frame(12, 30000)
    frame.loc[frame.index % 1000 == 7, "x"] = "n/a"
    files = []
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), [4000, 15000, 21000])):
        files.append(write_csv(tmp_path / "files", frame.iloc[rows], f"part-{i}.csv"))
    return files, frame


def test_merged_partials_equal_one_pass(tmp_path, split_files):
    files, frame = split_files
    one = run_baseline(tmp_path / "one", frame)
    # Shard 3 gets no object, as ShardedByS3Key does with fewer objects than instances.
    shares = [[files[0], files[2]], [files[1], files[3]], []]
    partials = run_shards(tmp_path, "baseline", shares)
    assert sorted(p.name for p in partials.iterdir()) == [
        "partial-algo-1.json",
        "partial-algo-2.json",
        "partial-algo-3.json",
    ]
    merge = tmp_path / "merge"
    assert dq.main(["--mode", "merge", "--base-dir", str(merge), "--partials", str(partials)]) == 0
    merged = {n: read_json(merge / "output" / f"{n}.json") for n in ("statistics", "constraints")}
    assert merged["constraints"] == one["constraints"]
    assert_same_statistics(one["statistics"], merged["statistics"], sketch_slack=2 * 0.0048)


def test_merged_check_equals_one_pass_check(tmp_path, split_files):
    files, frame = split_files
    baseline = run_baseline(tmp_path / "baseline", frame)
    drifted = [tmp_path / "drift" / f.name for f in files]
    for source, target in zip(files, drifted, strict=True):
        part = pd.read_csv(source, dtype=str, keep_default_na=False)
        part["x"] = [str(float(v) + 3) if v not in ("", "n/a") else v for v in part["x"]]
        part.loc[part.index % 500 == 0, "c"] = "purple"
        write_csv(target.parent, part, target.name)
    one = tmp_path / "one"
    put_baseline(one, baseline)
    (one / "input" / "data").mkdir(parents=True)
    for path in drifted:
        (one / "input" / "data" / path.name).write_bytes(path.read_bytes())
    assert dq.main(["--mode", "check", "--base-dir", str(one)]) == 0
    single = check_outputs(one / "output")

    partials = run_shards(tmp_path, "check", [drifted[:1], drifted[1:]])
    merge = tmp_path / "merge"
    put_baseline(merge, baseline)
    assert dq.main(["--mode", "merge", "--base-dir", str(merge), "--partials", str(partials)]) == 0
    merged = check_outputs(merge / "output")
    assert (
        violation_set(merged)
        == violation_set(single)
        == {
            ("x", "baseline_drift_check"),
            ("c", "categorical_values_check"),
        }
    )
    assert merged["summary"]["violation_count"] == 2
    assert merged["summary"]["drift_distances"] == pytest.approx(
        single["summary"]["drift_distances"], abs=4 * 0.0048
    )


def test_bad_partials_are_a_clear_error(tmp_path, capsys, split_files):
    partials = run_shards(tmp_path, "baseline", [split_files[0][:1]])
    merge = ["--mode", "merge", "--base-dir", str(tmp_path / "m"), "--partials", str(partials)]
    (partials / "partial-algo-9.json").write_text('{"format": "something else"}')
    assert dq.main(merge) == 1
    assert "partial-algo-9.json: unusable partial statistics" in _stderr_last_line(capsys)
    run_shards(tmp_path / "c", "check", [split_files[0][1:2]])
    (partials / "partial-algo-9.json").write_bytes(
        (tmp_path / "c" / "partials" / "partial-algo-1.json").read_bytes()
    )
    assert dq.main(merge) == 1
    assert "mixed or unknown modes ['baseline', 'check']" in _stderr_last_line(capsys)
    empty = run_shards(tmp_path / "e", "baseline", [[]])
    argv = ["--mode", "merge", "--base-dir", str(tmp_path / "e"), "--partials", str(empty)]
    assert dq.main(argv) == 1
    assert "no data rows in any shard's files" in _stderr_last_line(capsys)


@pytest.mark.e2e
def test_sharded_pipeline_definitions_run_and_match_one_pass(tmp_path, halves):
    """instance_count 3 renders <name>Shards (3 instances, data ShardedByS3Key) then the merge
    step under the original name: valid API requests (and definitions, when the published
    schema is at hand); run as rendered, it gives the single-step result."""
    import botocore.session

    from pipeline_scripts.config import load_config
    from pipeline_scripts.render import render
    from tests.conftest import SHARED_DIR
    from tests.test_pipeline_definitions import api_errors, schema_errors
    from tests.test_step_contracts import run_processing

    config = load_config(REPO_ROOT / "env_files" / "dev_env.tfvars")
    sharded = dataclasses.replace(config.settings.data_quality, instance_count=3)
    config = dataclasses.replace(
        config, settings=dataclasses.replace(config.settings, data_quality=sharded)
    )
    definitions = {p.name: json.loads(p.definition) for p in render(config).pipelines}
    sagemaker_model = botocore.session.get_session().get_service_model("sagemaker")
    assert api_errors(definitions, sagemaker_model)[0] == []
    schema = SHARED_DIR / "schemas" / "sagemaker-pipeline-definition.schema.json"
    if schema.exists():  # ../shared is not part of a fork
        for definition in definitions.values():
            assert schema_errors(definition, json.loads(schema.read_text())) == []
    training = definitions[config.env.pipeline_train]
    steps = {s["Name"]: s for s in training["Steps"]}
    shards = steps["DataQualityBaselineShards"]["Arguments"]
    assert shards["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 3
    distribution = {
        i["InputName"]: i["S3Input"]["S3DataDistributionType"] for i in shards["ProcessingInputs"]
    }
    assert distribution == {"data": "ShardedByS3Key", "code": "FullyReplicated"}
    merge = steps["DataQualityBaseline"]["Arguments"]
    assert merge["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    partials_input = next(i for i in merge["ProcessingInputs"] if i["InputName"] == "partials")
    assert partials_input["S3Input"]["S3Uri"] == {
        "Get": "Steps.DataQualityBaselineShards.ProcessingOutputConfig.Outputs['partials']"
        ".S3Output.S3Uri"
    }
    inference = definitions[config.env.pipeline_inf]
    names = [s["Name"] for s in inference["Steps"]]
    assert names.index("DataQualityCheckShards") < names.index("DataQualityCheck")

    files = []
    for i, rows in enumerate(np.array_split(np.arange(len(halves[0])), 4)):
        files.append(write_csv(tmp_path / "objects", halves[0].iloc[rows], f"baseline-{i}.csv"))
    partials = tmp_path / "partials"
    partials.mkdir()
    for i, share in enumerate([files[:2], files[2:], []], start=1):  # ShardedByS3Key's split
        share_dir = tmp_path / f"share-{i}"
        share_dir.mkdir()
        for path in share:
            (share_dir / path.name).write_bytes(path.read_bytes())
        root = tmp_path / f"algo-{i}"
        (root / "config").mkdir(parents=True)
        (root / "config" / "resourceconfig.json").write_text(
            json.dumps({"current_host": f"algo-{i}"})
        )
        job, result = run_processing(
            training, "DataQualityBaselineShards", root, {"data": share_dir}
        )
        assert result.returncode == 0, result.stderr
        for written in job.output("partials").iterdir():
            written.rename(partials / written.name)
    job, result = run_processing(
        training, "DataQualityBaseline", tmp_path / "merge", {"partials": partials}
    )
    assert result.returncode == 0, result.stderr
    one = run_baseline(tmp_path / "one", halves[0], *merge_thresholds(merge))
    for name in ("statistics", "constraints"):
        written = read_json(job.output("data_quality") / f"{name}.json")
        if name == "constraints":
            assert written == one[name]
        else:
            assert_same_statistics(one[name], written, sketch_slack=2 * 0.0048)


def merge_thresholds(arguments: dict) -> list[str]:
    """The threshold options of a rendered data-quality step."""
    values = arguments["AppSpecification"]["ContainerArguments"]
    pairs = zip(values[:-1], values[1:], strict=True)
    return [part for flag, value in pairs if flag.endswith("-threshold") for part in (flag, value)]


# ----------------------------------------------------------------------------- file formats

NUMBER = {"type": "number"}
COUNT = {"type": "integer", "minimum": 0}
COMMON = {
    "type": "object",
    "required": ["num_present", "num_missing"],
    "additionalProperties": False,
    "properties": {"num_present": COUNT, "num_missing": COUNT},
}


def _obj(properties: dict, optional: tuple = ()) -> dict:
    required = [k for k in properties if k not in optional]
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


NUMERIC_FEATURE = _obj(
    {
        "name": {"type": "string"},
        "inferred_type": {"enum": ["Integral", "Fractional"]},
        "numerical_statistics": _obj(
            {
                "common": COMMON,
                **{key: NUMBER for key in ("mean", "sum", "std_dev", "min", "max")},
                "distinct_count": COUNT,  # ours; custom containers may add statistics
                "distribution": _obj(
                    {
                        "kll": _obj(
                            {
                                "buckets": {
                                    "type": "array",
                                    "minItems": 10,
                                    "maxItems": 10,
                                    "items": _obj(
                                        {
                                            "lower_bound": NUMBER,
                                            "upper_bound": NUMBER,
                                            "count": NUMBER,
                                        }
                                    ),
                                },
                                "sketch": _obj(
                                    {
                                        "parameters": _obj({"c": NUMBER, "k": NUMBER}),
                                        "data": {
                                            "type": "array",
                                            "items": {"type": "array", "items": NUMBER},
                                        },
                                    }
                                ),
                            }
                        )
                    }
                ),
            }
        ),
    }
)
STRING_FEATURE = _obj(
    {
        "name": {"type": "string"},
        "inferred_type": {"enum": ["String", "Unknown"]},
        "string_statistics": _obj(
            {
                "common": COMMON,
                "distinct_count": COUNT,
                "distribution": _obj(
                    {
                        "categorical": _obj(
                            {
                                "buckets": {
                                    "type": "array",
                                    "items": _obj({"value": {"type": "string"}, "count": COUNT}),
                                }
                            }
                        )
                    }
                ),
            }
        ),
    }
)
STATISTICS_SCHEMA = _obj(
    {
        "version": NUMBER,
        "dataset": _obj({"item_count": COUNT}),
        "features": {"type": "array", "items": {"oneOf": [NUMERIC_FEATURE, STRING_FEATURE]}},
    }
)
ENABLED = {"enum": ["Enabled", "Disabled"]}
CONSTRAINTS_SCHEMA = _obj(
    {
        "version": NUMBER,
        "features": {
            "type": "array",
            "items": _obj(
                {
                    "name": {"type": "string"},
                    "inferred_type": {"enum": ["Integral", "Fractional", "String", "Unknown"]},
                    "completeness": {"type": "number", "minimum": 0, "maximum": 1},
                    "num_constraints": _obj({"is_non_negative": {"type": "boolean"}}),
                    "string_constraints": _obj(
                        {"domains": {"type": "array", "items": {"type": "string"}}}
                    ),
                    "monitoringConfigOverrides": {"type": "object"},
                },
                optional=("num_constraints", "string_constraints"),
            ),
        },
        "monitoring_config": _obj(
            {
                "evaluate_constraints": ENABLED,
                "emit_metrics": ENABLED,
                "datatype_check_threshold": NUMBER,
                "domain_content_threshold": NUMBER,
                "distribution_constraints": _obj(
                    {
                        "perform_comparison": ENABLED,
                        "comparison_threshold": NUMBER,
                        "comparison_method": {"enum": ["Simple", "Robust"]},
                        "categorical_comparison_threshold": NUMBER,
                        "categorical_drift_method": {"enum": ["LInfinity", "ChiSquared"]},
                    }
                ),
            }
        ),
    }
)
VIOLATIONS_SCHEMA = _obj(
    {
        "violations": {
            "type": "array",
            "items": _obj(
                {
                    "feature_name": {"type": "string"},
                    "constraint_check_type": {"enum": list(dq_checks.CHECKS)},
                    "description": {"type": "string", "minLength": 10},
                }
            ),
        }
    }
)
SUMMARY_SCHEMA = _obj(
    {
        "violation_count": COUNT,
        "violations_by_check": _obj({check: COUNT for check in dq_checks.CHECKS}),
        "features": {"type": "array", "items": {"type": "string"}},
        "message": {"type": "string", "pattern": "^[^\n]+$"},
        "drift_distances": {"type": "object", "additionalProperties": NUMBER},
        "notes": {"type": "array", "items": {"type": "string", "pattern": "^[^\n]+$"}},
        "drift": _obj(
            {
                "method": {"enum": ["Robust"]},
                "alpha": NUMBER,
                "min_rows": COUNT,
                "verdict": {"enum": ["drift", "no drift", "inconclusive", "not compared"]},
                "reason": {"type": "string"},
                "features": {"type": "object", "additionalProperties": {"type": "object"}},
            },
            optional=("reason",),
        ),
    },
    optional=("drift",),
)


def test_outputs_match_the_documented_format(tmp_path, halves, abalone_baseline):
    for name, schema in [("statistics", STATISTICS_SCHEMA), ("constraints", CONSTRAINTS_SCHEMA)]:
        jsonschema.validate(abalone_baseline[name], schema)
    constraints = abalone_baseline["constraints"]
    assert constraints["monitoring_config"] == {
        "evaluate_constraints": "Enabled",
        "emit_metrics": "Enabled",
        "datatype_check_threshold": 0.0,
        "domain_content_threshold": 0.0,
        "distribution_constraints": {
            "perform_comparison": "Enabled",
            "comparison_threshold": 0.1,
            "comparison_method": "Robust",
            "categorical_comparison_threshold": 0.1,
            "categorical_drift_method": "LInfinity",
        },
    }
    sex = feature(constraints, "sex")
    assert sex["inferred_type"] == "String" and sex["string_constraints"]["domains"] == [
        "F",
        "I",
        "M",
    ]
    length = feature(constraints, "length")
    assert length == {
        "name": "length",
        "inferred_type": "Fractional",
        "completeness": 1.0,
        "num_constraints": {"is_non_negative": True},
        "monitoringConfigOverrides": {},
    }

    batch = halves[1]
    batch.loc[:9, "sex"] = "X"  # a violation, so every part of the outputs is populated
    result = run_check(tmp_path / "check", abalone_baseline, batch)
    jsonschema.validate(result["statistics"], STATISTICS_SCHEMA)
    jsonschema.validate(result["constraint_violations"], VIOLATIONS_SCHEMA)
    jsonschema.validate(result["summary"], SUMMARY_SCHEMA)
    assert result["statistics"]["dataset"]["item_count"] == len(batch)


def test_baseline_writes_the_threshold_options(tmp_path, halves):
    options = ["--comparison-threshold", "0.2", "--datatype-check-threshold", "0.05"]
    options += ["--domain-content-threshold", "0.3", "--comparison-method", "Simple"]
    config = run_baseline(tmp_path, halves[0], *options)["constraints"]["monitoring_config"]
    assert config["datatype_check_threshold"] == 0.05
    assert config["domain_content_threshold"] == 0.3
    assert config["distribution_constraints"]["comparison_threshold"] == 0.2
    assert config["distribution_constraints"]["comparison_method"] == "Simple"


def test_output_is_stable_valid_json_even_for_extreme_values(tmp_path):
    frame = pd.DataFrame(
        {
            "huge": ["1e308", "-1e308", "0"],  # std overflows: written as null, not NaN
            "tiny_range": ["1.0", "1.0000000000000002", "1.0"],
            "constant": ["5", "5", "5"],
            "empty": ["", "", ""],
            "with_inf": ["1", "inf", "2"],
        }
    )
    first = run_baseline(tmp_path / "a", frame)
    second = run_baseline(tmp_path / "b", frame)
    for name in ("statistics.json", "constraints.json"):
        text = (tmp_path / "a" / "output" / name).read_text()
        assert text == (tmp_path / "b" / "output" / name).read_text()
        assert json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n" == text
    stats = first["statistics"]
    assert feature(stats, "huge")["numerical_statistics"]["std_dev"] is None
    constant = feature(stats, "constant")["numerical_statistics"]["distribution"]["kll"]
    assert sum(b["count"] for b in constant["buckets"]) == 3
    assert feature(stats, "empty")["inferred_type"] == "Unknown"
    assert feature(stats, "with_inf")["inferred_type"] == "String"  # inf is not a usable number
    assert second == first


def test_script_and_engine_keep_to_python_3_8_syntax():
    """The container's Python may be older than ours: no match, no X | Y at run time."""
    modules = [SCRIPT, *sorted((SCRIPT.parent / "dq").glob("*.py"))]
    assert len(modules) > 5
    for path in modules:
        ast.parse(path.read_text(), feature_version=(3, 8), filename=str(path))


def test_settings_are_one_frozen_validated_object():
    """Settings travel as a typed object: defaults, one-line errors naming the key, and
    partial settings (a file's, the options', an override) applied on top in order."""
    Settings = dq_settings.Settings
    defaults = Settings()
    assert (defaults.comparison_method, defaults.drift_min_rows) == ("Robust", 50)
    with pytest.raises(dataclasses.FrozenInstanceError):
        defaults.comparison_threshold = 0.5
    with pytest.raises(dq.InputError, match=r"^data_quality settings: drift_alpha must be a "):
        Settings(drift_alpha=1.5)
    with pytest.raises(dq.InputError, match=r"comparison_method must be one of \['Simple', "):
        Settings(comparison_method="Fancy")
    file = dq_settings.read_settings(
        {"emit_metrics": "Disabled", "distribution_constraints": {"comparison_threshold": 1}},
        "constraints.json: monitoring_config",
    )
    assert file == {"emit_metrics": "Disabled", "comparison_threshold": 1.0}
    merged = defaults.updated(file).updated({"comparison_threshold": 0.3})
    assert (merged.emit_metrics, merged.comparison_threshold) == ("Disabled", 0.3)
    assert isinstance(merged.comparison_threshold, float) and defaults.comparison_threshold == 0.1
    with pytest.raises(dq.InputError, match=r"^x: completeness_tolerance must be a number >= 0"):
        dq_settings.read_settings({"completeness_tolerance": -1}, "x")


# ----------------------------------------------------------------------------- checks


def test_other_half_of_real_data_has_no_violations(tmp_path, halves, abalone_baseline):
    result = run_check(tmp_path, abalone_baseline, halves[1])
    assert result["constraint_violations"] == {"violations": []}
    summary = result["summary"]
    assert summary["violation_count"] == 0 and summary["features"] == []
    assert set(summary["violations_by_check"].values()) == {0}
    assert summary["message"].startswith("No data-quality violations")
    assert set(summary["drift_distances"]) == set(halves[1].columns)
    assert max(summary["drift_distances"].values()) < 0.1


def _shift(frame, name):
    values = frame[name].astype(float)
    return frame.assign(**{name: (values + values.std()).map(repr)})


def _set_rows(frame, name, value, rows):
    frame = frame.copy()
    frame.loc[rows, name] = value
    return frame


CRAFTED = {
    "numeric shift": (
        lambda f: _shift(f, "length"),
        {("length", "baseline_drift_check")},
        ["distance 0.", "threshold 0.1", "batch mean", "retraining"],
    ),
    "new category": (
        lambda f: _set_rows(f, "sex", "X", slice(0, 19)),
        {("sex", "categorical_values_check")},
        ["20 of", "'X' x20", "['F', 'I', 'M']", "Map them"],
    ),
    "category shares": (
        lambda f: f.assign(sex="M"),
        {("sex", "baseline_drift_check")},
        ["L-infinity", "threshold 0.1", "100.0% in this batch"],
    ),
    "dropped column": (
        lambda f: f.drop(columns="height"),
        {("height", "missing_column_check")},
        ["'height'"],
    ),
    "added column": (
        lambda f: f.assign(colour="red"),
        {("colour", "extra_column_check")},
        ["'colour'"],
    ),
    "renamed column": (
        lambda f: f.rename(columns={"height": "Height"}),
        {("height", "missing_column_check"), ("Height", "extra_column_check")},
        ["differs only in case"],
    ),
    "some nulls": (
        lambda f: _set_rows(f, "diameter", "", f.index[f.index % 3 == 0]),
        {("diameter", "completeness_check")},
        ["% present vs 100.00% in the baseline"],
    ),
    "all null": (
        lambda f: f.assign(viscera_weight=""),
        {("viscera_weight", "completeness_check")},
        ["0.00% present"],
    ),
    "negative values": (
        lambda f: _set_rows(f, "shucked_weight", "-0.01", slice(0, 4)),
        {("shucked_weight", "non_negative_check")},
        ["5 of", "min -0.01", "sentinel"],
    ),
    "mixed types": (
        lambda f: _set_rows(f, "whole_weight", "12kg", slice(0, 2)),
        {("whole_weight", "data_type_check")},
        ["3 of", "'12kg'", "not Fractional"],
    ),
    "very long strings": (
        lambda f: _set_rows(f, "sex", "F" * 100_000, slice(0, 0)),
        {("sex", "categorical_values_check")},
        ["1 of", "'FFFFF", "...'"],
    ),
    "booleans and dates": (
        lambda f: f.assign(sex="true", when="2024-01-31"),
        {("sex", "categorical_values_check"), ("sex", "baseline_drift_check")}
        | {("when", "extra_column_check")},
        [],
    ),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_problem_gives_exactly_the_expected_violation(
    tmp_path, halves, abalone_baseline, case
):
    change, expected, phrases = CRAFTED[case]
    result = run_check(tmp_path, abalone_baseline, change(halves[1]))
    assert violation_set(result) == expected
    for violation in result["constraint_violations"]["violations"]:
        for phrase in phrases:
            assert phrase in violation["description"]
        assert len(violation["description"]) < 600  # readable, even for a 100 000-char value
    summary = result["summary"]
    assert summary["violation_count"] == len(expected)
    assert sorted(summary["features"]) == sorted({name for name, _ in expected})
    for _, check in expected:
        assert summary["violations_by_check"][check] >= 1
        assert check in summary["message"]


def test_mixed_types_show_in_batch_statistics(tmp_path, halves, abalone_baseline):
    batch = _set_rows(halves[1], "whole_weight", "12kg", slice(0, 2))
    stats = run_check(tmp_path, abalone_baseline, batch)["statistics"]
    mixed = feature(stats, "whole_weight")
    assert mixed["inferred_type"] == "String"
    assert mixed["string_statistics"]["common"]["num_present"] == len(batch)
    buckets = mixed["string_statistics"]["distribution"]["categorical"]["buckets"]
    assert {"value": "12kg", "count": 3} in buckets


def test_integral_baseline_flags_fractions(tmp_path):
    baseline = run_baseline(
        tmp_path / "b", pd.DataFrame({"rings": [str(i % 20) for i in range(99)]})
    )
    batch = pd.DataFrame({"rings": [str(i % 20) for i in range(97)] + ["7.5", "8.25"]})
    result = run_check(tmp_path / "c", baseline, batch)
    (violation,) = result["constraint_violations"]["violations"]
    assert violation["constraint_check_type"] == "data_type_check"
    assert "2 of 99 values" in violation["description"] and "'7.5'" in violation["description"]


def test_cli_thresholds_and_feature_overrides_relax_the_check(tmp_path, halves, abalone_baseline):
    batch = _set_rows(halves[1], "whole_weight", "12kg", slice(0, 2))
    batch = _set_rows(batch, "sex", "X", slice(0, 9))
    strict = run_check(tmp_path / "strict", abalone_baseline, batch)
    assert violation_set(strict) == {
        ("whole_weight", "data_type_check"),
        ("sex", "categorical_values_check"),
    }
    options = ["--datatype-check-threshold", "0.01", "--domain-content-threshold", "0.01"]
    assert violation_set(run_check(tmp_path / "cli", abalone_baseline, batch, *options)) == set()

    # Per-feature overrides, in both spellings, win over the CLI.
    constraints = json.loads(json.dumps(abalone_baseline["constraints"]))
    del feature(constraints, "whole_weight")["monitoringConfigOverrides"]
    feature(constraints, "whole_weight")["monitoring_config_overrides"] = {
        "datatype_check_threshold": 0.5
    }
    feature(constraints, "sex")["monitoringConfigOverrides"] = {"domain_content_threshold": 0.5}
    relaxed = {**abalone_baseline, "constraints": constraints}
    stricter_cli = ["--datatype-check-threshold", "0", "--domain-content-threshold", "0"]
    assert violation_set(run_check(tmp_path / "ovr", relaxed, batch, *stricter_cli)) == set()

    # Looser drift floors from the CLI hide a 1 sd shift (distance and mean shift both below
    # them: it is significant, but too small to matter); the baseline file is unchanged.
    shifted = _shift(halves[1], "length")
    floors = ["--comparison-threshold", "0.9", "--drift-min-shift-sd", "1.5"]
    loose = run_check(tmp_path / "drift", abalone_baseline, shifted, *floors)
    assert violation_set(loose) == set()
    assert loose["summary"]["drift"]["features"]["length"]["adjusted_p_value"] < 1e-10
    assert loose["summary"]["drift_distances"]["length"] > 0.2


def test_disabled_evaluation_reports_nothing(tmp_path, halves, abalone_baseline):
    constraints = json.loads(json.dumps(abalone_baseline["constraints"]))
    constraints["monitoring_config"]["evaluate_constraints"] = "Disabled"
    batch = halves[1].drop(columns="height")
    result = run_check(tmp_path, {**abalone_baseline, "constraints": constraints}, batch)
    assert result["summary"]["violation_count"] == 0


def test_robust_comparison_tolerates_sampling_noise_of_small_batches(
    tmp_path, halves, abalone_baseline
):
    small = halves[1].iloc[:30]
    robust = run_check(tmp_path / "robust", abalone_baseline, small)
    assert violation_set(robust) == set()
    # The same small batch does exceed 0.1 somewhere by chance: only "Simple" reports it.
    assert max(robust["summary"]["drift_distances"].values()) > 0.1
    simple = run_check(
        tmp_path / "simple", abalone_baseline, small, "--comparison-method", "Simple"
    )
    assert {check for _, check in violation_set(simple)} == {"baseline_drift_check"}


# ----------------------------------------------------------------------------- bad input


def _stderr_last_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


BAD_DATA = {
    "no data file": (
        lambda d: (d / "notes.txt").write_text("a,b\n1,2\n"),
        "no .csv, .csv.gz or .parquet",
    ),
    "gzip bytes in a .csv": (
        lambda d: (d / "x.csv").write_bytes(gzip.compress(b"a,b\n1,2\n")),
        "x.csv: is gzip-compressed",
    ),
    "broken .csv.gz": (
        lambda d: (d / "x.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n" * 1000)[:-9]),
        "x.csv.gz: not a readable gzip file",
    ),
    "utf-16": (lambda d: (d / "x.csv").write_text("a,b\n1,2\n", "utf-16"), "is UTF-16 text"),
    "ragged row": (lambda d: (d / "x.csv").write_text("a,b\n1,2\n3,4,5\n"), "x.csv"),
    "every row too long": (lambda d: (d / "x.csv").write_text("a,b\n1,2,9\n3,4,5\n"), "x.csv"),
    "not utf-8": (lambda d: (d / "x.csv").write_bytes(b"a,b\n\xff\xfe,\x00\n"), "UTF-8"),
    "not utf-8 deep in the file": (
        lambda d: (d / "x.csv").write_bytes(b"a,b\n" + b"x,1\n" * 100_000 + b"\xe9t\xe9,2\n"),
        "column 'a' holds bytes that are not UTF-8 (e.g. b'\\xe9t\\xe9')",
    ),
    "header not utf-8": (lambda d: (d / "x.csv").write_bytes(b"\xffa,b\n1,2\n"), "header is not"),
    "empty file": (lambda d: (d / "x.csv").write_text(""), "expected a CSV header"),
    "header only": (lambda d: (d / "x.csv").write_text("a,b\n"), "no data rows in x.csv"),
    "duplicate column": (lambda d: (d / "x.csv").write_text("a,a\n1,2\n"), "appears twice"),
    "unnamed column": (lambda d: (d / "x.csv").write_text("a,,c\n1,2,3\n"), "has no name"),
    "not parquet": (lambda d: (d / "x.parquet").write_text("a,b\n1,2\n"), "not a readable Parquet"),
}


@pytest.mark.parametrize("mode", ["baseline", "check"])
@pytest.mark.parametrize("case", BAD_DATA)
def test_unreadable_data_is_a_clear_error(tmp_path, capsys, case, mode):
    make, phrase = BAD_DATA[case]
    data_dir = tmp_path / "input" / "data"
    data_dir.mkdir(parents=True)
    make(data_dir)
    if mode == "check":  # a valid baseline, so the data is what fails
        put_baseline(tmp_path, run_baseline(tmp_path / "b", pd.DataFrame({"a": ["1", "2"]})))
    assert dq.main(["--mode", mode, "--base-dir", str(tmp_path)]) == 1
    last = _stderr_last_line(capsys)
    assert last.startswith("data_quality: ") and str(data_dir) in last
    assert phrase in last
    assert not (tmp_path / "output").exists()


def test_files_with_different_headers_count_absent_columns_as_missing(tmp_path, capsys):
    data = tmp_path / "input" / "data"
    write_csv(data, pd.DataFrame({"a": ["1", "2"], "b": ["x", "y"]}), "1.csv")
    write_csv(data, pd.DataFrame({"b": ["z"], "c": ["3.5"]}), "2.csv")
    assert dq.main(["--mode", "baseline", "--base-dir", str(tmp_path)]) == 0
    assert "different headers" in capsys.readouterr().err
    stats = read_json(tmp_path / "output" / "statistics.json")
    assert [f["name"] for f in stats["features"]] == ["a", "b", "c"]
    commons = {
        f["name"]: (f.get("numerical_statistics") or f["string_statistics"])["common"]
        for f in stats["features"]
    }
    assert commons == {
        "a": {"num_present": 2, "num_missing": 1},
        "b": {"num_present": 3, "num_missing": 0},
        "c": {"num_present": 1, "num_missing": 2},
    }


def _break(name: str, edit):
    def apply(baseline: dict) -> dict:
        broken = json.loads(json.dumps(baseline))
        edit(broken[name])
        return broken

    return apply


BAD_BASELINES = {
    "statistics missing": ("statistics.json", None, "baseline file not found"),
    "constraints not JSON": ("constraints.json", "{oops", "invalid JSON"),
    "no features list": (
        "constraints.json",
        _break("constraints", lambda c: c.pop("features")),
        "'features' list",
    ),
    "bad inferred_type": (
        "constraints.json",
        _break("constraints", lambda c: c["features"][0].update(inferred_type="Text")),
        "inferred_type must be one of",
    ),
    "bad threshold": (
        "constraints.json",
        _break(
            "constraints",
            lambda c: c["monitoring_config"]["distribution_constraints"].update(
                comparison_threshold="high"
            ),
        ),
        "comparison_threshold must be a number >= 0, got 'high'",
    ),
    "unsupported drift method": (
        "constraints.json",
        _break(
            "constraints",
            lambda c: c["monitoring_config"]["distribution_constraints"].update(
                categorical_drift_method="ChiSquared"
            ),
        ),
        "categorical_drift_method must be one of ['LInfinity']",
    ),
    "feature without statistics": (
        "statistics.json",
        _break("statistics", lambda s: s["features"].pop(1)),
        "no statistics for feature 'length'",
    ),
    "sketch missing": (
        "statistics.json",
        _break(
            "statistics",
            lambda s: s["features"][1]["numerical_statistics"]["distribution"].pop("kll"),
        ),
        "distribution.kll.sketch.data as a list",
    ),
}


@pytest.mark.parametrize("case", BAD_BASELINES)
def test_unusable_baseline_is_a_clear_error(tmp_path, capsys, halves, abalone_baseline, case):
    file_name, content, phrase = BAD_BASELINES[case]
    baseline_dir = tmp_path / "input" / "baseline"
    documents = content(abalone_baseline) if callable(content) else abalone_baseline
    put_baseline(tmp_path, documents)
    if content is None:
        (baseline_dir / file_name).unlink()
    elif isinstance(content, str):
        (baseline_dir / file_name).write_text(content)
    write_csv(tmp_path / "input" / "data", halves[1])
    assert dq.main(["--mode", "check", "--base-dir", str(tmp_path)]) == 1
    last = _stderr_last_line(capsys)
    assert str(baseline_dir / file_name) in last and phrase in last


# ----------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    return run_step_script(SCRIPT.name, *args, expect_ok=False)


@pytest.mark.e2e
def test_cli_contract(tmp_path, halves):
    base = tmp_path / "job"
    write_csv(base / "input" / "data", halves[0])
    assert _cli("--mode", "baseline", "--base-dir", str(base)).returncode == 0
    # The pipeline may mount the two baseline files as separate inputs.
    for name in ("statistics", "constraints"):
        target = base / "input" / f"baseline_{name}"
        target.mkdir()
        (base / "output" / f"{name}.json").rename(target / f"{name}.json")
    (base / "input" / "data" / "data.csv").unlink()
    write_csv(base / "input" / "data", halves[1].drop(columns="height"), "batch.csv")
    checked = _cli(
        "--mode",
        "check",
        "--base-dir",
        str(base),
        "--baseline-statistics",
        str(base / "input" / "baseline_statistics" / "statistics.json"),
        "--baseline-constraints",
        str(base / "input" / "baseline_constraints" / "constraints.json"),
        "--output-dir",
        str(base / "output" / "data_quality"),
    )
    assert checked.returncode == 0, checked.stderr  # violations are data, not a failure
    summary = read_json(base / "output" / "data_quality" / "summary.json")
    assert summary["violation_count"] == 1
    assert summary["message"] in checked.stdout

    failed = _cli("--mode", "check", "--base-dir", str(base))
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"data_quality: .*statistics\.json: baseline file not found.*", last)
    assert "--shard applies to" in _cli("--mode", "merge", "--shard").stderr


def test_help_documents_the_options():
    text = _cli("--help").stdout
    for option in (
        "--comparison-threshold",
        "--categorical-comparison-threshold",
        "--datatype-check-threshold",
        "--domain-content-threshold",
        "--completeness-tolerance",
        "--comparison-method",
        "--shard",
        "--partials",
    ):
        assert option in text
