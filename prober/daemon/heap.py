"""Keep the garbage collector off the long-lived heap, and run it less often.

The configuration, the compiled plans (templates, SSL contexts), the scheduler's jobs
and the imported modules live as long as the process, and at 1,000 checks they are
hundreds of thousands of objects. CPython's oldest-generation collection walks them
all each time it runs, a pause of 130–350 ms at 1,000 checks (over 1 s at 5,000) during
which no journey starts: on its own it breaks the schedule lag goals.

:func:`freeze_long_lived`, called once the configuration is loaded (at start, before
the first runs are armed, and after each reload), collects what loading left behind,
then moves every surviving object to the permanent generation (:func:`gc.freeze`),
which collections never walk. Reference counting still frees them as usual; after a reload the previous
configuration is unfrozen and collected (one full collection, once per reload) before
the new one is frozen, so reloads do not pile up frozen garbage.

It also raises the youngest generation's threshold from 700 to :data:`YOUNG_THRESHOLD`
allocations: journeys allocate fast (aiohttp), so at 700 the collector ran about 35
times a second at 1,000 checks; at 10,000 it runs a few times a minute and spends about
a third of the CPU (``benchmarks/starvation.py`` prints both). The garbage kept in
between is a few megabytes at most.

:func:`thaw` undoes both when the service stops (tests and the demo run services in a
process that goes on).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000

_saved_thresholds: tuple[int, int, int] | None = None


def freeze_long_lived() -> None:
    """Collect, then exempt every object alive now from later collections."""
    global _saved_thresholds
    if _saved_thresholds is None:
        _saved_thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, *_saved_thresholds[1:])
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def thaw() -> None:
    """Give the collector back every object and its usual thresholds."""
    global _saved_thresholds
    gc.unfreeze()
    if _saved_thresholds is not None:
        gc.set_threshold(*_saved_thresholds)
        _saved_thresholds = None
