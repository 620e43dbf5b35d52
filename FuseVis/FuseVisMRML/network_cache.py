"""Each method's network, loaded once per device: one for the main thread, a private copy for the worker.

The saliency engine plans every network object the first time it sees it
(a ``torch.fx`` trace and a receptive-radius probe: seconds on a CPU) and
caches the plan per object. Keeping the objects here, for the life of the
Logic, means re-preparing with other volumes or switching methods back and
forth never plans a network twice. Planning traces with ``torch.fx``,
which patches torch globally, so no other thread may run a network while
:meth:`NetworkCache.warm_up` runs (the slice engine sees to that).
"""
from __future__ import annotations

import copy

import numpy as np
from torch import nn

from FuseVisLib.device import pick_device
from FuseVisLib.registry import load_method
from FuseVisLib.saliency import SaliencySession

WARM_UP_SIDE = 16


class NetworkCache:
    def __init__(self) -> None:
        self._main: dict[tuple[str, str], nn.Module] = {}
        self._worker: dict[tuple[str, str], nn.Module] = {}
        self._warm: set[tuple[str, str]] = set()

    def main(self, method: str, device: str | None = None) -> nn.Module:
        """The method's network in eval mode with its weights (FuseVisError if they are missing)."""
        key = (method, str(pick_device(device)))
        if key not in self._main:
            self._main[key] = load_method(method, device=key[1])
        return self._main[key]

    def worker(self, method: str, device: str) -> nn.Module:
        """The worker thread's own copy of the network, made on first use."""
        key = (method, str(pick_device(device)))
        if key not in self._worker:
            self._worker[key] = copy.deepcopy(self.main(method, device))
        return self._worker[key]

    def is_warm(self, method: str, device: str) -> bool:
        return (method, str(pick_device(device))) in self._warm

    def warm_up(self, method: str, device: str) -> None:
        """Let the saliency engine plan both networks of the method (made beforehand by main() and worker())."""
        key = (method, str(pick_device(device)))
        if key in self._warm:
            return
        blank = np.zeros((WARM_UP_SIDE, WARM_UP_SIDE), dtype=np.float32)
        for network in (self._main[key], self._worker[key]):
            SaliencySession(network, blank, blank)
        self._warm.add(key)
