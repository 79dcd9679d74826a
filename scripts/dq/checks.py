"""The check of a batch against its baseline: Model Monitor's constraint checks and the drift
verdict, with the summary.json the pipeline reads.

Numeric drift is the Kolmogorov-Smirnov distance (largest gap between the two cumulative
distributions) computed from the two KLL sketches; categorical drift is the L-infinity distance
between the category frequency vectors. With comparison_method Robust the drift tests of
dq.drift_tests decide across all features (drift_verdicts).
"""

from __future__ import annotations

import math

import numpy as np

from . import drift_tests
from .common import listing, share, short, warn
from .monitor_format import NUMERIC_TYPES, Baseline, dataset_statistics
from .profiles import ColumnProfile, DatasetProfile
from .settings import Settings

CHECKS = (
    "data_type_check",
    "completeness_check",
    "baseline_drift_check",
    "missing_column_check",
    "extra_column_check",
    "categorical_values_check",
    "non_negative_check",
)


def cdf_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Largest gap between two weighted empirical CDFs (the Kolmogorov-Smirnov distance)."""
    grid = np.union1d(a[0], b[0])

    def cdf(items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        order = np.argsort(items, kind="stable")
        cumulative = np.concatenate([[0.0], np.cumsum(weights[order])]) / weights.sum()
        return cumulative[np.searchsorted(items[order], grid, side="right")]

    return float(np.max(np.abs(cdf(*a) - cdf(*b))))


def check_feature(col: ColumnProfile, base: Baseline, s: Settings) -> tuple[list, float, dict]:
    """(check type, description) pairs for one feature present in both, its drift distance
    and its drift test (Robust comparison, else None).

    Each description says what was found, against which limit, and where to look first.
    """
    found = []
    present = col.n_present

    if (
        base.inferred_type in NUMERIC_TYPES
        and col.n_num
        and not (math.isfinite(col.total) and math.isfinite(col.m2))
    ):
        largest = max(abs(col.low), abs(col.high))
        found.append(
            (
                "data_type_check",
                f"Data type: values too large to summarise (largest magnitude {largest:.4g}): "
                "their sum or variance overflows a float, so mean and drift cannot be computed; "
                "expected values of the baseline's scale. Look for a sentinel or a unit error.",
            )
        )

    if base.inferred_type in NUMERIC_TYPES and present:
        bad = wrong_type_count(col, base)
        if bad > s.datatype_check_threshold * present:
            integral = base.inferred_type == "Integral"
            examples = col.text_examples + (col.fraction_examples if integral else [])
            found.append(
                (
                    "data_type_check",
                    f"Data type: {share(bad, present)} are not {base.inferred_type} as in the "
                    f"baseline (e.g. {', '.join(short(v) for v in examples[:3])}); allowed "
                    f"share {s.datatype_check_threshold:g} (datatype_check_threshold). Look "
                    "for units, typos or a changed export format in the source.",
                )
            )

    completeness = present / col.rows
    if base.completeness is not None and (
        completeness < base.completeness - s.completeness_tolerance
    ):
        found.append(
            (
                "completeness_check",
                f"Completeness: {share(col.rows - present, col.rows)} are missing; "
                f"{100 * completeness:.2f}% present vs {100 * base.completeness:.2f}% in the "
                f"baseline (tolerance {s.completeness_tolerance:g}). Check the upstream "
                "join or export that fills this column.",
            )
        )

    if base.is_non_negative and col.n_negative:
        found.append(
            (
                "non_negative_check",
                f"Non-negative: {share(col.n_negative, col.n_num)} are negative (min "
                f"{col.low:.4g}); the baseline had no negative values. A sign flip or a "
                "sentinel such as -1 for unknown is the usual cause.",
            )
        )

    if base.domain is not None and present:
        counts = col.value_counts()
        known = sum(counts.get(v, 0) for v in base.domain)
        unknown = present - known
        if unknown > s.domain_content_threshold * present:
            new = [(v, c) for v, c in col.most_common() if v not in base.domain][:3]
            listed = ", ".join(f"{short(v)} x{c}" for v, c in new) or "values not tracked"
            found.append(
                (
                    "categorical_values_check",
                    f"Unknown categories: {share(unknown, present)} are not in the baseline "
                    f"domain {listing(base.domain)} (new: {listed}); allowed share "
                    f"{s.domain_content_threshold:g} (domain_content_threshold). Map them to "
                    "known values upstream, or retrain if they are real new categories.",
                )
            )

    distance, drift, test = _drift(col, base, s)
    if drift:
        found.append(("baseline_drift_check", drift))
    return found, distance, test


def wrong_type_count(col: ColumnProfile, base: Baseline) -> int:
    """Present values of a numeric feature that are not of its baseline type."""
    integral = base.inferred_type == "Integral"
    return col.n_present - (col.n_integer_valued if integral else col.n_num)


def type_note(col: ColumnProfile, base: Baseline, s: Settings) -> str | None:
    """A numeric feature's values of the wrong type that stay within datatype_check_threshold:
    not a violation (Model Monitor's semantics: only a share above the threshold is), but
    counted and reported, since they are imputed before scoring."""
    if base.inferred_type not in NUMERIC_TYPES or not col.n_present:
        return None
    bad = wrong_type_count(col, base)
    if not bad or bad > s.datatype_check_threshold * col.n_present:
        return None
    integral = base.inferred_type == "Integral"
    examples = col.text_examples + (col.fraction_examples if integral else [])
    return (
        f"{base.name}: {share(bad, col.n_present)} are not {base.inferred_type} (e.g. "
        f"{', '.join(short(v) for v in examples[:3])}); within datatype_check_threshold "
        f"{s.datatype_check_threshold:g}, so not a violation, but imputed before scoring"
    )


def _drift(col: ColumnProfile, base: Baseline, s: Settings) -> tuple:
    """(distance, description if it is a violation, test): distance is NaN when not
    comparable. Robust: no description yet but the test (drift_tests.py) whose p-value
    run_check corrects across features before deciding (see drift_verdicts)."""
    if s.perform_comparison != "Enabled":
        return math.nan, None, None
    robust = s.comparison_method == "Robust"
    if base.sketch is not None and col.n_num:
        batch_sketch = col.sketch.items_and_weights()
        distance = cdf_distance(base.sketch, batch_sketch)
        threshold = s.comparison_threshold
        if robust:
            # The sketches' rank errors could make the distance look larger than it is.
            error = base.sketch_error + col.sketch.rank_error_bound()
            test = drift_tests.numeric_test(
                {
                    "n": base.num_present,
                    "mean": base.mean,
                    "sd": base.std_dev,
                    "sketch": base.sketch,
                },
                {"n": col.n_num, "mean": col.mean, "sd": col.std_dev(), "sketch": batch_sketch},
                max(0.0, distance - error),
            )
            test.update(kind="numeric", rows=col.n_num, ks_distance=distance)
            test["batch_mean"], test["baseline_mean"] = col.mean, base.mean
            return distance, None, test
        if distance > threshold:
            text = (
                f"Baseline drift: distance {distance:.3f} between the baseline and this batch "
                f"exceeds threshold {threshold:g} (Kolmogorov-Smirnov; batch mean "
                f"{col.mean:.4g} vs baseline {base.mean:.4g}). Compare the two distributions; "
                "if the change is real, the model needs retraining on recent data."
            )
            return distance, text, None
        return distance, None, None
    if base.frequencies is not None and col.n_present:
        counts = dict(col.most_common())
        batch = {v: c / col.n_present for v, c in counts.items()}
        categories = sorted(set(batch) | set(base.frequencies))
        gaps = [abs(batch.get(v, 0.0) - base.frequencies.get(v, 0.0)) for v in categories]
        worst = categories[int(np.argmax(gaps))]
        distance = max(gaps)
        threshold = s.categorical_comparison_threshold
        if robust:
            base_counts = {v: f * base.num_present for v, f in base.frequencies.items()}
            test = drift_tests.categorical_test(base_counts, counts)
            test.update(kind="categorical", rows=col.n_present, distance=distance)
            test["batch_share"] = batch.get(worst, 0.0)
            test["baseline_share"] = base.frequencies.get(worst, 0.0)
            test["category"] = worst
            return distance, None, test
        if distance > threshold:
            text = (
                f"Baseline drift: distance {distance:.3f} between the baseline and this batch "
                f"exceeds threshold {threshold:g} (L-infinity of category shares; largest "
                f"for {short(worst)}: {100 * batch.get(worst, 0.0):.1f}% in this batch vs "
                f"{100 * base.frequencies.get(worst, 0.0):.1f}% in the baseline). Check "
                "whether the batch comes from a different population or a filtered source."
            )
            return distance, text, None
        return distance, None, None
    return math.nan, None, None


def drift_verdicts(tests: dict, settings: Settings, feature_settings: dict, rows: int) -> tuple:
    """Robust comparison: (feature -> violation description, the summary's drift section).

    Holm's correction across the tested features keeps the chance that a clean batch raises
    any drift alarm at drift_alpha; a significant change is still not reported when it is too
    small to matter (below drift_min_shift_sd and the distance threshold). Below drift_min_rows
    rows (of the batch or of one feature) the verdict is inconclusive, never a violation.
    """
    alpha, min_rows = settings.drift_alpha, settings.drift_min_rows
    section = {"method": "Robust", "alpha": alpha, "min_rows": min_rows, "features": {}}
    if rows < min_rows:
        section["verdict"] = "inconclusive"
        section["reason"] = f"{rows} rows, fewer than drift_min_rows {min_rows}"
        return {}, section
    usable = {name: t for name, t in tests.items() if t["rows"] >= min_rows}
    names = sorted(usable)
    holm = drift_tests.holm([usable[n]["p_value"] for n in names])
    adjusted = {name: holm[i] for i, name in enumerate(names)}
    descriptions = {}
    for name, test in tests.items():
        s = feature_settings[name]
        entry = {"p_value": test["p_value"], "rows": test["rows"]}
        if name not in usable:
            section["features"][name] = {**entry, "verdict": "inconclusive"}
            continue
        significant = adjusted[name] <= alpha
        correction = (
            f"p-value {test['p_value']:.2g}, {adjusted[name]:.2g} after Holm's correction over "
            f"{len(names)} features (alpha {alpha:g})"
        )
        if test["kind"] == "numeric":
            shift, distance = test["shift_sd"], test["ks_distance"]
            floor, threshold = s.drift_min_shift_sd, s.comparison_threshold
            material = abs(shift) >= floor or distance >= threshold
            entry.update(shift_sd=shift, ks_distance=distance)
            text = (
                f"Baseline drift: batch mean {test['batch_mean']:.4g} vs baseline "
                f"{test['baseline_mean']:.4g}, a shift of {shift:+.2f} sd (floor {floor:g} sd); "
                f"Kolmogorov-Smirnov distance {distance:.3f} (threshold {threshold:g}); "
                f"{correction}. Compare the two distributions; if the change is real, the "
                "model needs retraining on recent data."
            )
        else:
            distance, threshold = test["distance"], s.categorical_comparison_threshold
            material = distance >= threshold
            entry.update(share_change=distance)
            text = (
                f"Baseline drift: category shares moved by up to {100 * distance:.1f} points "
                f"(L-infinity distance {distance:.3f}, threshold {threshold:g}); largest for "
                f"{short(test['category'])}: {100 * test['batch_share']:.1f}% in this batch vs "
                f"{100 * test['baseline_share']:.1f}% in the baseline; chi-square {correction}. "
                "Check whether the batch comes from a different population or a filtered source."
            )
        entry["adjusted_p_value"] = adjusted[name]
        entry["verdict"] = "drift" if significant and material else "no drift"
        section["features"][name] = entry
        if significant and material:
            descriptions[name] = text
    verdicts = {e["verdict"] for e in section["features"].values()}
    section["verdict"] = next(
        (v for v in ("drift", "no drift", "inconclusive") if v in verdicts), "not compared"
    )
    return descriptions, section


def _case_twin(name: str, others: list) -> str:
    twins = [o for o in others if o.casefold() == name.casefold()]
    return f" (a column {twins[0]!r} differs only in case)" if twins else ""


def run_check(profile: DatasetProfile, features: list, settings: Settings) -> dict:
    """The check's documents; a feature's overrides take precedence over `settings`."""
    columns = {c.name: c for c in profile.ordered_columns()}
    violations, distances, notes = [], {}, []
    # (feature, its violations) in baseline order; drift ones join after the correction.
    pending, tests, tested_settings = [], {}, {}
    drifted, drift = {}, None  # drift: the summary's section, when a feature was tested

    def add(feature: str, check: str, description: str) -> None:
        violations.append(
            {"feature_name": feature, "constraint_check_type": check, "description": description}
        )

    if settings.evaluate_constraints == "Enabled":
        baseline_names = [b.name for b in features]
        extra = [name for name in columns if name not in baseline_names]
        missing = [name for name in baseline_names if name not in columns]
        for base in features:
            if base.name not in columns:
                text = (
                    f"Missing column: {base.name!r} is in the baseline but not in this batch"
                    + _case_twin(base.name, extra)
                    + "; the model gets it as missing. Check the export's header."
                )
                pending.append((base.name, [("missing_column_check", text)]))
                continue
            # Per-feature overrides are deliberate edits of one feature: they win over the CLI.
            feature_settings = settings.updated(base.overrides)
            if feature_settings.evaluate_constraints != "Enabled":
                continue
            found, distance, test = check_feature(columns[base.name], base, feature_settings)
            note = type_note(columns[base.name], base, feature_settings)
            if note:
                notes.append(note)
            if not math.isnan(distance):
                distances[base.name] = distance
            if test is not None:
                tests[base.name], tested_settings[base.name] = test, feature_settings
            pending.append((base.name, found))
        if tests:
            drifted, drift = drift_verdicts(tests, settings, tested_settings, profile.item_count)
        for name, found in pending:
            if name in drifted:
                found = [*found, ("baseline_drift_check", drifted[name])]
            for check, description in found:
                add(name, check, description)
        for name in extra:
            add(
                name,
                "extra_column_check",
                f"Extra column: {name!r} is in this batch but not in the baseline, so it is "
                "not checked" + _case_twin(name, missing) + "; drop it upstream or rebaseline.",
            )
    else:
        warn("monitoring_config.evaluate_constraints is Disabled: no constraints were checked")

    item_count = profile.item_count
    return {
        "statistics.json": dataset_statistics(list(columns.values()), item_count),
        "constraint_violations.json": {"violations": violations},
        "summary.json": summarize(violations, item_count, len(features), distances, drift, notes),
    }


def summarize(
    violations: list,
    item_count: int,
    n_features: int,
    distances: dict,
    drift: dict | None = None,
    notes: list = (),
) -> dict:
    by_check = {check: 0 for check in CHECKS}
    features_by_check: dict = {}
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
    if drift and drift["verdict"] == "inconclusive":
        message += f"; drift check inconclusive: {drift.get('reason', 'too few rows per feature')}"
    if notes:  # below a violation threshold, yet worth knowing: in the message the e-mail shows
        message += f"; {len(notes)} below threshold: " + "; ".join(notes)
    summary = {
        "violation_count": len(violations),
        "violations_by_check": by_check,
        "features": features,
        "message": message,
        # ours: findings below a violation threshold (values of the wrong type, imputed)
        "notes": list(notes),
        # ours, beyond the contract: every feature's drift distance, violation or not
        "drift_distances": distances,
    }
    if drift:  # ours too: the Robust comparison's verdict, p-values and effect sizes
        summary["drift"] = drift
    return summary
