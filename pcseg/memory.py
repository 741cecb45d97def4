"""Keep freed memory mapped between training steps (glibc malloc settings).

A training step allocates every activation of the network, keeps it until the backward and then
frees it. glibc's malloc gives each block above its mmap threshold (dynamic, at most 32 MiB on
64-bit) a mapping of its own, unmapped again on ``free``, and returns the top of its heap to the
kernel once more than twice that threshold is free there. So every step maps its memory afresh and
the kernel zero-fills each page on first touch (a minor page fault): MinkUNet18 at 5 cm on a
123k-point scan took 330-500k faults and 0.75-2 s of system time per step of about 11 s of user
time (``benchmarks/bench_sparse_train.py``, ``benchmarks/RESULTS.md``, issue 21).

:func:`keep_freed_memory` raises the mmap threshold to :data:`MMAP_THRESHOLD` and turns heap
trimming off, so blocks come from the heap and freed memory is reused by the next step without
faults. The price: the process keeps its peak memory (plus some fragmentation) until it exits,
as GPU caching allocators do. ``Trainer`` calls it (``train.keep_memory``, default true).

glibc only: elsewhere (macOS, Windows, musl) it does nothing. Settings the user gave glibc in the
environment (``MALLOC_*_`` variables, ``GLIBC_TUNABLES`` with ``glibc.malloc.``) are left alone.
"""

from __future__ import annotations

import ctypes
import os

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4

# blocks above this still get a mapping of their own (returned to the kernel on free)
MMAP_THRESHOLD = 1 << 30
# glibc's own variables for these settings (read when the process starts)
USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_TOP_PAD_")


def glibc():
    """The C library as a ctypes handle when it is glibc (has ``mallopt``), else None."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") else None
    except (AttributeError, ValueError, OSError):
        return None


def user_malloc_settings(environ=None) -> bool:
    """Whether the environment gives glibc's malloc settings of its own."""
    environ = os.environ if environ is None else environ
    return (any(name in environ for name in USER_SETTINGS)
            or "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""))


def keep_freed_memory(enable: bool = True, environ=None) -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the kernel.

    Sets ``M_TRIM_THRESHOLD`` to -1 (never trim the heap) and ``M_MMAP_THRESHOLD`` to
    :data:`MMAP_THRESHOLD` (1 GiB); a glibc that refuses a threshold above 32 MiB (before 2.35)
    gets ``M_MMAP_MAX`` 0 (no separate mappings) instead. Returns True when the settings are now
    in effect; False (and nothing changed) when ``enable`` is false, the C library is not glibc,
    or the environment holds malloc settings of the user's (:func:`user_malloc_settings`).
    Process-wide and not undone: call it in a process that trains, before the first step.
    """
    if not enable or user_malloc_settings(environ):
        return False
    libc = glibc()
    if libc is None:
        return False
    if libc.mallopt(M_TRIM_THRESHOLD, -1) != 1:
        return False
    if libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        return libc.mallopt(M_MMAP_MAX, 0) == 1
    return True
