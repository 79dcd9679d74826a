"""Data-quality baseline and check in the SageMaker Model Monitor file formats.

Our own replacement for Model Monitor's data-quality analyzer (closed to new customers), run as
an ordinary processing step. Plain Python + numpy + pandas; this one file is all the job gets.

--mode baseline: CSVs with a header under <base>/input/data/ ->
    <out>/statistics.json, <out>/constraints.json
--mode check:    batch CSVs under <base>/input/data/ + the baseline's statistics.json and
    constraints.json (default <base>/input/baseline/) ->
    <out>/statistics.json (of the batch), <out>/constraint_violations.json, <out>/summary.json

<out> defaults to <base>/output. Violations are data: the check exits 0 and reports them in
summary.json ("violation_count" is what the pipeline reads). Unreadable input (no CSV, a file
pandas cannot parse, a header with no rows, missing or invalid baseline files) exits 1 with one
line on stderr, printed last, naming the file and what was expected.

Checks (constraint_check_type): data_type_check, completeness_check, baseline_drift_check,
missing_column_check, extra_column_check, categorical_values_check, non_negative_check.
Numeric drift is the Kolmogorov-Smirnov distance (largest gap between the two cumulative
distributions) computed from the two KLL sketches; categorical drift is the L-infinity distance
between the category frequency vectors.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CHECKS = (
    "data_type_check",
    "completeness_check",
    "baseline_drift_check",
    "missing_column_check",
    "extra_column_check",
    "categorical_values_check",
    "non_negative_check",
)
NUMERIC_TYPES = ("Integral", "Fractional")
NUMBER = (int, float)  # tuples, not int | float: the container's Python may be older than 3.10
FEATURE_TYPES = (*NUMERIC_TYPES, "String", "Unknown")
# Fixed here rather than pandas' default list, which changes between pandas versions.
MISSING_TOKENS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"]
    + ["<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
)
INTEGER_PATTERN = r"[+-]?\d+"
NUM_BUCKETS = 10  # Model Monitor always writes 10 KLL buckets
SKETCH_C, SKETCH_K = 0.64, 2048
MAX_DOMAIN_SIZE = 50  # string features with more distinct values get no domain constraint
MAX_CATEGORICAL_BUCKETS = 1000  # keeps statistics.json small for free-text columns
# "Robust" comparison: a distance also has to be beyond what sampling noise explains at this
# level (two-sample Kolmogorov-Smirnov bound), so small batches don't raise false drift alarms.
ROBUST_ALPHA = 0.001

DEFAULT_SETTINGS = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    # Any value of the wrong type / outside the baseline domain is a violation by default:
    # these are data bugs, not sampling noise. Raise the thresholds to tolerate some.
    "datatype_check_threshold": 0.0,
    "domain_content_threshold": 0.0,
    "perform_comparison": "Enabled",
    "comparison_threshold": 0.1,
    "comparison_method": "Robust",
    "categorical_comparison_threshold": 0.1,
    "categorical_drift_method": "LInfinity",
    "completeness_tolerance": 0.0,  # ours, not in Model Monitor's monitoring_config
}
TOP_LEVEL_KEYS = ("evaluate_constraints", "emit_metrics")
TOP_LEVEL_KEYS += ("datatype_check_threshold", "domain_content_threshold")
THRESHOLD_KEYS = frozenset(k for k in DEFAULT_SETTINGS if k.endswith(("threshold", "tolerance")))
CHOICES = {
    "evaluate_constraints": ("Enabled", "Disabled"),
    "emit_metrics": ("Enabled", "Disabled"),
    "perform_comparison": ("Enabled", "Disabled"),
    "comparison_method": ("Simple", "Robust"),
    "categorical_drift_method": ("LInfinity",),  # ChiSquared is not implemented here
}
KEY_ALIASES = {"comparion_method": "comparison_method"}  # the AWS docs' schema has this typo
OVERRIDES_KEYS = ("monitoringConfigOverrides", "monitoring_config_overrides")


class InputError(Exception):
    """Input the job cannot use; the message names the file and what was expected."""


def warn(message: str) -> None:
    print(f"data_quality: warning: {message}", file=sys.stderr)


# ----------------------------------------------------------------------------- reading CSV


def read_dataset(directory: Path) -> pd.DataFrame:
    """All CSV files under `directory` (recursively, sorted by path), as stripped strings."""
    if not directory.is_dir():
        raise InputError(f"{directory}: input directory does not exist; expected CSV files")
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() == ".csv")
    if not files:
        raise InputError(f"{directory}: no .csv files found; expected CSV files with a header row")
    frames = [read_csv(path) for path in files]
    if len({tuple(f.columns) for f in frames}) > 1:
        # Not fatal: absent columns become missing values, which the checks report.
        warn(f"CSV files under {directory} have different headers; absent columns count as missing")
    data = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    if len(data) == 0:
        names = ", ".join(str(p.relative_to(directory)) for p in files)
        raise InputError(f"{directory}: no data rows in {names}; expected at least one record")
    return data


def read_csv(path: Path) -> pd.DataFrame:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
        if not header:
            raise InputError(f"{path}: file is empty; expected a CSV header row")
        header = [name.strip() for name in header]
        for position, name in enumerate(header, start=1):
            if not name:
                raise InputError(f"{path}: header column {position} has no name")
            if header.index(name) != position - 1:
                raise InputError(f"{path}: column name {name!r} appears twice in the header")
        with warnings.catch_warnings():
            # pandas only warns when every row has more fields than the header
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                dtype=str,
                na_filter=False,
                index_col=False,
                encoding="utf-8-sig",
                skipinitialspace=True,
            )
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.ParserWarning, csv.Error) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a readable UTF-8 CSV with a header row ({reason})") from exc
    if len(frame.columns) != len(header):
        raise InputError(
            f"{path}: header has {len(header)} columns but pandas read {len(frame.columns)}"
        )
    frame.columns = header
    return frame


# ----------------------------------------------------------------------------- profiling


@dataclass
class Column:
    """One column of the data: its present values and which of them are numbers."""

    name: str
    item_count: int
    values: pd.Series  # present (non-missing) values, whitespace-stripped strings
    parsed: np.ndarray  # `values` parsed as float64 (NaN where not a number)
    numeric: np.ndarray  # bool mask: a finite number ("inf" is not usable, so it is a string)
    integral: np.ndarray  # bool mask: a number written as an integer

    @property
    def n_present(self) -> int:
        return len(self.values)

    @property
    def numbers(self) -> np.ndarray:
        return self.parsed[self.numeric]

    @property
    def inferred_type(self) -> str:
        # As Model Monitor (Deequ): one value that is not a number makes the column a String.
        if self.n_present == 0:
            return "Unknown"
        if not self.numeric.all():
            return "String"
        return "Integral" if self.integral.all() else "Fractional"


def profile(name: str, raw: pd.Series) -> Column:
    text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip()
    values = text[~text.isin(MISSING_TOKENS)].reset_index(drop=True)
    parsed = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    numeric = np.isfinite(parsed)
    integral = values.str.fullmatch(INTEGER_PATTERN).to_numpy(dtype=bool) & numeric
    return Column(name, len(raw), values, parsed, numeric, integral)


def profile_all(data: pd.DataFrame) -> list[Column]:
    return [profile(name, data[name]) for name in data.columns]


def category_counts(values: pd.Series) -> list[tuple[str, int]]:
    """(value, count), most frequent first, ties by value, so output is stable."""
    counts = values.value_counts(sort=False)
    return sorted(((str(v), int(c)) for v, c in counts.items()), key=lambda vc: (-vc[1], vc[0]))


def sketch_items(numbers: np.ndarray) -> np.ndarray:
    """At most SKETCH_K evenly spaced order statistics (all values when there are fewer).

    Each item stands for the same number of values, so the items' empirical CDF is within
    1/SKETCH_K of the data's. A bounded, deterministic stand-in for a KLL sketch.
    """
    ordered = np.sort(numbers)
    if len(ordered) <= SKETCH_K:
        return ordered
    return ordered[((np.arange(SKETCH_K) + 0.5) * len(ordered) / SKETCH_K).astype(np.int64)]


def kll_buckets(numbers: np.ndarray, low: float, high: float) -> list[dict]:
    """10 equal-width buckets from min to max; the last includes max."""
    if low == high:
        counts = [len(numbers)] + [0] * (NUM_BUCKETS - 1)
        edges = np.full(NUM_BUCKETS + 1, low)
    else:
        # Interpolate rather than step so huge ranges (high - low = inf) still work.
        t = np.linspace(0.0, 1.0, NUM_BUCKETS + 1)
        edges = low * (1 - t) + high * t
        edges[0], edges[-1] = low, high
        counts = np.histogram(numbers, bins=edges)[0]
    return [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(c)}
        for i, c in enumerate(counts)
    ]


def feature_statistics(col: Column) -> dict:
    common = {"num_present": col.n_present, "num_missing": col.item_count - col.n_present}
    kind = col.inferred_type
    if kind in NUMERIC_TYPES:
        x = col.numbers
        low, high = float(x.min()), float(x.max())
        with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf -> null in JSON
            mean, total, std = float(np.mean(x)), float(np.sum(x)), float(np.std(x))
        sketch = {"parameters": {"c": SKETCH_C, "k": float(SKETCH_K)}}
        sketch["data"] = [sketch_items(x).tolist()]
        numerical = {"common": common, "mean": mean, "sum": total, "std_dev": std}
        numerical.update(min=low, max=high)
        numerical["distribution"] = {
            "kll": {"buckets": kll_buckets(x, low, high), "sketch": sketch}
        }
        return {"name": col.name, "inferred_type": kind, "numerical_statistics": numerical}
    counts = category_counts(col.values)
    buckets = [{"value": v, "count": c} for v, c in counts[:MAX_CATEGORICAL_BUCKETS]]
    strings = {"common": common, "distinct_count": len(counts)}
    strings["distribution"] = {"categorical": {"buckets": buckets}}
    return {"name": col.name, "inferred_type": kind, "string_statistics": strings}


def dataset_statistics(columns: list[Column], item_count: int) -> dict:
    return {
        "version": 0.0,
        "dataset": {"item_count": item_count},
        "features": [feature_statistics(c) for c in columns],
    }


# ----------------------------------------------------------------------------- baseline


def feature_constraints(col: Column) -> dict:
    kind = col.inferred_type
    out = {"name": col.name, "inferred_type": kind, "monitoringConfigOverrides": {}}
    out["completeness"] = col.n_present / col.item_count
    if kind in NUMERIC_TYPES:
        out["num_constraints"] = {"is_non_negative": bool(col.numbers.min() >= 0)}
    elif kind == "String":
        distinct = sorted(set(col.values))
        # Small cardinality only, each value seen twice on average: not an identifier column.
        if len(distinct) <= min(MAX_DOMAIN_SIZE, col.n_present / 2):
            out["string_constraints"] = {"domains": distinct}
    return out


def monitoring_config(settings: dict) -> dict:
    config = {key: settings[key] for key in TOP_LEVEL_KEYS}
    config["distribution_constraints"] = {
        key: settings[key]
        for key in (
            "perform_comparison",
            "comparison_threshold",
            "comparison_method",
            "categorical_comparison_threshold",
            "categorical_drift_method",
        )
    }
    return config


def run_baseline(data: pd.DataFrame, settings: dict) -> dict[str, dict]:
    columns = profile_all(data)
    for col in columns:
        if col.inferred_type == "Unknown":
            warn(f"baseline column {col.name!r} has no values; it is only checked for presence")
        elif col.inferred_type == "String" and len(col.numbers) > col.n_present / 2:
            bad = col.n_present - len(col.numbers)
            examples = _examples(col.values[~col.numeric])
            warn(
                f"baseline column {col.name!r} is String because {bad} of {col.n_present} values "
                f"are not numbers (e.g. {examples}); fix the data if it should be numeric"
            )
    constraints = {
        "version": 0.0,
        "features": [feature_constraints(c) for c in columns],
        "monitoring_config": monitoring_config(settings),
    }
    return {
        "statistics.json": dataset_statistics(columns, len(data)),
        "constraints.json": constraints,
    }


# ----------------------------------------------------------------------------- settings


def validate_setting(key: str, value: object, where: str) -> object:
    if key in THRESHOLD_KEYS:
        number_ok = isinstance(value, NUMBER) and not isinstance(value, bool)
        if not number_ok or not math.isfinite(value) or value < 0:
            raise InputError(f"{where}: {key} must be a number >= 0, got {value!r}")
        return float(value)
    if value not in CHOICES[key]:
        raise InputError(f"{where}: {key} must be one of {list(CHOICES[key])}, got {value!r}")
    return value


def read_settings(config: object, where: str) -> dict:
    """Settings from a monitoring_config (or a per-feature override), flat or nested."""
    if not isinstance(config, dict):
        raise InputError(f"{where} must be a JSON object, got {type(config).__name__}")
    flat = dict(config)
    nested = flat.pop("distribution_constraints", {})
    if not isinstance(nested, dict):
        raise InputError(f"{where}.distribution_constraints must be a JSON object")
    flat.update(nested)
    out = {}
    for key, value in flat.items():
        key = KEY_ALIASES.get(key, key)
        if key in DEFAULT_SETTINGS:
            out[key] = validate_setting(key, value, where)
        else:
            warn(f"{where}: ignoring unknown setting {key!r}")
    return out


# ----------------------------------------------------------------------------- loading baseline


def load_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise InputError(f"{path}: baseline file not found; expected the {what} of --mode baseline")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: invalid JSON ({exc}); expected the {what}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("features"), list):
        raise InputError(f"{path}: expected a JSON object with a 'features' list ({what})")
    for i, feature in enumerate(document["features"]):
        if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
            raise InputError(f"{path}: features[{i}] must be an object with a string 'name'")
        if feature.get("inferred_type") not in FEATURE_TYPES:
            raise InputError(
                f"{path}: features[{i}] ({feature['name']!r}) inferred_type must be one of "
                f"{list(FEATURE_TYPES)}, got {feature.get('inferred_type')!r}"
            )
    return document


def _field(document: dict, keys: tuple, path: Path, feature: str, kind: type | tuple) -> object:
    """document[keys[0]][keys[1]]..., which must be a `kind` (a list or a NUMBER)."""
    value = document
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = "a list" if kind is list else "a number"
        raise InputError(f"{path}: feature {feature!r} needs {'.'.join(keys)} as {expected}")
    return value


@dataclass
class Baseline:
    """What the check needs from one baseline feature."""

    name: str
    inferred_type: str
    completeness: float | None
    is_non_negative: bool
    domain: tuple | None  # sorted
    overrides: dict
    num_present: int = 0
    mean: float = math.nan
    sketch: tuple[np.ndarray, np.ndarray] | None = None  # items and weights
    frequencies: dict | None = None  # category -> share of present values


def load_baseline(statistics_path: Path, constraints_path: Path) -> tuple[list[Baseline], dict]:
    statistics = load_json(statistics_path, "baseline statistics.json")
    constraints = load_json(constraints_path, "baseline constraints.json")
    stats_by_name = {f["name"]: f for f in statistics["features"]}
    settings = read_settings(
        constraints.get("monitoring_config", {}), f"{constraints_path}: monitoring_config"
    )
    features = []
    for i, c in enumerate(constraints["features"]):
        name, kind = c["name"], c["inferred_type"]
        where = f"{constraints_path}: features[{i}] ({name!r})"
        completeness = c.get("completeness")
        if completeness is not None and not (
            isinstance(completeness, NUMBER) and 0 <= completeness <= 1
        ):
            raise InputError(f"{where}: completeness must be a number in [0, 1]")
        domain = (c.get("string_constraints") or {}).get("domains")
        if domain is not None and not isinstance(domain, list):
            raise InputError(f"{where}: string_constraints.domains must be a list of strings")
        overrides = next((c[k] for k in OVERRIDES_KEYS if c.get(k)), {})
        base = Baseline(
            name=name,
            inferred_type=kind,
            completeness=completeness,
            is_non_negative=bool((c.get("num_constraints") or {}).get("is_non_negative")),
            domain=None if domain is None else tuple(sorted(set(map(str, domain)))),
            overrides=read_settings(overrides, f"{where}.monitoringConfigOverrides"),
        )
        if kind in ("String", *NUMERIC_TYPES):
            if name not in stats_by_name:
                raise InputError(
                    f"{statistics_path}: no statistics for feature {name!r} that "
                    f"{constraints_path.name} constrains; expected files from the same baseline run"
                )
            _attach_statistics(base, stats_by_name[name], statistics_path)
        features.append(base)
    return features, settings


def _attach_statistics(base: Baseline, stats: dict, path: Path) -> None:
    group = "numerical_statistics" if base.inferred_type in NUMERIC_TYPES else "string_statistics"
    base.num_present = _field(stats, (group, "common", "num_present"), path, base.name, NUMBER)
    if group == "string_statistics":
        keys = (group, "distribution", "categorical", "buckets")
        buckets = _field(stats, keys, path, base.name, list)
        total = max(base.num_present, 1)
        try:
            base.frequencies = {str(b["value"]): float(b["count"]) / total for b in buckets}
        except (TypeError, KeyError, ValueError) as exc:
            raise InputError(f"{path}: feature {base.name!r} has a malformed bucket") from exc
        return
    base.mean = _field(stats, (group, "mean"), path, base.name, NUMBER)
    levels = _field(stats, (group, "distribution", "kll", "sketch", "data"), path, base.name, list)
    try:
        # KLL stores level i items with weight 2**i; our single-level sketch has equal weights.
        items = [np.asarray(level, dtype=np.float64) for level in levels]
        weights = [np.full(len(level), 2.0**i) for i, level in enumerate(items)]
        base.sketch = (np.concatenate(items), np.concatenate(weights))
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{path}: feature {base.name!r} sketch data must be lists of numbers"
        ) from exc
    if len(base.sketch[0]) == 0 or not np.isfinite(base.sketch[0]).all():
        raise InputError(f"{path}: feature {base.name!r} sketch data must be non-empty and finite")


# ----------------------------------------------------------------------------- check


def cdf_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Largest gap between two weighted empirical CDFs (the Kolmogorov-Smirnov distance)."""
    grid = np.union1d(a[0], b[0])

    def cdf(items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        order = np.argsort(items, kind="stable")
        cumulative = np.concatenate([[0.0], np.cumsum(weights[order])]) / weights.sum()
        return cumulative[np.searchsorted(items[order], grid, side="right")]

    return float(np.max(np.abs(cdf(*a) - cdf(*b))))


def noise_bound(n: float, m: float) -> float:
    """Distance two samples of sizes n and m from one distribution exceed with p = ROBUST_ALPHA.

    The two-sample KS critical value. For category shares it is also conservative:
    0.5 * sqrt(1/n + 1/m) bounds the standard error of a difference of two shares.
    """
    return math.sqrt(-0.5 * math.log(ROBUST_ALPHA / 2)) * math.sqrt(1 / max(n, 1) + 1 / max(m, 1))


def _examples(values: pd.Series, limit: int = 3) -> str:
    return ", ".join(repr(v) for v in pd.unique(values.to_numpy())[:limit])


def _listing(values: tuple, limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _share(count: int, total: int) -> str:
    percent = 100 * count / total
    # two decimals, but a non-zero count never shows as "0.00%"
    shown = f"{percent:.2f}" if percent >= 0.01 or not count else f"{percent:.1g}"
    return f"{count} of {total} values ({shown}%)"


def check_feature(col: Column, base: Baseline, s: dict) -> tuple[list[tuple[str, str]], float]:
    """(check type, description) pairs for one feature present in both, and its drift distance."""
    found: list[tuple[str, str]] = []
    present = col.n_present

    if base.inferred_type in NUMERIC_TYPES and present:
        bad = ~(col.integral if base.inferred_type == "Integral" else col.numeric)
        if bad.sum() > s["datatype_check_threshold"] * present:
            found.append(
                (
                    "data_type_check",
                    f"Data type: {_share(int(bad.sum()), present)} are not "
                    f"{base.inferred_type} as in the baseline (e.g. {_examples(col.values[bad])}); "
                    f"allowed share {s['datatype_check_threshold']:g} (datatype_check_threshold)",
                )
            )

    completeness = present / col.item_count
    if base.completeness is not None and (
        completeness < base.completeness - s["completeness_tolerance"]
    ):
        found.append(
            (
                "completeness_check",
                f"Completeness: {_share(col.item_count - present, col.item_count)} are missing; "
                f"{100 * completeness:.2f}% present vs {100 * base.completeness:.2f}% in the "
                f"baseline (tolerance {s['completeness_tolerance']:g})",
            )
        )

    if base.is_non_negative and len(col.numbers) and col.numbers.min() < 0:
        negative = int((col.numbers < 0).sum())
        found.append(
            (
                "non_negative_check",
                f"Non-negative: {_share(negative, len(col.numbers))} are negative (min "
                f"{col.numbers.min():.4g}); the baseline had no negative values",
            )
        )

    if base.domain is not None and present:
        unknown = col.values[~col.values.isin(base.domain)]
        if len(unknown) > s["domain_content_threshold"] * present:
            top = category_counts(unknown)[:3]
            new = ", ".join(f"{v!r} x{c}" for v, c in top)
            found.append(
                (
                    "categorical_values_check",
                    f"Unknown categories: {_share(len(unknown), present)} are not in the baseline "
                    f"domain {_listing(base.domain)} (new: {new}); allowed share "
                    f"{s['domain_content_threshold']:g} (domain_content_threshold)",
                )
            )

    distance, drift = _drift(col, base, s)
    if drift:
        found.append(("baseline_drift_check", drift))
    return found, distance


def _drift(col: Column, base: Baseline, s: dict) -> tuple[float, str | None]:
    """(distance, description if it is a violation); distance is NaN when not comparable."""
    if s["perform_comparison"] != "Enabled":
        return math.nan, None
    robust = s["comparison_method"] == "Robust"
    if base.sketch is not None and len(col.numbers):
        items = sketch_items(col.numbers)
        distance = cdf_distance(base.sketch, (items, np.ones(len(items))))
        threshold = s["comparison_threshold"]
        bound = noise_bound(base.num_present, len(col.numbers)) if robust else 0.0
        if distance > threshold and distance > bound:
            return distance, (
                f"Baseline drift: distance {distance:.3f} between the baseline and this batch "
                f"exceeds threshold {threshold:g} (Kolmogorov-Smirnov; batch mean "
                f"{np.mean(col.numbers):.4g} vs baseline {base.mean:.4g})"
            )
        return distance, None
    if base.frequencies is not None and col.n_present:
        batch = {v: c / col.n_present for v, c in category_counts(col.values)}
        categories = sorted(set(batch) | set(base.frequencies))
        gaps = [abs(batch.get(v, 0.0) - base.frequencies.get(v, 0.0)) for v in categories]
        worst = categories[int(np.argmax(gaps))]
        distance = max(gaps)
        threshold = s["categorical_comparison_threshold"]
        bound = noise_bound(base.num_present, col.n_present) if robust else 0.0
        if distance > threshold and distance > bound:
            return distance, (
                f"Baseline drift: distance {distance:.3f} between the baseline and this batch "
                f"exceeds threshold {threshold:g} (L-infinity of category shares; largest "
                f"for {worst!r}: {100 * batch.get(worst, 0.0):.1f}% in this batch vs "
                f"{100 * base.frequencies.get(worst, 0.0):.1f}% in the baseline)"
            )
        return distance, None
    return math.nan, None


def _case_twin(name: str, others: list[str]) -> str:
    twins = [o for o in others if o.casefold() == name.casefold()]
    return f" (a column {twins[0]!r} differs only in case)" if twins else ""


def run_check(
    data: pd.DataFrame, features: list[Baseline], file_settings: dict, cli_settings: dict
) -> dict[str, dict]:
    columns = {c.name: c for c in profile_all(data)}
    settings = {**DEFAULT_SETTINGS, **file_settings, **cli_settings}
    violations, distances = [], {}

    def add(feature: str, check: str, description: str) -> None:
        violations.append(
            {"feature_name": feature, "constraint_check_type": check, "description": description}
        )

    if settings["evaluate_constraints"] == "Enabled":
        baseline_names = [b.name for b in features]
        extra = [name for name in columns if name not in baseline_names]
        missing = [name for name in baseline_names if name not in columns]
        for base in features:
            if base.name not in columns:
                add(
                    base.name,
                    "missing_column_check",
                    f"Missing column: {base.name!r} is in the baseline but not in this batch"
                    + _case_twin(base.name, extra),
                )
                continue
            # Per-feature overrides are deliberate edits of one feature: they win over the CLI.
            feature_settings = {**settings, **base.overrides}
            if feature_settings["evaluate_constraints"] != "Enabled":
                continue
            found, distance = check_feature(columns[base.name], base, feature_settings)
            if not math.isnan(distance):
                distances[base.name] = distance
            for check, description in found:
                add(base.name, check, description)
        for name in extra:
            add(
                name,
                "extra_column_check",
                f"Extra column: {name!r} is in this batch but not in the baseline, so it is "
                "not checked" + _case_twin(name, missing),
            )
    else:
        warn("monitoring_config.evaluate_constraints is Disabled: no constraints were checked")

    return {
        "statistics.json": dataset_statistics(list(columns.values()), len(data)),
        "constraint_violations.json": {"violations": violations},
        "summary.json": summarize(violations, len(data), len(features), distances),
    }


def summarize(violations: list[dict], item_count: int, n_features: int, distances: dict) -> dict:
    by_check = {check: 0 for check in CHECKS}
    features_by_check: dict[str, list[str]] = {}
    for v in violations:
        by_check[v["constraint_check_type"]] += 1
        features_by_check.setdefault(v["constraint_check_type"], []).append(v["feature_name"])
    features = list(dict.fromkeys(v["feature_name"] for v in violations))
    if violations:
        n = len(violations)
        details = "; ".join(f"{k} ({', '.join(f)})" for k, f in features_by_check.items())
        message = f"{n} data-quality violation{'s' * (n != 1)} in {item_count} records: {details}"
    else:
        message = (
            f"No data-quality violations in {item_count} records "
            f"({n_features} baseline features checked)"
        )
    return {
        "violation_count": len(violations),
        "violations_by_check": by_check,
        "features": features,
        "message": message,
        # ours, beyond the contract: every feature's drift distance, violation or not
        "drift_distances": distances,
    }


# ----------------------------------------------------------------------------- output and CLI


def _json_safe(value: object) -> object:
    """Plain JSON types; non-finite floats become null (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_outputs(directory: Path, documents: dict[str, dict]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        text = json.dumps(_json_safe(document), indent=2, sort_keys=True, allow_nan=False)
        (directory / name).write_text(text + "\n", encoding="utf-8")


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Data-quality baseline and check writing SageMaker Model Monitor files.",
        epilog="Threshold precedence in check mode: a feature's monitoringConfigOverrides > "
        "these options > the baseline's monitoring_config > built-in defaults. In baseline "
        "mode the options set what constraints.json records.",
    )
    parser.add_argument("--mode", choices=("baseline", "check"), required=True)
    parser.add_argument(
        "--base-dir",
        type=Path,
        default=Path("/opt/ml/processing"),
        help="job root: CSVs are read from <base>/input/data/ (default /opt/ml/processing)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="where the JSON files go (default <base>/output)",
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
    }
    for key, text in options.items():
        flag = "--" + key.replace("_", "-")
        parser.add_argument(flag, dest=key, type=_threshold, metavar="X", help=text)
    parser.add_argument(
        "--comparison-method",
        choices=CHOICES["comparison_method"],
        help="Robust (default): a distance must also exceed sampling noise for the batch size "
        f"(p < {ROBUST_ALPHA}); Simple: the threshold alone decides",
    )
    args = parser.parse_args(argv)
    if args.mode == "baseline" and args.completeness_tolerance is not None:
        parser.error("--completeness-tolerance applies to --mode check only")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = args.base_dir
    output_dir = args.output_dir or base / "output"
    cli_settings = {
        key: value
        for key, value in vars(args).items()
        if key in DEFAULT_SETTINGS and value is not None
    }
    try:
        if args.mode == "baseline":
            documents = run_baseline(
                read_dataset(base / "input" / "data"), {**DEFAULT_SETTINGS, **cli_settings}
            )
        else:
            baseline_dir = base / "input" / "baseline"
            features, file_settings = load_baseline(
                args.baseline_statistics or baseline_dir / "statistics.json",
                args.baseline_constraints or baseline_dir / "constraints.json",
            )
            documents = run_check(
                read_dataset(base / "input" / "data"), features, file_settings, cli_settings
            )
    except InputError as exc:
        print(f"data_quality: error: {exc}", file=sys.stderr)
        return 1
    write_outputs(output_dir, documents)
    for name in documents:
        print(f"wrote {output_dir / name}")
    if "summary.json" in documents:
        print(documents["summary.json"]["message"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
