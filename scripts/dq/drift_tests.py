"""Statistical tests behind the data-quality check's drift verdict (dq.checks).

Plain Python and numpy only (the step image needs nothing else; Python 3.8 syntax): the normal,
Kolmogorov and chi-square survival functions are computed here rather than taken from scipy.

Numeric feature: two tests of "the batch comes from the baseline's distribution", both from
  the KLL sketches statistics.json already holds,
  - location: van der Waerden's normal-scores rank test (a rank test with the power of the
    t test on normal data and more on skewed or heavy-tailed data such as weights);
  - shape: two-sample Kolmogorov-Smirnov test on the distance between the two cumulative
    distributions, whose critical value scales with sqrt(1/n + 1/m),
  combined into one p-value per feature by Bonferroni (2 * the smaller p), valid whatever the
  dependence between the two. The effect size is the mean shift in baseline standard
  deviations, from the means and std_dev.
Categorical feature: Pearson chi-square test of homogeneity of the category counts (baseline vs
  batch), rare categories pooled so each cell's expected count is at least MIN_EXPECTED.
Across features: Holm's step-down correction (`holm`), which bounds the chance that a clean
  batch raises any drift alarm by alpha, whatever the correlation between features.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

MIN_EXPECTED = 5.0  # the usual rule for the chi-square approximation


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution (the limit of sqrt(n) * KS distance)."""
    if lam <= 0:
        return 1.0
    if lam < 1.0:  # the theta-function form converges fast for small lam
        s = sum(math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * lam**2)) for k in range(1, 6))
        return max(0.0, 1.0 - math.sqrt(2 * math.pi) / lam * s)
    return min(
        1.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    )


def ks_pvalue(distance: float, n: float, m: float) -> float:
    """Two-sample KS p-value of `distance` between samples of sizes n and m (asymptotic, with
    Stephens' small-sample correction, as in Numerical Recipes' kstwo)."""
    effective = n * m / (n + m)
    root = math.sqrt(effective)
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * distance)


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for a chi-square X with df degrees of freedom: the regularised upper incomplete
    gamma function Q(df/2, x/2), by its series or continued fraction (Numerical Recipes)."""
    if x <= 0:
        return 1.0
    a, x = df / 2.0, x / 2.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # series for P, then Q = 1 - P
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    # Lentz's continued fraction for Q
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


def holm(pvalues: list) -> list:
    """Holm-adjusted p-values, in the input order: reject where adjusted <= alpha."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def normal_scores_pvalue(base: tuple, batch: tuple) -> float:
    """Two-sided p-value of the van der Waerden (normal scores) two-sample test.

    `base` and `batch` are (items, weights) of the two samples (a KLL sketch: exact below its
    k values). Each value gets the normal score Phi^-1(r / (W + 1)) of its mid-rank r in the
    pooled sample of total weight W; the batch's score sum is compared with its permutation
    mean and variance. A rank test: outliers and skew do not blur it, and its efficiency
    relative to the t test is at least 1 for every continuous distribution (Chernoff-Savage).
    """
    items = np.concatenate((base[0], batch[0]))
    weights = np.concatenate((base[1], batch[1])).astype(float)
    in_batch = np.concatenate((np.zeros(len(base[0]), bool), np.ones(len(batch[0]), bool)))
    values, index = np.unique(items, return_inverse=True)
    totals = np.bincount(index, weights)
    n, m = float(base[1].sum()), float(batch[1].sum())
    total = n + m
    mid_ranks = np.cumsum(totals) - (totals - 1) / 2  # ties share their average rank
    inverse = NormalDist().inv_cdf
    scores = np.array([inverse(r / (total + 1)) for r in mid_ranks.tolist()])[index]
    mean = float(weights @ scores) / total
    spread = float(weights @ (scores - mean) ** 2)
    variance = n * m / (total * (total - 1)) * spread
    observed = float(weights[in_batch] @ scores[in_batch]) - m * mean
    if variance <= 0:  # every value equal: no evidence either way
        return 1.0
    return min(1.0, 2 * normal_sf(abs(observed) / math.sqrt(variance)))


def numeric_test(base: dict, batch: dict, ks_distance: float) -> dict:
    """Location + shape test of one numeric feature: the normal-scores test and the KS test,
    one p-value by Bonferroni. `base` and `batch` hold n, mean, sd (population sd, as
    statistics.json's std_dev) and sketch ((items, weights)); `ks_distance` is already
    corrected for the sketches' rank error. Also returns the mean shift in baseline sd."""
    sd = base["sd"] if base["sd"] is not None and math.isfinite(base["sd"]) else math.nan
    diff = batch["mean"] - base["mean"]
    if sd > 0:
        shift_sd = diff / sd
    elif sd == 0:  # a constant baseline: any change is infinitely many sd
        shift_sd = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    else:
        shift_sd = math.nan  # unknown: only the distance can show that the change is large
    p_location = normal_scores_pvalue(base["sketch"], batch["sketch"])
    p_ks = ks_pvalue(ks_distance, float(base["n"]), float(batch["n"]))
    return {
        "p_value": min(1.0, 2 * min(p_location, p_ks)),
        "p_location": p_location,
        "p_ks": p_ks,
        "shift_sd": shift_sd,
    }


def categorical_test(base_counts: dict, batch_counts: dict) -> dict:
    """Chi-square homogeneity test of category counts (value -> count) of baseline and batch.

    Categories whose expected batch count is below MIN_EXPECTED are pooled into one cell (if
    the pool is still too small, with the smallest remaining category), so the chi-square
    approximation holds. Returns the p-value, the largest change of a category's share (the
    L-infinity distance) and that category.
    """
    n, m = sum(base_counts.values()), sum(batch_counts.values())
    categories = sorted(set(base_counts) | set(batch_counts))
    base = np.array([base_counts.get(c, 0.0) for c in categories], dtype=float)
    batch = np.array([batch_counts.get(c, 0.0) for c in categories], dtype=float)
    gaps = np.abs(batch / max(m, 1) - base / max(n, 1))
    worst = int(np.argmax(gaps))
    result = {"p_value": 1.0, "share_change": float(gaps[worst]), "category": categories[worst]}
    if n == 0 or m == 0:
        return result
    # Expected count of each category in the smaller sample under "same shares".
    expected = (base + batch) / (n + m) * min(n, m)
    order = np.argsort(expected, kind="stable")
    cells, pool_base, pool_batch, pool_expected = [], 0.0, 0.0, 0.0
    for i in order:
        if expected[i] < MIN_EXPECTED or pool_expected < MIN_EXPECTED:
            pool_base, pool_batch = pool_base + base[i], pool_batch + batch[i]
            pool_expected += expected[i]
        else:
            cells.append((base[i], batch[i]))
    cells.append((pool_base, pool_batch))
    if len(cells) < 2:
        return result
    table = np.array(cells, dtype=float).T  # 2 x k
    totals = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / (n + m)
    statistic = float(((table - totals) ** 2 / totals).sum())
    result["p_value"] = chi2_sf(statistic, len(cells) - 1)
    return result
