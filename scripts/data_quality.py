"""Data-quality baseline and check in the SageMaker Model Monitor file formats.

Our own replacement for Model Monitor's data-quality analyzer (closed to new customers), run as
an ordinary processing step. It needs numpy and pyarrow, which the SageMaker XGBoost 3.0-5
image ships (pyarrow 22.0.0, installed there for ml-io), so nothing is installed at run time
and the job can run without internet access. It needs this file, drift_tests.py (the
statistics of the drift verdict) and step_common.py (the conventions every step script
shares), which every processing job receives beside it.

--mode baseline: CSV or Parquet files under <base>/input/data/ ->
    <out>/statistics.json, <out>/constraints.json
--mode check:    batch files under <base>/input/data/ + the baseline's statistics.json and
    constraints.json (default <base>/input/baseline/) ->
    <out>/statistics.json (of the batch), <out>/constraint_violations.json, <out>/summary.json
--shard (with baseline or check): only profile this instance's share of the data and write
    <out>/partial-<host>.json (host from /opt/ml/config/resourceconfig.json), for a processing
    job with several instances and ShardedByS3Key input.
--mode merge:    the partial-*.json files under <base>/input/partials/ -> the same files as the
    one-pass baseline or check they were made for (check also reads the baseline files).

<out> defaults to <base>/output. Violations are data: the check exits 0 and reports them in
summary.json ("violation_count" is what the pipeline reads). Unreadable input (no data files,
a file that cannot be parsed, bytes that are not UTF-8, a header with no rows, missing or
invalid baseline files) exits 1 with one line on stderr, printed last, naming the file and
what was expected; so does any other failure (step_common.run_step), that line also being the
job's ExitMessage.

How it scales: files are read in chunks of CHUNK_BYTES (CSV: split at line ends, each chunk
parsed by Arrow's multi-threaded reader while the previous one is profiled; Parquet: record
batches), so peak memory does not grow with the row count. Every statistic is mergeable:
counts, min and max add or compare exactly, mean and variance combine with Chan et al.'s
parallel formulas, quantiles live in a KLL sketch, distinct counts in a HyperLogLog sketch and
string values in a Misra-Gries frequent-items summary (exact below MAX_TRACKED_VALUES distinct
values). A sharded run therefore gives the one-pass result: counts, min, max and distinct
counts exactly, mean and variance up to floating-point rounding, quantiles within the sketch's
error bound (see KllSketch).

Checks (constraint_check_type): data_type_check, completeness_check, baseline_drift_check,
missing_column_check, extra_column_check, categorical_values_check, non_negative_check.
Numeric drift is the Kolmogorov-Smirnov distance (largest gap between the two cumulative
distributions) computed from the two KLL sketches; categorical drift is the L-infinity distance
between the category frequency vectors. With comparison_method Robust (the default) a drift is
reported only when it is statistically significant across all features (drift_tests.py: rank and
KS tests, chi-square for categories, Holm's correction at drift_alpha) and large enough to matter
(mean shift >= drift_min_shift_sd standard deviations or distance >= the threshold); a batch of
fewer than drift_min_rows rows gets an "inconclusive" drift verdict in summary.json instead.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import math
import re
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from step_common import MISSING_TOKENS as _MISSING_TOKENS
from step_common import (
    NUMBER_PATTERN,
    InputError,
    default_base_dir,
    is_csv,
    open_bytes,
    run_step,
)

try:  # in the XGBoost 3.0-5 image; a clear error at run time rather than an import crash
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv
except ImportError:
    pa = None

try:  # next to this file in the step code bundle, so on sys.path when run as a script
    import drift_tests
except ImportError:  # loaded by its path (tests, bench): make its folder importable
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import drift_tests

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
# The missing-value tokens and number syntax every step shares (step_common); Arrow's own
# float parser accepts every NUMBER_PATTERN match.
MISSING_TOKENS = list(_MISSING_TOKENS)
INTEGER_PATTERN = r"^[+-]?\d+$"
NUM_BUCKETS = 10  # Model Monitor always writes 10 KLL buckets
SKETCH_C, SKETCH_K = 0.64, 2048  # the parameters Model Monitor's own sketches report
MAX_DOMAIN_SIZE = 50  # string features with more distinct values get no domain constraint
MAX_CATEGORICAL_BUCKETS = 1000  # keeps statistics.json small for free-text columns
MAX_TRACKED_VALUES = 10000  # Misra-Gries counters per column: exact below this many values
MAX_VALUE_CHARS = 200  # longer values are tracked by a digest so memory stays bounded
HLL_P = 12  # 4096 registers: standard error 1.04 / sqrt(4096) = 1.6 %
CHUNK_BYTES = 8 << 20
PARTIAL_FORMAT = "data-quality-partial"
PARTIAL_VERSION = 1
# A priori normalised rank error of a KLL sketch at 99 % confidence (see KllSketch): what a
# baseline sketch read from statistics.json may be off by when it is not exact.
KLL_RANK_ERROR = math.sqrt(18.3 * math.log(2 / 0.01)) / SKETCH_K

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
    # Ours too (Robust comparison, see drift_tests.py); not written to constraints.json.
    "drift_alpha": 0.05,  # chance that a clean batch raises any drift alarm
    "drift_min_shift_sd": 0.1,  # smaller mean shifts (baseline sd) alarm only by distance
    "drift_min_rows": 50,  # fewer rows: drift verdict "inconclusive"
}
TOP_LEVEL_KEYS = ("evaluate_constraints", "emit_metrics")
TOP_LEVEL_KEYS += ("datatype_check_threshold", "domain_content_threshold")
THRESHOLD_KEYS = frozenset(k for k in DEFAULT_SETTINGS if k.endswith(("threshold", "tolerance")))
THRESHOLD_KEYS |= {"drift_min_shift_sd"}
CHOICES = {
    "evaluate_constraints": ("Enabled", "Disabled"),
    "emit_metrics": ("Enabled", "Disabled"),
    "perform_comparison": ("Enabled", "Disabled"),
    "comparison_method": ("Simple", "Robust"),
    "categorical_drift_method": ("LInfinity",),  # ChiSquared is not implemented here
}
KEY_ALIASES = {"comparion_method": "comparison_method"}  # the AWS docs' schema has this typo
OVERRIDES_KEYS = ("monitoringConfigOverrides", "monitoring_config_overrides")


def warn(message: str) -> None:
    print(f"data_quality: warning: {message}", file=sys.stderr)


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


# ----------------------------------------------------------------------------- sketches


def _merge_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A new sorted array (never a view: levels must not pin a whole chunk in memory)."""
    if not len(a):
        return np.array(b, dtype=np.float64)
    if not len(b):
        return a
    return np.sort(np.concatenate((a, b)), kind="stable")  # timsort: linear on two runs


class KllSketch:
    """KLL quantile sketch (Karnin, Lang, Liberty 2016) over float64, in numpy.

    Level h holds sorted items of weight 2**h. A level over its capacity
    max(2, ceil(k * c**(H-1-h))) (H levels) is compacted: one item stays if the count is odd,
    and of the sorted rest every other item (random start) moves up a level. Total weight stays
    exactly n; a compaction at level h moves any rank by at most 2**h, with mean zero. A sorted
    chunk is compacted on its own before it joins a level, which costs one compaction per level
    instead of one per k/2 values.

    Error bound. With V = sum over compactions of 4**h (tracked in `variance`), Hoeffding's
    inequality gives, for any one query value, |rank error| <= sqrt(2 ln(2/delta) V) with
    probability 1 - delta (`rank_error_bound`). A priori: each level-h compaction removes at
    least C_h + 1 items and at most n / 2**h items ever reach level h, so V <= 9.2 n**2 / k**2
    for c = 0.64, i.e. a normalised rank error <= sqrt(18.3 ln(2/delta)) / k: 0.48 % at 99 %
    confidence for k = 2048, whatever n and however the sketch was merged (merging adds the
    variances). Below k values the sketch holds every value and is exact.
    """

    def __init__(self, k: int = SKETCH_K, c: float = SKETCH_C, seed: int = 0):
        self.k, self.c = k, c
        self.levels = [np.empty(0)]
        self.n = 0
        self.variance = 0.0
        self.rng = np.random.default_rng(seed)

    def capacity(self, h: int, num_levels: int) -> int:
        return max(2, int(math.ceil(self.k * self.c ** (num_levels - 1 - h))))

    def _level(self, h: int) -> None:
        while len(self.levels) <= h:
            self.levels.append(np.empty(0))

    def update_sorted(self, values: np.ndarray) -> None:
        """Adds a sorted float64 array."""
        self.n += len(values)
        h = 0
        while len(values) > self.capacity(h, max(len(self.levels), h + 1)):
            self._level(h + 1)
            if len(values) % 2:  # the odd item stays at this level, uncompacted
                self.levels[h] = _merge_sorted(self.levels[h], values[:1])
                values = values[1:]
            values = values[int(self.rng.integers(2)) :: 2]
            self.variance += 4.0**h
            h += 1
        self._level(h)
        self.levels[h] = _merge_sorted(self.levels[h], values)
        self._compress()

    def merge(self, other: KllSketch) -> None:
        self._level(len(other.levels) - 1)
        for h, items in enumerate(other.levels):
            self.levels[h] = _merge_sorted(self.levels[h], items)
        self.n += other.n
        self.variance += other.variance
        self._compress()

    def _compress(self) -> None:
        h = 0
        while h < len(self.levels):
            levels = len(self.levels)
            items = self.levels[h]
            if len(items) <= self.capacity(h, levels):
                h += 1
                continue
            self._level(h + 1)
            odd = len(items) % 2
            self.levels[h] = items[:odd]
            promoted = items[odd:][int(self.rng.integers(2)) :: 2]
            self.levels[h + 1] = _merge_sorted(self.levels[h + 1], promoted)
            self.variance += 4.0**h
            # A new level shrinks every lower level's capacity: look at them again.
            h = 0 if len(self.levels) > levels else h + 1

    def items_and_weights(self) -> tuple[np.ndarray, np.ndarray]:
        weights = [np.full(len(items), 2.0**h) for h, items in enumerate(self.levels)]
        return np.concatenate(self.levels), np.concatenate(weights)

    def rank_error_bound(self, delta: float = 0.01) -> float:
        """Normalised rank error not exceeded with probability 1 - delta (0 when exact)."""
        if self.n == 0:
            return 0.0
        return math.sqrt(2 * math.log(2 / delta) * self.variance) / self.n

    def to_json(self) -> dict:
        return {
            "k": self.k,
            "c": self.c,
            "n": self.n,
            "variance": self.variance,
            "levels": [items.tolist() for items in self.levels],
        }

    @classmethod
    def from_json(cls, data: dict) -> KllSketch:
        # Seeded from n: merging the same partials always gives the same sketch.
        sketch = cls(int(data["k"]), float(data["c"]), seed=int(data["n"]))
        sketch.levels = [np.asarray(items, dtype=np.float64) for items in data["levels"]]
        sketch.n, sketch.variance = int(data["n"]), float(data["variance"])
        return sketch


_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def hash_numbers(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of float64 values (splitmix64's finaliser over the IEEE bits)."""
    h = (np.asarray(values, dtype=np.float64) + 0.0).view(np.uint64)  # + 0.0: -0.0 == 0.0
    h = h ^ (h >> np.uint64(30))
    h *= _MIX1
    h ^= h >> np.uint64(27)
    h *= _MIX2
    h ^= h >> np.uint64(31)
    return h


def hash_texts(values: list) -> np.ndarray:
    """64-bit hashes of strings (BLAKE2b, stable across runs and machines, unlike hash())."""
    return np.array(
        [
            int.from_bytes(
                hashlib.blake2b(v.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                "little",
            )
            for v in values
        ],
        dtype=np.uint64,
    )


class HyperLogLog:
    """HyperLogLog distinct-count sketch (Flajolet et al. 2007) with 2**HLL_P registers.

    Registers merge by element-wise maximum, so shards combine exactly. Standard error
    1.04 / sqrt(4096) = 1.6 %; linear counting below 2.5 * 4096 makes small counts near-exact.
    """

    def __init__(self, registers: np.ndarray | None = None):
        self.registers = np.zeros(1 << HLL_P, np.uint8) if registers is None else registers

    def update(self, hashes: np.ndarray) -> None:
        if not len(hashes):
            return
        index = (hashes >> np.uint64(64 - HLL_P)).astype(np.intp)
        rest = (hashes & np.uint64((1 << (64 - HLL_P)) - 1)).astype(np.float64)  # exact: 52 bits
        rank = (64 - HLL_P + 1) - np.frexp(rest)[1]  # leading zeros + 1 of the 52 low bits
        np.maximum.at(self.registers, index, rank.astype(np.uint8))

    def merge(self, other: HyperLogLog) -> None:
        np.maximum(self.registers, other.registers, out=self.registers)

    def estimate(self) -> int:
        m = float(len(self.registers))
        estimate = 0.7213 / (1 + 1.079 / m) * m * m / np.sum(2.0 ** -self.registers.astype(float))
        zeros = int(np.count_nonzero(self.registers == 0))
        if estimate <= 2.5 * m and zeros:
            estimate = m * math.log(m / zeros)
        return int(round(estimate))


class FrequentItems:
    """Misra-Gries frequent-items summary: value -> count, at most MAX_TRACKED_VALUES values.

    Exact while fewer distinct values were seen (`error` == 0). Beyond that, each reduction
    subtracts the (K+1)-th largest count from all counters, so every count is low by at most
    `error`; summaries merge by adding counters and reducing again (Agarwal et al. 2012).
    """

    def __init__(self):
        self.counts: dict = {}
        self.error = 0

    def update(self, values, counts: np.ndarray, key=None) -> None:
        """Adds `values` (a list or array) with their counts; `key` makes the dict keys."""
        counts = np.asarray(counts, dtype=np.int64)
        if len(counts) > MAX_TRACKED_VALUES:  # reduce first: only survivors become keys
            cut = int(np.partition(counts, -(MAX_TRACKED_VALUES + 1))[-(MAX_TRACKED_VALUES + 1)])
            keep = np.flatnonzero(counts > cut)
            values, counts = [values[i] for i in keep], counts[keep] - cut
            self.error += cut
        keys = [key(v) for v in values] if key else values
        merged, counts = self.counts, counts.tolist()
        for i, value in enumerate(keys):  # no zip(strict=): keeps to Python 3.8
            merged[value] = merged.get(value, 0) + counts[i]
        if len(merged) > MAX_TRACKED_VALUES:
            self._reduce()

    def _reduce(self) -> None:
        ordered = sorted(self.counts.values(), reverse=True)
        cut = ordered[MAX_TRACKED_VALUES]
        self.counts = {v: c - cut for v, c in self.counts.items() if c > cut}
        self.error += cut

    def merge(self, other: FrequentItems) -> None:
        for value, count in other.counts.items():
            self.counts[value] = self.counts.get(value, 0) + count
        self.error += other.error
        if len(self.counts) > MAX_TRACKED_VALUES:
            self._reduce()


def tracked_value(text: str) -> str:
    """The key a value is counted under: itself, or a digest when it is very long."""
    if len(text) <= MAX_VALUE_CHARS:
        return text
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{text[:64]}... ({len(text)} characters, sha1 {digest})"


def number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


# ----------------------------------------------------------------------------- profiles


class ColumnProfile:
    """Mergeable statistics of one column; `rows` counts rows of files that have the column."""

    def __init__(self, name: str):
        self.name = name
        self.rows = 0
        self.missing = 0
        self.n_text = 0  # present values that are not finite numbers
        self.n_num = 0
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations from the mean (Chan et al.)
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf
        self.n_negative = 0
        self.n_integer_valued = 0  # numbers equal to an integer (for the Integral type check)
        self.integer_literals = True  # every number so far was written as an integer
        # Numbers of numeric chunks with their counts, kept (as numbers: cheap) until more than
        # MAX_TRACKED_VALUES distinct ones were seen, so that a column that turns out to be a
        # String lists its numeric-looking values too. Text chunks' numbers are in `items`.
        self.numbers_listed = True
        self.number_values = np.empty(0)
        self.number_counts = np.empty(0, np.int64)
        self.sketch = KllSketch()
        self.hll = HyperLogLog()
        self.items = FrequentItems()
        self.text_examples: list = []  # a few values that are not numbers
        self.fraction_examples: list = []  # a few numbers that are not integers

    @property
    def n_present(self) -> int:
        return self.n_num + self.n_text

    # -- adding data ------------------------------------------------------------------------

    def add_numbers(self, ordered: np.ndarray, integer_literals: bool, listed: bool = True) -> None:
        """A sorted, finite float64 array; `integer_literals` if all were written as integers.
        `listed`: also count the values as text (False when add_texts lists them)."""
        count = len(ordered)
        if not count:
            return
        with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf -> null in JSON
            total = float(ordered.sum())
            mean = total / count
            deviations = ordered - mean
            # einsum, not np.dot: BLAS threads cost 50x more CPU than the sum itself here.
            m2 = float(np.einsum("i,i->", deviations, deviations))
        self._add_moments(count, mean, m2, total, float(ordered[0]), float(ordered[-1]))
        self.n_negative += int(np.searchsorted(ordered, 0.0, side="left"))
        self.integer_literals = self.integer_literals and integer_literals
        self.sketch.update_sorted(ordered)

        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        distinct = ordered[starts]
        counts = np.diff(np.append(starts, count))
        self.hll.update(hash_numbers(distinct))
        whole = distinct == np.floor(distinct)
        self.n_integer_valued += int(counts[whole].sum())
        if not whole.all() and len(self.fraction_examples) < 3:
            self.fraction_examples += [number_text(v) for v in distinct[~whole][:3].tolist()]
            self.fraction_examples = self.fraction_examples[:3]
        if listed:
            self._list_numbers(distinct, counts)

    def _list_numbers(self, values: np.ndarray, counts: np.ndarray) -> None:
        # Stops at more than MAX_TRACKED_VALUES distinct numbers in all: that depends on the
        # values alone, not on how they were chunked, so a sharded run decides the same.
        if not self.numbers_listed:
            return
        if len(self.number_values):
            values, inverse = np.unique(
                np.concatenate((self.number_values, values)), return_inverse=True
            )
            counts = np.bincount(inverse, np.concatenate((self.number_counts, counts)))
        if len(values) > MAX_TRACKED_VALUES:
            self.numbers_listed = False
            values, counts = np.empty(0), np.empty(0)
        self.number_values, self.number_counts = values, np.asarray(counts, np.int64)

    def _add_moments(self, count, mean, m2, total, low, high) -> None:
        n = self.n_num + count
        delta = mean - self.mean
        with np.errstate(over="ignore", invalid="ignore"):
            self.mean += delta * count / n
            self.m2 += m2 + delta * delta * self.n_num * count / n
        self.n_num, self.total = n, self.total + total
        self.low, self.high = min(self.low, low), max(self.high, high)

    def add_texts(self, values: list, counts: np.ndarray, numeric: np.ndarray) -> None:
        """Present, stripped values of a text chunk with their counts; `numeric` marks the
        ones that are numbers (already added with add_numbers)."""
        self.items.update(values, counts, key=tracked_value)
        other = np.flatnonzero(~numeric)
        if len(other):
            self.n_text += int(counts[other].sum())
            texts = [values[i] for i in other]
            self.hll.update(hash_texts(texts))
            if len(self.text_examples) < 3:
                self.text_examples = (self.text_examples + texts[:3])[:3]

    # -- merging and serialising -------------------------------------------------------------

    def merge(self, other: ColumnProfile) -> None:
        self.rows += other.rows
        self.missing += other.missing
        self.n_text += other.n_text
        if other.n_num:
            self._add_moments(other.n_num, other.mean, other.m2, other.total, other.low, other.high)
        self.n_negative += other.n_negative
        self.n_integer_valued += other.n_integer_valued
        self.integer_literals = self.integer_literals and other.integer_literals
        if other.numbers_listed:
            self._list_numbers(other.number_values, other.number_counts)
        else:
            self.numbers_listed = False
            self.number_values, self.number_counts = np.empty(0), np.empty(0, np.int64)
        self.sketch.merge(other.sketch)
        self.hll.merge(other.hll)
        self.items.merge(other.items)
        self.text_examples = (self.text_examples + other.text_examples)[:3]
        self.fraction_examples = (self.fraction_examples + other.fraction_examples)[:3]

    SCALARS = (
        "rows",
        "missing",
        "n_text",
        "n_num",
        "mean",
        "m2",
        "total",
        "low",
        "high",
        "n_negative",
        "n_integer_valued",
        "integer_literals",
        "numbers_listed",
        "text_examples",
        "fraction_examples",
    )

    def to_json(self) -> dict:
        data = {key: getattr(self, key) for key in self.SCALARS}
        data["name"] = self.name
        data["sketch"] = self.sketch.to_json()
        data["hll"] = base64.b64encode(self.hll.registers.tobytes()).decode("ascii")
        data["items"] = [[v, c] for v, c in self.items.counts.items()]
        data["number_values"] = self.number_values.tolist()
        data["number_counts"] = self.number_counts.tolist()
        data["items_error"] = self.items.error
        return data

    @classmethod
    def from_json(cls, data: dict) -> ColumnProfile:
        column = cls(data["name"])
        for key in cls.SCALARS:
            setattr(column, key, data[key])
        column.sketch = KllSketch.from_json(data["sketch"])
        registers = np.frombuffer(base64.b64decode(data["hll"]), dtype=np.uint8).copy()
        if len(registers) != 1 << HLL_P:
            raise ValueError(f"hll has {len(registers)} registers, expected {1 << HLL_P}")
        column.hll = HyperLogLog(registers)
        column.items.counts = {str(v): int(c) for v, c in data["items"]}
        column.items.error = int(data["items_error"])
        column.number_values = np.asarray(data["number_values"], dtype=np.float64)
        column.number_counts = np.asarray(data["number_counts"], dtype=np.int64)
        return column

    # -- what the outputs need -------------------------------------------------------------

    @property
    def inferred_type(self) -> str:
        # As Model Monitor (Deequ): one value that is not a number makes the column a String.
        if self.n_present == 0:
            return "Unknown"
        if self.n_text:
            return "String"
        return "Integral" if self.integer_literals else "Fractional"

    @property
    def exact_items(self) -> bool:
        """Whether value_counts() holds every present value with its exact count."""
        return self.items.error == 0 and self.numbers_listed

    def value_counts(self) -> dict:
        """Present value (as text) -> count: text values and the listed numbers."""
        counts = dict(self.items.counts)
        numbers = self.number_counts.tolist()
        for i, value in enumerate(self.number_values.tolist()):
            key = number_text(value)
            counts[key] = counts.get(key, 0) + numbers[i]
        return counts

    def most_common(self) -> list:
        """(value, count), most frequent first, ties by value, so output is stable."""
        return sorted(self.value_counts().items(), key=lambda vc: (-vc[1], vc[0]))

    @property
    def distinct_count(self) -> int:
        if not self.exact_items:
            return self.hll.estimate()
        if not self.items.counts:  # numbers only: no need to spell them out
            return len(self.number_values)
        return len(self.value_counts())

    def std_dev(self) -> float:
        return math.sqrt(self.m2 / self.n_num) if math.isfinite(self.m2) else math.inf


class DatasetProfile:
    """The profile of every column of a data set, mergeable across shards."""

    def __init__(self):
        self.columns: dict = {}  # name -> ColumnProfile
        self.files: list = []  # [relative path, header] of every file read, for column order

    @property
    def item_count(self) -> int:
        return sum(rows for _, _, rows in self.files)

    def column(self, name: str) -> ColumnProfile:
        if name not in self.columns:
            self.columns[name] = ColumnProfile(name)
        return self.columns[name]

    def ordered_columns(self) -> list[ColumnProfile]:
        """In order of first appearance over the files sorted by path, so a sharded run lists
        them exactly as one pass does; absent-from-a-file rows count as missing."""
        names = {}
        for _, header, _ in sorted(self.files):
            names.update(dict.fromkeys(header))
        total = self.item_count
        for column in self.columns.values():
            column.missing += total - column.rows
            column.rows = total
        return [self.columns[name] for name in names]

    def merge(self, other: DatasetProfile) -> None:
        self.files += other.files
        for name, column in other.columns.items():
            if name in self.columns:
                self.columns[name].merge(column)
            else:
                self.columns[name] = column

    def to_json(self, mode: str, shard: str) -> dict:
        return {
            "format": PARTIAL_FORMAT,
            "version": PARTIAL_VERSION,
            "mode": mode,
            "shard": shard,
            "files": self.files,
            "columns": [c.to_json() for c in self.columns.values()],
        }

    @classmethod
    def from_json(cls, data: dict) -> DatasetProfile:
        profile = cls()
        profile.files = [(str(p), list(h), int(n)) for p, h, n in data["files"]]
        for item in data["columns"]:
            profile.columns[item["name"]] = ColumnProfile.from_json(item)
        return profile


# ----------------------------------------------------------------------------- reading


def data_files(directory: Path, *, allow_empty: bool = False) -> list[Path]:
    if not directory.is_dir():
        if allow_empty:
            return []
        raise InputError(f"{directory}: input directory does not exist; expected CSV files")
    files = sorted(p for p in directory.rglob("*") if p.is_file() and (is_csv(p) or _is_parquet(p)))
    if not files and not allow_empty:
        raise InputError(
            f"{directory}: no .csv, .csv.gz or .parquet files found; expected CSV files with a "
            "header row"
        )
    return files


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


def profile_files(directory: Path, files: list[Path]) -> DatasetProfile:
    if pa is None:
        raise InputError(
            "pyarrow is not importable; the SageMaker XGBoost 3.0-5 image ships it (22.0.0)"
        )
    profile = DatasetProfile()
    for path in files:
        relative = path.relative_to(directory).as_posix()
        reader = ParquetChunks(path) if _is_parquet(path) else CsvChunks(path)
        rows = 0
        for table in reader:
            rows += table.num_rows
            for i, name in enumerate(reader.header):
                add_array(profile.column(name), table.column(i), reader, name)
        for name in reader.header:
            profile.column(name).rows += rows
        profile.files.append((relative, reader.header, rows))
    if len({tuple(h) for _, h, _ in profile.files}) > 1:
        # Not fatal: absent columns become missing values, which the checks report.
        warn(f"files under {directory} have different headers; absent columns count as missing")
    return profile


def read_header(path: Path, line: bytes) -> list[str]:
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: header is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    try:
        header = next(csv.reader([text]), None)
    except csv.Error as exc:
        raise InputError(f"{path}: header row is not valid CSV ({exc})") from None
    if not header:
        what = "file is empty" if not text else "first line is empty"
        raise InputError(f"{path}: {what}; expected a CSV header row")
    header = [name.strip() for name in header]
    for position, name in enumerate(header, start=1):
        if not name:
            raise InputError(f"{path}: header column {position} has no name")
        if header.index(name) != position - 1:
            raise InputError(f"{path}: column name {name!r} appears twice in the header")
    return header


class CsvChunks:
    """A CSV file as Arrow tables of about CHUNK_BYTES each, split at line ends outside quotes.

    Each chunk is parsed by Arrow (multi-threaded) on a helper thread while the caller profiles
    the previous one; at most two chunks are in memory at any time.
    """

    def __init__(self, path: Path):
        self.path = path
        self.header: list = []
        self.text_columns: set = set()  # read as text: Arrow inferred a non-numeric type

    def _raw_chunks(self):
        """(file offset, bytes, whether quoted) of each chunk of whole rows."""
        try:
            with open_bytes(self.path) as handle:  # .csv.gz decompressed; gzip in .csv refused
                self.header = read_header(self.path, handle.readline())
                offset, rest = handle.tell(), b""
                while True:
                    data = handle.read(CHUNK_BYTES)
                    buffer = rest + data
                    quoted = b'"' in buffer
                    if not data:
                        if buffer.strip():
                            yield offset, buffer, quoted
                        return
                    cut = _row_boundary(buffer, quoted)
                    rest = buffer[cut:]
                    if cut:  # a memoryview: Arrow reads the rows in place, without a copy
                        yield offset, memoryview(buffer)[:cut], quoted
                    offset += cut
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .csv.gz
            if not self.path.name.lower().endswith(".gz"):
                raise
            raise InputError(f"{self.path}: not a readable gzip file ({exc})") from None

    def _parse(self, offset: int, buffer, quoted: bool, text_columns: frozenset):
        try:
            return pa_csv.read_csv(
                pa.py_buffer(buffer),
                read_options=pa_csv.ReadOptions(column_names=self.header),
                # Slower, so only when a quoted value may hold a line end.
                parse_options=pa_csv.ParseOptions(newlines_in_values=quoted),
                convert_options=pa_csv.ConvertOptions(
                    null_values=MISSING_TOKENS,
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                    column_types={name: pa.string() for name in text_columns},
                ),
            )
        except pa.ArrowInvalid as exc:
            reason = str(exc).strip().splitlines()[0][:200]
            raise InputError(
                f"{self.path}: not a readable CSV with a header row (in the rows from line "
                f"{self._line_at(offset)}: {reason})"
            ) from None

    def _line_at(self, offset: int) -> int:
        """Line number of the byte at `offset`; counted only for an error message."""
        with open_bytes(self.path) as handle:
            return handle.read(offset).count(b"\n") + 1

    def __iter__(self):
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for chunk in self._raw_chunks():
                parsing = pool.submit(self._parse, *chunk, frozenset(self.text_columns))
                if pending is not None:
                    yield self._typed(*pending)
                pending = (parsing, *chunk)
            if pending is not None:
                yield self._typed(*pending)

    def _typed(self, parsing, offset: int, buffer, quoted: bool):
        table = parsing.result()
        odd = [field.name for field in table.schema if not _profiled_type(field.type)]
        if odd:
            # Dates, booleans, ...: keep their text exactly, in this chunk and every later one.
            self.text_columns.update(odd)
            table = self._parse(offset, buffer, quoted, frozenset(self.text_columns))
        return table


def _profiled_type(arrow_type) -> bool:
    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_string(arrow_type)
        or pa.types.is_null(arrow_type)
        or pa.types.is_binary(arrow_type)  # Arrow's guess for bytes that are not UTF-8
    )


def _row_boundary(buffer: bytes, quoted: bool) -> int:
    """Offset just after the last line end that is outside quotes (0 if there is none)."""
    if not quoted:
        return buffer.rfind(b"\n") + 1
    raw = np.frombuffer(buffer, dtype=np.uint8)
    inside = np.cumsum(raw == ord('"')) % 2  # "" inside a quoted field keeps the parity
    ends = np.flatnonzero((raw == ord("\n")) & (inside == 0))
    return int(ends[-1]) + 1 if len(ends) else 0


class ParquetChunks:
    """A Parquet file as Arrow record batches; types Arrow cannot profile become text."""

    def __init__(self, path: Path):
        import pyarrow.parquet as pq

        self.path = path
        try:
            self.file = pq.ParquetFile(str(path))
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        self.header = list(self.file.schema_arrow.names)
        if len(set(self.header)) != len(self.header):
            raise InputError(f"{path}: a column name appears twice in the Parquet schema")

    def __iter__(self):
        rows = max(1, CHUNK_BYTES // 64)
        try:
            for batch in self.file.iter_batches(batch_size=rows):
                columns = []
                for i, name in enumerate(self.header):
                    array = batch.column(i)
                    if pa.types.is_dictionary(array.type):
                        array = array.dictionary_decode()
                    if pa.types.is_large_binary(array.type):
                        array = array.cast(pa.binary())  # binary: text, or not UTF-8 (add_array)
                    elif not _profiled_type(array.type):
                        try:
                            array = pc.cast(array, pa.string())
                        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                            raise InputError(
                                f"{self.path}: column {name!r} has type {array.type}, which "
                                "cannot be read as numbers or text"
                            ) from None
                    columns.append(array)
                yield pa.Table.from_arrays(columns, names=self.header)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{self.path}: not a readable Parquet file ({exc})") from None


def add_array(column: ColumnProfile, array, reader, name: str) -> None:
    """Profiles one chunk of one column (an Arrow array or chunked array)."""
    kind = array.type
    column.missing += array.null_count
    if pa.types.is_null(kind) or array.null_count == len(array):
        return
    if pa.types.is_integer(kind):
        values = (array.drop_null() if array.null_count else array).to_numpy()
        column.add_numbers(np.sort(values).astype(np.float64), True)  # ints sort faster
        return
    if pa.types.is_floating(kind):
        values = array.drop_null() if array.null_count else array
        values = np.asarray(values.to_numpy(), dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            nan = np.isnan(values)  # Parquet's NaN: missing, as the "nan" token in a CSV
            column.missing += int(nan.sum())
            odd = values[~finite & ~nan]  # inf or an overflowing literal: not usable, so text
            if len(odd):
                labels, counts = np.unique(odd, return_counts=True)
                texts = [repr(float(v)) for v in labels]
                column.add_texts(texts, counts, np.zeros(len(texts), bool))
            values = values[finite]
        column.add_numbers(np.sort(values), False)
        return
    if pa.types.is_binary(kind):  # CSV: Arrow's guess for bytes that are not UTF-8
        try:
            array = pc.cast(array, pa.string())  # Parquet bytes that are UTF-8 are text
        except pa.ArrowInvalid:
            example = next(v for v in array.drop_null().to_pylist() if _not_utf8(v))
            raise InputError(
                f"{reader.path}: column {name!r} holds bytes that are not UTF-8 (e.g. "
                f"{_short(example)}); expected UTF-8 text"
            ) from None
    add_text_array(column, array)


def _not_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def add_text_array(column: ColumnProfile, array) -> None:
    counted = pc.value_counts(array.drop_null())
    raw, counts = counted.field("values"), counted.field("counts").to_numpy().astype(np.int64)
    values = pc.utf8_trim_whitespace(raw)
    if not pc.all(pc.equal(values, raw)).as_py():  # " M" and "M" are one value: add them up
        encoded = values.dictionary_encode()
        counts = np.bincount(encoded.indices.to_numpy(), weights=counts).astype(np.int64)
        values = encoded.dictionary
    missing = pc.is_in(values, value_set=pa.array(MISSING_TOKENS)).to_numpy(zero_copy_only=False)
    if missing.any():  # e.g. " NA ": a missing token once the spaces are gone
        column.missing += int(counts[missing].sum())
        keep = np.flatnonzero(~missing)
        values, counts = values.take(pa.array(keep)), counts[keep]
    numeric = pc.match_substring_regex(values, NUMBER_PATTERN).to_numpy(zero_copy_only=False)
    if numeric.any():
        numbers = pc.cast(values.filter(pa.array(numeric)), pa.float64()).to_numpy()
        finite = np.isfinite(numbers)  # 1e999 matches the pattern but is not usable
        numeric[np.flatnonzero(numeric)[~finite]] = False
        number_counts = counts[numeric]
        integer = pc.match_substring_regex(values, INTEGER_PATTERN).to_numpy(zero_copy_only=False)
        column.add_numbers(
            np.sort(np.repeat(numbers[finite], number_counts)),
            bool(integer[numeric].all()),
            listed=False,
        )
    column.add_texts(values.to_pylist(), counts, numeric)


# ----------------------------------------------------------------------------- statistics


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


# ----------------------------------------------------------------------------- baseline


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


def run_baseline(profile: DatasetProfile, settings: dict) -> dict:
    columns = profile.ordered_columns()
    for column in columns:
        if column.inferred_type == "Unknown":
            warn(f"baseline column {column.name!r} has no values; it is only checked for presence")
        elif column.inferred_type == "String" and column.n_num > column.n_present / 2:
            warn(
                f"baseline column {column.name!r} is String because {column.n_text} of "
                f"{column.n_present} values are not numbers (e.g. "
                f"{_listing(column.text_examples, 3)}); fix the data if it should be numeric"
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


# ----------------------------------------------------------------------------- settings


def validate_setting(key: str, value: object, where: str) -> object:
    if key == "drift_alpha":
        if not isinstance(value, NUMBER) or isinstance(value, bool) or not 0 < value < 1:
            raise InputError(f"{where}: drift_alpha must be a number in (0, 1), got {value!r}")
        return float(value)
    if key == "drift_min_rows":
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{where}: drift_min_rows must be an integer >= 1, got {value!r}")
        return value
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


# ----------------------------------------------------------------------------- check


def cdf_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Largest gap between two weighted empirical CDFs (the Kolmogorov-Smirnov distance)."""
    grid = np.union1d(a[0], b[0])

    def cdf(items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        order = np.argsort(items, kind="stable")
        cumulative = np.concatenate([[0.0], np.cumsum(weights[order])]) / weights.sum()
        return cumulative[np.searchsorted(items[order], grid, side="right")]

    return float(np.max(np.abs(cdf(*a) - cdf(*b))))


def _listing(values, limit: int = 10) -> str:
    values = list(values)
    shown = ", ".join(_short(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _share(count: int, total: int) -> str:
    percent = 100 * count / total
    # two decimals, but a non-zero count never shows as "0.00%"
    shown = f"{percent:.2f}" if percent >= 0.01 or not count else f"{percent:.1g}"
    return f"{count} of {total} values ({shown}%)"


def check_feature(col: ColumnProfile, base: Baseline, s: dict) -> tuple[list, float, dict]:
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
        if bad > s["datatype_check_threshold"] * present:
            integral = base.inferred_type == "Integral"
            examples = col.text_examples + (col.fraction_examples if integral else [])
            found.append(
                (
                    "data_type_check",
                    f"Data type: {_share(bad, present)} are not {base.inferred_type} as in the "
                    f"baseline (e.g. {', '.join(_short(v) for v in examples[:3])}); allowed "
                    f"share {s['datatype_check_threshold']:g} (datatype_check_threshold). Look "
                    "for units, typos or a changed export format in the source.",
                )
            )

    completeness = present / col.rows
    if base.completeness is not None and (
        completeness < base.completeness - s["completeness_tolerance"]
    ):
        found.append(
            (
                "completeness_check",
                f"Completeness: {_share(col.rows - present, col.rows)} are missing; "
                f"{100 * completeness:.2f}% present vs {100 * base.completeness:.2f}% in the "
                f"baseline (tolerance {s['completeness_tolerance']:g}). Check the upstream "
                "join or export that fills this column.",
            )
        )

    if base.is_non_negative and col.n_negative:
        found.append(
            (
                "non_negative_check",
                f"Non-negative: {_share(col.n_negative, col.n_num)} are negative (min "
                f"{col.low:.4g}); the baseline had no negative values. A sign flip or a "
                "sentinel such as -1 for unknown is the usual cause.",
            )
        )

    if base.domain is not None and present:
        counts = col.value_counts()
        known = sum(counts.get(v, 0) for v in base.domain)
        unknown = present - known
        if unknown > s["domain_content_threshold"] * present:
            new = [(v, c) for v, c in col.most_common() if v not in base.domain][:3]
            listed = ", ".join(f"{_short(v)} x{c}" for v, c in new) or "values not tracked"
            found.append(
                (
                    "categorical_values_check",
                    f"Unknown categories: {_share(unknown, present)} are not in the baseline "
                    f"domain {_listing(base.domain)} (new: {listed}); allowed share "
                    f"{s['domain_content_threshold']:g} (domain_content_threshold). Map them to "
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


def type_note(col: ColumnProfile, base: Baseline, s: dict) -> str | None:
    """A numeric feature's values of the wrong type that stay within datatype_check_threshold:
    not a violation (Model Monitor's semantics: only a share above the threshold is), but
    counted and reported, since they are imputed before scoring."""
    if base.inferred_type not in NUMERIC_TYPES or not col.n_present:
        return None
    bad = wrong_type_count(col, base)
    if not bad or bad > s["datatype_check_threshold"] * col.n_present:
        return None
    integral = base.inferred_type == "Integral"
    examples = col.text_examples + (col.fraction_examples if integral else [])
    return (
        f"{base.name}: {_share(bad, col.n_present)} are not {base.inferred_type} (e.g. "
        f"{', '.join(_short(v) for v in examples[:3])}); within datatype_check_threshold "
        f"{s['datatype_check_threshold']:g}, so not a violation, but imputed before scoring"
    )


def _drift(col: ColumnProfile, base: Baseline, s: dict) -> tuple:
    """(distance, description if it is a violation, test): distance is NaN when not
    comparable. Robust: no description yet but the test (drift_tests.py) whose p-value
    run_check corrects across features before deciding (see drift_verdicts)."""
    if s["perform_comparison"] != "Enabled":
        return math.nan, None, None
    robust = s["comparison_method"] == "Robust"
    if base.sketch is not None and col.n_num:
        batch_sketch = col.sketch.items_and_weights()
        distance = cdf_distance(base.sketch, batch_sketch)
        threshold = s["comparison_threshold"]
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
        threshold = s["categorical_comparison_threshold"]
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
                f"for {_short(worst)}: {100 * batch.get(worst, 0.0):.1f}% in this batch vs "
                f"{100 * base.frequencies.get(worst, 0.0):.1f}% in the baseline). Check "
                "whether the batch comes from a different population or a filtered source."
            )
            return distance, text, None
        return distance, None, None
    return math.nan, None, None


def drift_verdicts(tests: dict, settings: dict, feature_settings: dict, rows: int) -> tuple:
    """Robust comparison: (feature -> violation description, the summary's drift section).

    Holm's correction across the tested features keeps the chance that a clean batch raises
    any drift alarm at drift_alpha; a significant change is still not reported when it is too
    small to matter (below drift_min_shift_sd and the distance threshold). Below drift_min_rows
    rows (of the batch or of one feature) the verdict is inconclusive, never a violation.
    """
    alpha, min_rows = settings["drift_alpha"], settings["drift_min_rows"]
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
            floor, threshold = s["drift_min_shift_sd"], s["comparison_threshold"]
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
            distance, threshold = test["distance"], s["categorical_comparison_threshold"]
            material = distance >= threshold
            entry.update(share_change=distance)
            text = (
                f"Baseline drift: category shares moved by up to {100 * distance:.1f} points "
                f"(L-infinity distance {distance:.3f}, threshold {threshold:g}); largest for "
                f"{_short(test['category'])}: {100 * test['batch_share']:.1f}% in this batch vs "
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


def run_check(
    profile: DatasetProfile, features: list, file_settings: dict, cli_settings: dict
) -> dict:
    columns = {c.name: c for c in profile.ordered_columns()}
    settings = {**DEFAULT_SETTINGS, **file_settings, **cli_settings}
    violations, distances, notes = [], {}, []
    # (feature, its violations) in baseline order; drift ones join after the correction.
    pending, tests, tested_settings = [], {}, {}
    drifted, drift = {}, None  # drift: the summary's section, when a feature was tested

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
                text = (
                    f"Missing column: {base.name!r} is in the baseline but not in this batch"
                    + _case_twin(base.name, extra)
                    + "; the model gets it as missing. Check the export's header."
                )
                pending.append((base.name, [("missing_column_check", text)]))
                continue
            # Per-feature overrides are deliberate edits of one feature: they win over the CLI.
            feature_settings = {**settings, **base.overrides}
            if feature_settings["evaluate_constraints"] != "Enabled":
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


# ----------------------------------------------------------------------------- partials


def shard_name(base: Path) -> str:
    """This instance's host name (algo-1, algo-2, ...) from SageMaker's resource config."""
    config = base.parent / "config" / "resourceconfig.json"
    try:
        host = json.loads(config.read_text(encoding="utf-8"))["current_host"]
    except (OSError, ValueError, KeyError, TypeError):
        return "algo-1"  # one instance, or not in SageMaker
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(host))


def load_partials(directory: Path) -> tuple[str, DatasetProfile]:
    """The mode and the merged profile of every partial-*.json under `directory`."""
    paths = sorted(directory.rglob("partial-*.json")) if directory.is_dir() else []
    if not paths:
        raise InputError(
            f"{directory}: no partial-*.json files; expected the outputs of the --shard step"
        )
    loaded = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != PARTIAL_FORMAT or data.get("version") != PARTIAL_VERSION:
                raise ValueError(f"not a {PARTIAL_FORMAT} file of version {PARTIAL_VERSION}")
            loaded.append((data["mode"], DatasetProfile.from_json(data), path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: unusable partial statistics ({exc})") from None
    modes = sorted({mode for mode, _, _ in loaded})
    if len(modes) != 1 or modes[0] not in ("baseline", "check"):
        raise InputError(f"{directory}: partials of mixed or unknown modes {modes}")
    # Merge in the order of each shard's first file: the result does not depend on host names.
    loaded.sort(key=lambda item: sorted(item[1].files)[:1])
    merged = DatasetProfile()
    for _, profile, _ in loaded:
        merged.merge(profile)
    return modes[0], merged


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


def write_outputs(directory: Path, documents: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        if name.startswith("partial-"):  # read back only by --mode merge: keep inf exactly
            text = json.dumps(document, separators=(",", ":"))
        else:
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


def _probability(text: str) -> float:
    value = _threshold(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _row_count(text: str) -> int:
    if not re.fullmatch(r"\d+", text.strip()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def parse_args(argv: list | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Data-quality baseline and check writing SageMaker Model Monitor files.",
        epilog="Threshold precedence in check mode: a feature's monitoringConfigOverrides > "
        "these options > the baseline's monitoring_config > built-in defaults. In baseline "
        "mode the options set what constraints.json records.",
    )
    parser.add_argument("--mode", choices=("baseline", "check", "merge"), required=True)
    parser.add_argument(
        "--shard",
        action="store_true",
        help="baseline/check: profile this instance's share of the data only and write "
        "partial-<host>.json for --mode merge (a job with several instances, ShardedByS3Key)",
    )
    parser.add_argument(
        "--base-dir",
        type=Path,
        default=default_base_dir(),  # it runs as <root>/input/code/data_quality.py
        help="job root: data is read from <base>/input/data/ (default: two levels above this "
        "script's folder, /opt/ml/processing in SageMaker)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="where the JSON files go (default <base>/output)",
    )
    parser.add_argument(
        "--partials",
        type=Path,
        metavar="DIR",
        help="merge: folder of the shards' partial-*.json (default <base>/input/partials)",
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
        "drift_min_shift_sd": "check, Robust: smallest mean shift, in baseline standard "
        "deviations, that is a drift (default 0.1); smaller ones alarm only via the distance",
    }
    for key, text in options.items():
        flag = "--" + key.replace("_", "-")
        parser.add_argument(flag, dest=key, type=_threshold, metavar="X", help=text)
    parser.add_argument(
        "--comparison-method",
        choices=CHOICES["comparison_method"],
        help="Robust (default): a drift must be statistically significant across all features "
        "(see --drift-alpha) and large enough (thresholds, --drift-min-shift-sd); Simple: the "
        "distance thresholds alone decide, as in Model Monitor",
    )
    parser.add_argument(
        "--drift-alpha",
        type=_probability,
        metavar="A",
        help="check, Robust: largest chance that a batch from the baseline's distribution "
        "raises any drift alarm (Holm's correction across features; default 0.05)",
    )
    parser.add_argument(
        "--drift-min-rows",
        type=_row_count,
        metavar="N",
        help="check, Robust: with fewer rows the drift verdict is 'inconclusive', not a "
        "violation (default 50)",
    )
    args = parser.parse_args(argv)
    if args.mode == "baseline" and args.completeness_tolerance is not None:
        parser.error("--completeness-tolerance applies to --mode check only")
    if args.shard and args.mode == "merge":
        parser.error("--shard applies to --mode baseline or check")
    return args


def run(args: argparse.Namespace) -> dict:
    base = args.base_dir
    cli_settings = {
        key: value
        for key, value in vars(args).items()
        if key in DEFAULT_SETTINGS and value is not None
    }
    data_dir = base / "input" / "data"
    if args.shard:
        # ShardedByS3Key hands out whole objects, so with fewer objects than instances some
        # instances get none: an empty partial, not an error (the merge step checks the total).
        files = data_files(data_dir, allow_empty=True)
        if not files:
            warn(f"{data_dir}: no data files for this shard; writing an empty partial")
        name = shard_name(base)
        return {f"partial-{name}.json": profile_files(data_dir, files).to_json(args.mode, name)}

    if args.mode == "merge":
        partials = args.partials or base / "input" / "partials"
        mode, profile = load_partials(partials)
        source, names = partials, "any shard's files"
    else:
        mode, files = args.mode, data_files(data_dir)
        source, names = data_dir, ", ".join(p.relative_to(data_dir).as_posix() for p in files)
    if mode == "check":  # before the data: a bad baseline should not cost a pass over it
        baseline_dir = base / "input" / "baseline"
        features, file_settings = load_baseline(
            args.baseline_statistics or baseline_dir / "statistics.json",
            args.baseline_constraints or baseline_dir / "constraints.json",
        )
    if args.mode != "merge":
        profile = profile_files(data_dir, files)
    if profile.item_count == 0:
        raise InputError(f"{source}: no data rows in {names}; expected at least one record")
    if mode == "baseline":
        return run_baseline(profile, {**DEFAULT_SETTINGS, **cli_settings})
    return run_check(profile, features, file_settings, cli_settings)


def main(argv: list | None = None) -> int:
    """Exit status; every failure, bad input or not, ends with one line naming it (run_step)."""
    return run_step("data_quality", _main, parse_args(argv))


def _main(args: argparse.Namespace) -> int:
    output_dir = args.output_dir or args.base_dir / "output"
    documents = run(args)
    write_outputs(output_dir, documents)
    for name in documents:
        print(f"wrote {output_dir / name}")
    if "summary.json" in documents:
        print(documents["summary.json"]["message"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
