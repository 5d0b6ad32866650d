"""The collector policy of bulk loads (chatpulse.core.heap)."""

from __future__ import annotations

import gc

from chatpulse.core.heap import BULK_THRESHOLDS, bulk_gc


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_bulk_gc_sets_thresholds_and_restores_them() -> None:
    before = gc.get_threshold()
    with bulk_gc():
        assert gc.get_threshold() == BULK_THRESHOLDS
    assert gc.get_threshold() == before


def test_bulk_gc_freezes_what_is_alive_and_unfreezes_on_exit() -> None:
    gc.collect()
    assert gc.get_freeze_count() == 0
    with bulk_gc():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_overlapping_blocks_restore_once_the_last_exits() -> None:
    before = gc.get_threshold()
    outer = bulk_gc()
    inner = bulk_gc()
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)  # not LIFO: a bus writer that stops before the collector
    assert gc.get_threshold() == BULK_THRESHOLDS
    inner.__exit__(None, None, None)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_inside_the_block_are_still_collected() -> None:
    with bulk_gc():
        node = _Node()
        del node  # unreachable, kept alive by its own reference only
        assert gc.collect() >= 1
