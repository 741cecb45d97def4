"""Round-robin timing shared by the benchmarks that compare pcseg with its peers.

Timing the implementations of one operation in turn (shuffled each round) instead of one block
after another makes them all see the same machine conditions: on a shared machine a block of runs
timed a few seconds later can be 1.5x slower or faster.
"""

from __future__ import annotations

import random
import statistics
import time


def time_round_robin(fns, repeats: int, *, own_repeats=None, sync=None, clock=time.perf_counter):
    """Best and median time in ms of each function in ``fns``, after one warm-up call each.

    ``own_repeats``: per function, ``None`` or a smaller repeat count (slow peers stop early).
    ``sync`` is called after each call (``torch.cuda.synchronize`` on the GPU). ``clock`` is the
    time source (``time.process_time`` measures CPU time instead of wall time).
    """
    own_repeats = list(own_repeats) if own_repeats is not None else [None] * len(fns)
    sync = sync or (lambda: None)
    for fn in fns:
        fn()
    sync()
    times = [[] for _ in fns]
    order = list(range(len(fns)))
    rng = random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)
        for k in order:
            if own_repeats[k] is not None and len(times[k]) >= own_repeats[k]:
                continue
            t0 = clock()
            fns[k]()
            sync()
            times[k].append(clock() - t0)
    return [(min(t) * 1e3, statistics.median(t) * 1e3) for t in times]
