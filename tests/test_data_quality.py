"""scripts/data_quality.py: our Model Monitor-format data-quality baseline and check.

Most tests call the script's main() in-process (it is one self-contained file, loaded from its
path); a few run it as a subprocess to pin the CLI contract: exit codes and the last stderr line.
"""

import functools
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "data_quality.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("data_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


dq = _load_script()


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


def run_check(base: Path, baseline: dict, frame: pd.DataFrame, *options: str) -> dict:
    """Check `frame` against `baseline` (as returned by run_baseline); all outputs by name."""
    for name, document in baseline.items():
        (base / "input" / "baseline").mkdir(parents=True, exist_ok=True)
        (base / "input" / "baseline" / f"{name}.json").write_text(json.dumps(document))
    write_csv(base / "input" / "data", frame)
    assert dq.main(["--mode", "check", "--base-dir", str(base), *options]) == 0
    names = ("statistics", "constraint_violations", "summary")
    return {name: read_json(base / "output" / f"{name}.json") for name in names}


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


# ----------------------------------------------------------------------------- statistics


def test_statistics_equal_numpy_on_random_data(tmp_path):
    rng = np.random.default_rng(1)
    n = 5000
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
    stats = run_baseline(tmp_path, frame)["statistics"]
    assert stats["dataset"]["item_count"] == n

    for name, values, kind in [("x", floats[~missing], "Fractional"), ("k", ints, "Integral")]:
        f = feature(stats, name)
        assert f["inferred_type"] == kind
        num = f["numerical_statistics"]
        assert num["common"] == {"num_present": len(values), "num_missing": n - len(values)}
        assert num["mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert num["sum"] == pytest.approx(np.sum(values), rel=1e-12)
        assert num["std_dev"] == pytest.approx(np.std(values), rel=1e-12)
        assert num["min"] == pytest.approx(np.min(values), rel=1e-15)
        assert num["max"] == pytest.approx(np.max(values), rel=1e-15)
        buckets = num["distribution"]["kll"]["buckets"]
        assert len(buckets) == 10
        assert sum(b["count"] for b in buckets) == len(values)
        assert buckets[0]["lower_bound"] == num["min"] and buckets[-1]["upper_bound"] == num["max"]
        assert all(
            a["upper_bound"] == b["lower_bound"]
            for a, b in zip(buckets[:-1], buckets[1:], strict=True)
        )
        expected_counts = np.histogram(values, bins=10)[0]
        assert [b["count"] for b in buckets] == pytest.approx(expected_counts, abs=1)
        sketch = num["distribution"]["kll"]["sketch"]
        assert sketch["parameters"] == {"c": 0.64, "k": 2048.0}
        items = np.array(sketch["data"][0])
        assert len(items) == 2048 and np.all(np.diff(items) >= 0)
        # evenly spaced order statistics: the sketch's CDF is within 1/k of the data's
        ones = np.ones(len(items)), np.ones(len(values))
        distance = dq.cdf_distance((items, ones[0]), (values.astype(float), ones[1]))
        assert distance <= 1 / 2048 + 1e-12

    strings = feature(stats, "c")["string_statistics"]
    assert strings["common"] == {"num_present": n, "num_missing": 0}
    assert strings["distinct_count"] == 3
    buckets = strings["distribution"]["categorical"]["buckets"]
    assert [b["value"] for b in buckets] == ["red", "green", "blue"]  # most frequent first
    assert sum(b["count"] for b in buckets) == n


def test_small_sample_sketch_holds_every_value(tmp_path):
    frame = pd.DataFrame({"x": ["3.5", "1", "2", "2", " 10 ", "NA"]})
    num = feature(run_baseline(tmp_path, frame)["statistics"], "x")["numerical_statistics"]
    assert num["distribution"]["kll"]["sketch"]["data"] == [[1.0, 2.0, 2.0, 3.5, 10.0]]
    assert num["common"] == {"num_present": 5, "num_missing": 1}


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
    distance = dq.cdf_distance((a, np.ones(len(a))), (b, np.ones(len(b))))
    assert distance == pytest.approx(exact)


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
                    "constraint_check_type": {"enum": list(dq.CHECKS)},
                    "description": {"type": "string", "minLength": 10},
                }
            ),
        }
    }
)
SUMMARY_SCHEMA = _obj(
    {
        "violation_count": COUNT,
        "violations_by_check": _obj({check: COUNT for check in dq.CHECKS}),
        "features": {"type": "array", "items": {"type": "string"}},
        "message": {"type": "string", "pattern": "^[^\n]+$"},
        "drift_distances": {"type": "object", "additionalProperties": NUMBER},
    }
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
        ["distance 0.", "threshold 0.1", "batch mean"],
    ),
    "new category": (
        lambda f: _set_rows(f, "sex", "X", slice(0, 19)),
        {("sex", "categorical_values_check")},
        ["20 of", "'X' x20", "['F', 'I', 'M']"],
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
        ["5 of", "min -0.01"],
    ),
    "mixed types": (
        lambda f: _set_rows(f, "whole_weight", "12kg", slice(0, 2)),
        {("whole_weight", "data_type_check")},
        ["3 of", "'12kg'", "not Fractional"],
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
    summary = result["summary"]
    assert summary["violation_count"] == len(expected)
    assert sorted(summary["features"]) == sorted(name for name, _ in expected)
    for _, check in expected:
        assert summary["violations_by_check"][check] >= 1
        assert check in summary["message"]


def test_mixed_types_show_in_batch_statistics(tmp_path, halves, abalone_baseline):
    batch = _set_rows(halves[1], "whole_weight", "12kg", slice(0, 2))
    stats = run_check(tmp_path, abalone_baseline, batch)["statistics"]
    mixed = feature(stats, "whole_weight")
    assert mixed["inferred_type"] == "String"
    assert mixed["string_statistics"]["common"]["num_present"] == len(batch)


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

    # A looser drift threshold from the CLI hides a shift; the baseline file is unchanged.
    shifted = _shift(halves[1], "length")
    loose = run_check(
        tmp_path / "drift", abalone_baseline, shifted, "--comparison-threshold", "0.9"
    )
    assert violation_set(loose) == set()
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
    "no csv": (lambda d: (d / "notes.txt").write_text("a,b\n1,2\n"), "no .csv files"),
    "ragged row": (lambda d: (d / "x.csv").write_text("a,b\n1,2\n3,4,5\n"), "x.csv"),
    "every row too long": (lambda d: (d / "x.csv").write_text("a,b\n1,2,9\n3,4,5\n"), "x.csv"),
    "not utf-8": (lambda d: (d / "x.csv").write_bytes(b"a,b\n\xff\xfe,\x00\n"), "UTF-8"),
    "empty file": (lambda d: (d / "x.csv").write_text(""), "expected a CSV header"),
    "header only": (lambda d: (d / "x.csv").write_text("a,b\n"), "no data rows in x.csv"),
    "duplicate column": (lambda d: (d / "x.csv").write_text("a,a\n1,2\n"), "appears twice"),
    "unnamed column": (lambda d: (d / "x.csv").write_text("a,,c\n1,2,3\n"), "has no name"),
}


@pytest.mark.parametrize("mode", ["baseline", "check"])
@pytest.mark.parametrize("case", BAD_DATA)
def test_unreadable_data_is_a_clear_error(tmp_path, capsys, case, mode):
    make, phrase = BAD_DATA[case]
    data_dir = tmp_path / "input" / "data"
    data_dir.mkdir(parents=True)
    make(data_dir)
    if mode == "check":  # a valid baseline, so the data is what fails
        run_baseline(tmp_path / "b", pd.DataFrame({"a": ["1", "2"], "b": ["3", "4"]}))
        (tmp_path / "input" / "baseline").mkdir()
        for name in ("statistics.json", "constraints.json"):
            (tmp_path / "input" / "baseline" / name).write_text(
                (tmp_path / "b" / "output" / name).read_text()
            )
    assert dq.main(["--mode", mode, "--base-dir", str(tmp_path)]) == 1
    last = _stderr_last_line(capsys)
    assert last.startswith("data_quality: error: ") and str(data_dir) in last
    assert phrase in last
    assert not (tmp_path / "output").exists()


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
    baseline_dir.mkdir(parents=True)
    documents = content(abalone_baseline) if callable(content) else abalone_baseline
    for name, document in documents.items():
        (baseline_dir / f"{name}.json").write_text(json.dumps(document))
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
    command = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


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
    assert re.fullmatch(r"data_quality: error: .*statistics\.json: baseline file not found.*", last)


def test_help_documents_the_threshold_options():
    text = _cli("--help").stdout
    for option in (
        "--comparison-threshold",
        "--categorical-comparison-threshold",
        "--datatype-check-threshold",
        "--domain-content-threshold",
        "--completeness-tolerance",
        "--comparison-method",
    ):
        assert option in text
