"""Mergeable summaries of a column: KLL quantiles, HyperLogLog distinct counts, frequent items.

Each one merges across shards (see ColumnProfile): a sharded run gives the one-pass result up to
the error bounds stated on each class.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

SKETCH_C, SKETCH_K = 0.64, 2048  # the parameters Model Monitor's own sketches report
MAX_TRACKED_VALUES = 10000  # Misra-Gries counters per column: exact below this many values
MAX_VALUE_CHARS = 200  # longer values are tracked by a digest so memory stays bounded
HLL_P = 12  # 4096 registers: standard error 1.04 / sqrt(4096) = 1.6 %
# A priori normalised rank error of a KLL sketch at 99 % confidence (see KllSketch): what a
# baseline sketch read from statistics.json may be off by when it is not exact.
# A priori normalised rank error of a KLL sketch at 99 % confidence (see KllSketch): what a
# baseline sketch read from statistics.json may be off by when it is not exact.
KLL_RANK_ERROR = math.sqrt(18.3 * math.log(2 / 0.01)) / SKETCH_K


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
