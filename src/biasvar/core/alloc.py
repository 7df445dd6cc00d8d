"""Keep freed memory in the process, so that a training step does not page-fault.

A training step allocates and frees the same few activation tensors every
step: at width 256 and 32 members, each ``(members, batch, width)`` tensor is
3.3 MB. glibc's ``malloc`` serves such sizes from ``mmap`` or hands them back
to the kernel on ``free`` (its mmap and trim thresholds adapt at run time),
and then every step touches fresh pages: measured on this 2-core CPU VM,
5568 minor page faults and 14 ms of kernel time per 16 ms step at width 256
(2768 faults at width 128), in 6 of 15 processes started, depending on how
the thresholds happened to adapt. That made the same block 1.6-2x slower from
one process to the next. Fixing both thresholds (``mallopt``) keeps freed
blocks in the heap for reuse: 0-80 faults per step in every process measured.

Only where memory is placed changes, never a value: PyTorch aligns every CPU
tensor to 64 bytes either way (the block results are compared bit for bit in
``tests/test_alloc.py``). A no-op outside glibc (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util

# glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# The largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2): chunks up
# to 32 MiB come from the heap; larger ones are still mmap'ed, and freed at once.
MMAP_THRESHOLD = 32 << 20
# Free memory at the top of the heap is returned to the kernel only beyond this.
TRIM_THRESHOLD = 512 << 20

_done = False


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD,
                      trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds (bytes) for this process; True when it took effect.

    Idempotent and cheap; call it before a loop that allocates the same
    tensors over and over (``train_block`` does). The arguments are for the
    tests, which also show what thresholds below a step's tensor sizes do.
    """
    global _done
    if _done:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc: nothing to tune
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _done = (mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1
             and mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1)
    return _done
