"""Garbage collection for a process that holds the SageMaker SDK, moto and botocore's service
models: millions of long-lived objects that every full collection would walk again.

An entry point turns collection off while it imports (imports make next to no garbage, and
each collection would walk everything imported so far: a third of the import time) and calls
settle_heap() once everything is imported (`python -m local_runtime`; each test worker after
collection): gc.freeze() moves what exists to the permanent generation, which collections skip
(https://docs.python.org/3/library/gc.html#gc.freeze), a larger first threshold makes young
collections rarer, and collection is on again; each collection still frees what it finds.
Measured: `make demo`'s runner 3.7-4.1 -> 1.7-1.8 CPU-s of collection; three test modules
13.0 -> 3.9; a test worker's collection 7.0 -> 4.6 CPU-s (bench/README.md).
"""

from __future__ import annotations

import gc

# Objects allocated (net) before a young collection; CPython's default is 700.
YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    gc.enable()
