"""Keep the garbage collector off the long-lived heap.

The configuration, the compiled plans (templates, SSL contexts), the scheduler's jobs
and the imported modules live as long as the process, and at 1,000 checks they are
hundreds of thousands of objects. CPython's oldest-generation collection walks them
all each time it runs, a pause of 130–350 ms at 1,000 checks (over 1 s at 5,000) during
which no journey starts: on its own it breaks the schedule lag goals.

:func:`freeze_long_lived`, called once the configuration is loaded and applied (at
start and after each reload), collects what loading left behind, then moves every
surviving object to the permanent generation (:func:`gc.freeze`), which collections
never walk. Reference counting still frees them as usual; after a reload the previous
configuration is unfrozen and collected before the new one is frozen, so reloads do not
pile up frozen garbage.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collect, then exempt every object alive now from later collections."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
