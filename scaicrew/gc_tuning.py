"""The cycle collector tuned for a long-running server process (ADR 0055).

CPython's cycle collector stops the whole process while it walks every tracked container of
the generation it collects. A full (oldest-generation) collection walks them all: about 230,000
objects of a built app (spec, validators, modules) plus about 290 per open live stream, so
200 ms and more with a thousand streams open, and every event due in that time waits for it.
Full collections come when the objects promoted since the last one exceed a quarter of those
it kept, and objects get promoted by surviving young collections: with CPython's default of a
young collection every 700 allocations, the per-event objects of a thousand streams (timers,
futures, frames) lived through several of them and were promoted by the ten thousand.
"""

from __future__ import annotations

import gc

#: Net container allocations between two young collections (CPython's default: 700). Most
#: objects of a request or an event die before the next young collection comes, so they are
#: never promoted; each young collection walks at most this many objects (a few milliseconds).
YOUNG_THRESHOLD = 10_000
#: Young collections per middle one, middle ones per full one considered (CPython's defaults).
OLDER_THRESHOLDS = (10, 10)


def settle_for_serving() -> None:
    """Tune the collector of a serving process whose app is built: young collections every
    ``YOUNG_THRESHOLD`` allocations, then everything alive now (the app, its spec, its
    modules: kept for the process's life anyway) moved out of the collector's sight with
    ``gc.freeze()``, so later full collections walk only what requests and streams allocate.

    Call it once per process, from the code that serves (not from ``create_app``: a test
    process builds many apps, and a frozen one is never collected).
    """
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
