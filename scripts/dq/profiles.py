"""Mergeable statistics of each column (ColumnProfile) and of a data set (DatasetProfile).

A profile serialises to a partial-*.json (to_json / from_json), so shards profile their share
of the data and one merge step combines them (dq.shards).
"""

from __future__ import annotations

import base64
import math

import numpy as np

from .sketches import (
    HLL_P,
    MAX_TRACKED_VALUES,
    FrequentItems,
    HyperLogLog,
    KllSketch,
    hash_numbers,
    hash_texts,
    number_text,
    tracked_value,
)

PARTIAL_FORMAT = "data-quality-partial"
PARTIAL_VERSION = 1


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
