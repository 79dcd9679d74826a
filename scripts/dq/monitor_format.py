"""The SageMaker Model Monitor file formats: statistics.json, constraints.json (written by the
baseline, read back by the check) and how the JSON files are written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from step_common import InputError

from .common import NUMBER, listing, warn
from .profiles import ColumnProfile, DatasetProfile
from .settings import Settings, read_settings
from .sketches import KLL_RANK_ERROR, SKETCH_C, SKETCH_K

NUMERIC_TYPES = ("Integral", "Fractional")
FEATURE_TYPES = (*NUMERIC_TYPES, "String", "Unknown")
NUM_BUCKETS = 10  # Model Monitor always writes 10 KLL buckets
MAX_DOMAIN_SIZE = 50  # string features with more distinct values get no domain constraint
MAX_CATEGORICAL_BUCKETS = 1000  # keeps statistics.json small for free-text columns
# monitoring_config's keys (Model Monitor's layout: thresholds of the checks at the top level,
# the drift comparison under distribution_constraints).
TOP_LEVEL_KEYS = ("evaluate_constraints", "emit_metrics")
TOP_LEVEL_KEYS += ("datatype_check_threshold", "domain_content_threshold")
DISTRIBUTION_KEYS = ("perform_comparison", "comparison_threshold", "comparison_method")
DISTRIBUTION_KEYS += ("categorical_comparison_threshold", "categorical_drift_method")
OVERRIDES_KEYS = ("monitoringConfigOverrides", "monitoring_config_overrides")


def kll_buckets(column: ColumnProfile) -> list[dict]:
    """10 equal-width buckets from min to max (the last includes max), counted from the
    sketch, as Model Monitor does: exact below k values, else within the sketch's error."""
    low, high = column.low, column.high
    items, weights = column.sketch.items_and_weights()
    if low == high:
        counts = [float(column.n_num)] + [0.0] * (NUM_BUCKETS - 1)
        edges = np.full(NUM_BUCKETS + 1, low)
    else:
        # Interpolate rather than step so huge ranges (high - low = inf) still work.
        t = np.linspace(0.0, 1.0, NUM_BUCKETS + 1)
        with np.errstate(over="ignore", invalid="ignore"):
            edges = low * (1 - t) + high * t
        edges[0], edges[-1] = low, high
        counts = np.histogram(items, bins=edges, weights=weights)[0].tolist()
    return [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(c)}
        for i, c in enumerate(counts)
    ]


def feature_statistics(column: ColumnProfile) -> dict:
    common = {"num_present": column.n_present, "num_missing": column.missing}
    kind = column.inferred_type
    if kind in NUMERIC_TYPES:
        sketch = {"parameters": {"c": SKETCH_C, "k": float(SKETCH_K)}}
        sketch["data"] = [items.tolist() for items in column.sketch.levels]
        numerical = {
            "common": common,
            "mean": column.mean,
            "sum": column.total,
            "std_dev": column.std_dev(),
            "min": column.low,
            "max": column.high,
            # ours, beyond Model Monitor's keys (custom containers may add statistics)
            "distinct_count": column.distinct_count,
            "distribution": {"kll": {"buckets": kll_buckets(column), "sketch": sketch}},
        }
        return {"name": column.name, "inferred_type": kind, "numerical_statistics": numerical}
    buckets = [{"value": v, "count": c} for v, c in column.most_common()[:MAX_CATEGORICAL_BUCKETS]]
    strings = {"common": common, "distinct_count": column.distinct_count if column.n_present else 0}
    strings["distribution"] = {"categorical": {"buckets": buckets}}
    return {"name": column.name, "inferred_type": kind, "string_statistics": strings}


def dataset_statistics(columns: list[ColumnProfile], item_count: int) -> dict:
    return {
        "version": 0.0,
        "dataset": {"item_count": item_count},
        "features": [feature_statistics(c) for c in columns],
    }


def feature_constraints(column: ColumnProfile) -> dict:
    kind = column.inferred_type
    out = {"name": column.name, "inferred_type": kind, "monitoringConfigOverrides": {}}
    out["completeness"] = column.n_present / column.rows
    if kind in NUMERIC_TYPES:
        out["num_constraints"] = {"is_non_negative": column.n_negative == 0}
    elif kind == "String" and column.exact_items:
        distinct = sorted(column.value_counts())
        # Small cardinality only, each value seen twice on average: not an identifier column.
        if len(distinct) <= min(MAX_DOMAIN_SIZE, column.n_present / 2):
            out["string_constraints"] = {"domains": distinct}
    return out


def monitoring_config(settings: Settings) -> dict:
    """constraints.json's monitoring_config: the Model Monitor settings, not ours."""
    config = {key: getattr(settings, key) for key in TOP_LEVEL_KEYS}
    config["distribution_constraints"] = {key: getattr(settings, key) for key in DISTRIBUTION_KEYS}
    return config


def run_baseline(profile: DatasetProfile, settings: Settings) -> dict:
    columns = profile.ordered_columns()
    for column in columns:
        if column.inferred_type == "Unknown":
            warn(f"baseline column {column.name!r} has no values; it is only checked for presence")
        elif column.inferred_type == "String" and column.n_num > column.n_present / 2:
            warn(
                f"baseline column {column.name!r} is String because {column.n_text} of "
                f"{column.n_present} values are not numbers (e.g. "
                f"{listing(column.text_examples, 3)}); fix the data if it should be numeric"
            )
    constraints = {
        "version": 0.0,
        "features": [feature_constraints(c) for c in columns],
        "monitoring_config": monitoring_config(settings),
    }
    return {
        "statistics.json": dataset_statistics(columns, profile.item_count),
        "constraints.json": constraints,
    }


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


class Baseline:
    """What the check needs from one baseline feature."""

    def __init__(self, name, inferred_type, completeness, is_non_negative, domain, overrides):
        self.name = name
        self.inferred_type = inferred_type
        self.completeness = completeness  # float or None
        self.is_non_negative = is_non_negative
        self.domain = domain  # sorted tuple or None
        self.overrides = overrides
        self.num_present = 0
        self.mean = math.nan
        self.std_dev = math.nan
        self.sketch = None  # (items, weights)
        self.sketch_error = 0.0  # normalised rank error of the sketch (0: it holds every value)
        self.frequencies = None  # category -> share of present values


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
    sd = stats[group].get("std_dev")  # null when not finite: no shift in sd, tests still run
    base.std_dev = float(sd) if isinstance(sd, NUMBER) and not isinstance(sd, bool) else math.nan
    levels = _field(stats, (group, "distribution", "kll", "sketch", "data"), path, base.name, list)
    try:
        # KLL level i holds items of weight 2**i.
        items = [np.asarray(level, dtype=np.float64).reshape(-1) for level in levels]
        weights = [np.full(len(level), 2.0**i) for i, level in enumerate(items)]
        base.sketch = (np.concatenate(items), np.concatenate(weights))
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{path}: feature {base.name!r} sketch data must be lists of numbers"
        ) from exc
    if len(base.sketch[0]) == 0 or not np.isfinite(base.sketch[0]).all():
        raise InputError(f"{path}: feature {base.name!r} sketch data must be non-empty and finite")
    base.sketch_error = 0.0 if all(len(level) == 0 for level in items[1:]) else KLL_RANK_ERROR


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


def write_outputs(directory: Path, documents: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        if name.startswith("partial-"):  # read back only by --mode merge: keep inf exactly
            text = json.dumps(document, separators=(",", ":"))
        else:
            text = json.dumps(_json_safe(document), indent=2, sort_keys=True, allow_nan=False)
        (directory / name).write_text(text + "\n", encoding="utf-8")
