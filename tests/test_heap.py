"""local_runtime/heap.py: what exists is frozen, young collections are rarer, and garbage made
afterwards is still collected."""

import gc
import weakref

from local_runtime.heap import YOUNG_THRESHOLD, settle_heap


class Node:
    pass


def test_settle_heap_freezes_what_exists_and_still_collects_new_cycles():
    before = gc.get_freeze_count()
    gc.disable()  # as an entry point leaves it while importing
    settle_heap()
    assert gc.isenabled()
    assert gc.get_freeze_count() > before
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle: only the collector frees it
    gone = weakref.ref(first)
    del first, second
    gc.collect()
    assert gone() is None
