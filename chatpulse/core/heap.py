"""The cyclic garbage collector's policy for bulk loads (a replay, a bus writer).

CPython's collector runs a young-generation pass every 700 net container allocations and a
full pass every hundred of those; each full pass walks every live container, the imported
modules included.  A bulk load allocates a few dozen containers per chat message and holds a
batch of thousands while it is written, so on the ingest benchmark the default policy spent
40 % of a replay's main process and 22 % of a bus writer in the collector (measured with
``gc.callbacks``: 2.4 of 5.8 s and 1.7 of 7.6 s for 100,000 messages).  Almost none of it frees
anything: those objects are freed by their reference counts, not by the collector.

:func:`bulk_gc` freezes what is alive when the load starts (modules, settings: they live as
long as the process, and a full pass no longer walks them) and runs the young pass every
50,000 allocations instead of 700.  Garbage in reference cycles is still collected, a little
later; the memory that costs is bounded by the threshold (a few MB).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["BULK_THRESHOLDS", "bulk_gc"]

#: ``gc.set_threshold`` while a bulk load runs: the young pass every 50,000 net container
#: allocations; the middle and full passes after as many young ones as by default.
BULK_THRESHOLDS = (50_000, 10, 10)

_depth = 0
_saved: tuple[int, int, int] | None = None


@contextlib.contextmanager
def bulk_gc() -> Iterator[None]:
    """Within this block the collector runs as :data:`BULK_THRESHOLDS` says, and what was
    alive on entry is frozen (``gc.freeze``); on exit the thresholds are restored and the
    frozen objects collectable again.  Nested or overlapping blocks (a replay inside
    ``chatpulse demo``, a bus writer beside a collector) share one setting: the last to exit
    restores."""
    global _depth, _saved
    if _depth == 0:
        _saved = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(*BULK_THRESHOLDS)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            assert _saved is not None
            gc.set_threshold(*_saved)
            gc.unfreeze()
            _saved = None
