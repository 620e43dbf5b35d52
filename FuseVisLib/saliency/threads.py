"""How many CPU threads the per-pixel Jacobian uses.

A Jacobian image is a chain of convolutions on rectangles of a few hundred
pixels, each well under a millisecond. Splitting such work over threads
costs more in fork/join than it saves, and when another process (or the
viewer's own guidance computation) keeps a core busy, every parallel
operation waits for the slow thread: measured on the 2-core machine under
load, one thread was 3-10x faster than two.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

JACOBIAN_THREADS = 1


@contextlib.contextmanager
def jacobian_threads(enabled: bool = True) -> Iterator[None]:
    """Run the calling thread's torch operations on :data:`JACOBIAN_THREADS` threads, restored afterwards.

    ``torch.set_num_threads`` changes the calling thread's OpenMP setting, so
    another thread's work (a guidance computation) keeps its own threads.
    ``enabled=False`` leaves the threads alone (a whole-image pass).
    """
    before = torch.get_num_threads()
    if not enabled or before == JACOBIAN_THREADS:
        yield
        return
    torch.set_num_threads(JACOBIAN_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)
