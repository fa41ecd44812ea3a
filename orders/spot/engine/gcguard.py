"""Keeping CPython's cyclic garbage collector out of the matching loop.

Why: the cyclic GC runs at allocation-count thresholds, i.e. at an arbitrary command, and a
full (generation 2) collection walks every tracked object in the process. A runner holding
100,000 resting orders (each a tracked object, plus deques, heaps, Django's own objects)
then stalls for milliseconds in the middle of a batch (``bench/engine.py`` measures it).

The choice:

* the engine creates no reference cycles (orders do not point at their level, events hold
  only ints and strings), so reference counting frees all of its garbage at once and the
  cyclic collector has nothing to find in it;
* the runner enters ``HotPathGC()`` once, after it has rebuilt the book: everything alive
  is collected once and then frozen (``gc.freeze()``: moved to the permanent generation,
  never walked again), and automatic collection is switched off;
* between batches, after its commit and outside matching, the runner calls
  ``checkpoint()``: when enough new objects piled up it collects the young generations (only
  the objects created since the previous checkpoint: a cost proportional to one batch, not
  to the book) and freezes the survivors. Cyclic garbage made by other code in the runner
  (ORM, database driver, logging) is reclaimed there;
* an object frozen while alive that later becomes part of a garbage cycle is not reclaimed
  until ``full_collect()`` (unfreeze, collect everything, freeze again). That pause does
  scale with the heap; call it rarely and only when idle (the runner: when a poll found no
  work and the last full collection is old), or never if memory stays flat.

The collector's state is per process. Use the guard in a process that runs the engine
(``run_engine``, stack mode). In the embedded mode the runners are threads of the web
process: there the guard would switch off automatic collection for every request too, and
its checkpoints would collect their garbage in the runner's thread. Either do without it
there, or make sure some thread calls ``checkpoint()`` often.
"""

import gc
import time

__all__ = ["HotPathGC"]


class HotPathGC:
    """``with HotPathGC() as guard: ... guard.checkpoint() ...`` (see the module docstring).

    ``young_limit``: the number of new tracked objects (``gc.get_count()[0]``) above which
    ``checkpoint()`` collects; below it a checkpoint costs one call."""

    def __init__(self, young_limit=10_000):
        self.young_limit = young_limit
        self.checkpoints = 0  # collections done by checkpoint()
        self.last_pause_ns = 0  # of the last checkpoint collection
        self.max_pause_ns = 0  # of all checkpoint collections
        self.enter_pause_ns = 0  # the full collection on entry (once, at start-up)
        self._was_enabled = None

    def __enter__(self):
        self._was_enabled = gc.isenabled()
        gc.disable()
        start = time.perf_counter_ns()
        gc.collect()
        self.enter_pause_ns = time.perf_counter_ns() - start
        gc.freeze()
        return self

    def __exit__(self, *exc):
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()
        return False

    def checkpoint(self):
        """Between batches: collect and freeze what the last batches left, if it is enough
        to be worth it. Returns whether it collected."""
        if gc.get_count()[0] < self.young_limit:
            return False
        self._timed(gc.collect, 1)
        gc.freeze()
        self.checkpoints += 1
        return True

    def full_collect(self):
        """When idle: walk the whole heap once (pause proportional to it), freeze again.
        Returns the pause in nanoseconds."""
        start = time.perf_counter_ns()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return time.perf_counter_ns() - start

    def _timed(self, fn, *args):
        start = time.perf_counter_ns()
        fn(*args)
        self.last_pause_ns = time.perf_counter_ns() - start
        if self.last_pause_ns > self.max_pause_ns:
            self.max_pause_ns = self.last_pause_ns
