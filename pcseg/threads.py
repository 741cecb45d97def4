"""How many CPU threads torch should use, given what else the machine is running.

torch starts one intra-op thread per core. When another CPU-bound process shares the cores, a
parallel region has to wait at its barrier for whichever of its threads the scheduler parked, so
two threads on a 2-core machine beside one busy process ran pcseg's sparse network 2-10x slower
than one thread (``benchmarks/bench_threads.py``). ``auto_threads`` therefore counts the cores
that are free *now* and uses at most that many (when OpenMP threads spin, its default):

    free = host cores - tasks of other processes running now (median of a few samples)
    threads = clamp(free, 1, min(cores this process may use, torch's current setting))

"Running now" is the kernel's count of runnable tasks (the 4th field of ``/proc/loadavg``), minus
this process's own running threads. Where that file does not exist (not Linux), the one-minute
load average stands in. ``threads=None`` in :class:`pcseg.Segmenter`, the CLI's ``--threads``
default and ``train.threads: auto`` all go through :func:`resolve_threads`.

``pcseg`` CLI runs also default ``OMP_WAIT_POLICY`` to ``PASSIVE`` before torch loads (see
:func:`prefer_passive_waiting`): threads that finish a parallel region early sleep instead of
spinning on the cores another thread or process needs. Then two threads were no slower than one
even beside ~20 busy tasks, and ``auto_threads`` uses every allowed core.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from pcseg.errors import PcsegValueError

LOADAVG = Path("/proc/loadavg")
OWN_TASKS = Path("/proc/self/task")


def allowed_cpus() -> int:
    """Cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def host_cpus() -> int:
    """Cores of the whole machine (what ``/proc/loadavg`` counts tasks against), at least 1."""
    return max(1, os.cpu_count() or 1)


def _runnable_tasks() -> int | None:
    """Tasks running or ready to run on the whole machine now (``/proc/loadavg`` field 4), or None."""
    try:
        return int(LOADAVG.read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


def _own_running_tasks() -> int:
    """Threads of this process in state R (running or runnable) now; at least 1 (the caller)."""
    running = 0
    try:
        for task in OWN_TASKS.iterdir():
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) S ...": the state follows the last ')' (comm may hold spaces and parens)
            if stat[stat.rindex(")") + 2:stat.rindex(")") + 3] == "R":
                running += 1
    except OSError:
        pass
    return max(1, running)


def busy_cpus(samples: int = 3, interval: float = 0.0) -> float:
    """Cores kept busy by other processes right now: median over ``samples`` readings ``interval``
    seconds apart of (runnable tasks - this process's running threads), >= 0.

    The default takes the readings back to back (well under a millisecond): on a loaded machine
    even ``time.sleep(0.001)`` can take a scheduler slice (10-20 ms) to return.

    Without ``/proc/loadavg`` it falls back to the one-minute load average (which includes this
    process when it has been busy), or 0 where even that is missing.
    """
    readings = []
    for k in range(max(1, int(samples))):
        if k and interval > 0:
            time.sleep(interval)
        total = _runnable_tasks()
        if total is None:
            break
        readings.append(max(0, total - _own_running_tasks()))
    if readings:
        return float(statistics.median(readings))
    try:
        return max(0.0, os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def omp_waits_passively(environ=None) -> bool:
    """Whether OpenMP threads sleep at barriers: ``OMP_WAIT_POLICY=PASSIVE`` or
    ``GOMP_SPINCOUNT=0`` in the environment (read as it is now: OpenMP itself read it when torch
    loaded)."""
    environ = os.environ if environ is None else environ
    return (environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"
            or environ.get("GOMP_SPINCOUNT", "").strip() == "0")


def auto_threads(limit: int | None = None, busy: float | None = None, passive: bool | None = None) -> int:
    """Threads to use now, at least 1, at most ``limit`` and the allowed cores.

    With spinning OpenMP threads (the default) only the free cores are used: a spinning thread
    that waits for a parked partner burns the core the partner needs. With passive waiting
    (``passive``, default :func:`omp_waits_passively`) all of them are: sleeping threads cost
    nothing, and on a shared machine each thread adds to the process's share of the cores.
    ``limit`` defaults to torch's current ``get_num_threads()`` (so a user's own
    ``torch.set_num_threads(1)`` is kept); ``busy`` (cores used by others) defaults to
    :func:`busy_cpus`.
    """
    if limit is None:
        import torch

        limit = torch.get_num_threads()
    if passive is None:
        passive = omp_waits_passively()
    if passive:
        return max(1, min(allowed_cpus(), int(limit)))
    if busy is None:
        busy = busy_cpus()
    free = int(host_cpus() - round(busy))
    return max(1, min(free, allowed_cpus(), int(limit)))


def parse_threads(value, name: str = "--threads"):
    """``value`` as given by a user -> a thread count >= 1, or None for "choose automatically".

    Accepts None, ``"auto"`` and 0 (automatic) or a positive int (also as a string); anything
    else raises :class:`PcsegValueError` naming ``name``.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    if isinstance(value, bool):
        raise PcsegValueError(f"{name} must be a positive integer or 'auto', got {value!r}")
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise PcsegValueError(f"{name} must be a positive integer or 'auto', got {value!r}") from None
    if count != value and not isinstance(value, str):
        raise PcsegValueError(f"{name} must be a positive integer or 'auto', got {value!r}")
    if count < 0:
        raise PcsegValueError(f"{name} must be a positive integer or 'auto', got {value!r}")
    return None if count == 0 else count


def resolve_threads(value, name: str = "--threads") -> int:
    """The thread count to use now for a user's setting (see :func:`parse_threads`)."""
    count = parse_threads(value, name)
    return auto_threads() if count is None else count


class ThreadChooser:
    """Sets torch's intra-op threads before each unit of work (a training step, a scan).

    ``setting``: a thread count, or None / ``"auto"`` for :func:`auto_threads`, re-chosen at most
    every ``every`` seconds, at most ``limit`` (default: torch's setting when this is built).
    """

    def __init__(self, setting=None, every: float = 1.0, limit: int | None = None, name: str = "threads"):
        import torch

        self.fixed = parse_threads(setting, name)
        self.limit = torch.get_num_threads() if limit is None else int(limit)
        self.every = float(every)
        self.current: int | None = None
        self._next = 0.0

    def choose(self) -> int:
        """The thread count to use now (the automatic choice is remade when due)."""
        if self.fixed is not None:
            count = self.fixed
        elif self.current is None or time.monotonic() >= self._next:
            count = auto_threads(limit=self.limit)
            self._next = time.monotonic() + self.every
        else:
            count = self.current
        self.current = count
        return count

    def apply(self) -> int:
        """Choose (if due), set torch's thread count, return it."""
        import torch

        count = self.choose()
        if count != torch.get_num_threads():
            torch.set_num_threads(count)
        return count


@contextmanager
def torch_threads(count: int):
    """Run the block with ``count`` intra-op torch threads, then restore the previous setting."""
    import torch

    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(int(count))
    try:
        yield count
    finally:
        if count != before:
            torch.set_num_threads(before)


def add_threads_argument(parser) -> None:
    """The CLI's ``--threads N|auto`` option (checked later by :func:`parse_threads`)."""
    parser.add_argument("--threads", default="auto", metavar="N|auto",
                        help="CPU threads for torch (default: auto = the cores other processes leave "
                             "free, re-checked per scan or step)")


def prefer_passive_waiting(environ=None) -> bool:
    """Default ``OMP_WAIT_POLICY`` to ``PASSIVE`` if torch's OpenMP runtime has not loaded yet.

    OpenMP reads the variable once, when it loads, so this only helps before ``import torch``;
    a value the user set is kept. Returns whether the variable now says PASSIVE.
    """
    environ = os.environ if environ is None else environ
    if "torch" not in sys.modules:
        environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
