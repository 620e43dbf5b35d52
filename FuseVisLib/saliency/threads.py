"""How many CPU threads the per-pixel Jacobian uses.

A Jacobian image is a chain of convolutions on rectangles of a few hundred
pixels, most well under a millisecond. Splitting such work over threads
costs more in fork/join than it saves, and when another process (or the
viewer's own guidance computation) keeps a core busy, every parallel
operation waits for the slow thread: measured on the 2-core machine under
load, one thread was 3-10x faster than two. So a Jacobian runs on one
thread, except a standalone Jacobian whose rectangles hold at least
:data:`WIDE_MULTIPLY_ADDS` (DeepPedestrian): it runs on the caller's threads
(``torch.get_num_threads()``; 6.4-6.9 -> 4.4-6.0 ms on an idle machine; with
the other core busy in another process two threads lose instead, 7.7-8.3 ->
9.8-11.4 ms, which is why the viewer's session never takes them). MaskNet
stays on one: two threads gained it 3.2-3.5 -> 2.4-2.8 ms idle but lost
3.2-3.6 -> 6.8-8.1 ms with a core busy, past its 5 ms goal. Thread counts
change the rounding of some small convolutions, so the choice depends only
on the network, the pixel's border situation and the caller's setting,
never on the machine's load: the same call always gives the same bits.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import torch

JACOBIAN_THREADS = 1
# Multiply-adds of a Jacobian's forward pass from which the caller's threads are
# taken: DeepPedestrian (114 M in the image's interior) gains a quarter idle and
# loses a quarter with a core busy, where one thread misses its 8 ms as well;
# MaskNet (36 M) gains a quarter idle but loses half with a core busy, where one
# thread keeps it well inside its 5 ms; FunFuseAn (15 M) and DeepFuse (16 M)
# gain next to nothing.
WIDE_MULTIPLY_ADDS = 60_000_000

_local = threading.local()  # the caller's thread count, while inside jacobian_threads


@contextlib.contextmanager
def jacobian_threads(enabled: bool = True) -> Iterator[None]:
    """Run the calling thread's torch operations on :data:`JACOBIAN_THREADS` threads, restored afterwards.

    ``torch.set_num_threads`` changes the calling thread's OpenMP setting, so
    another thread's work (a guidance computation) keeps its own threads.
    ``enabled=False`` leaves the threads alone (a whole-image pass).
    """
    before = torch.get_num_threads()
    if not enabled:
        yield
        return
    outer = getattr(_local, "caller", None)
    _local.caller = before if outer is None else outer
    if before != JACOBIAN_THREADS:
        torch.set_num_threads(JACOBIAN_THREADS)
    try:
        yield
    finally:
        _local.caller = outer
        if before != JACOBIAN_THREADS:
            torch.set_num_threads(before)


@contextlib.contextmanager
def caller_threads() -> Iterator[None]:
    """Inside :func:`jacobian_threads`: the caller's own thread count again, for one large Jacobian."""
    wanted = getattr(_local, "caller", None) or torch.get_num_threads()
    current = torch.get_num_threads()
    if wanted == current:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(current)
