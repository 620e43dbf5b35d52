"""Per-slice fusion and guidance as small tasks, cached per method and slice, the slice in view first.

The host submits the next task and collects finished ones; stopping is
simply not submitting again, and nothing is lost: every finished slice
stays in its method's :class:`MethodResults`. Order of work for a method:

1. fuse the slice in view (alone, so it shows at once);
2. its guidance images;
3. fuse the other slices, nearest to the view first, a batch at a time;
4. their guidance images, nearest first, one slice per task.

A guidance image of a network takes seconds to a minute on a CPU, far too
long to block a user interface. With ``background=True`` tasks therefore
run on one worker thread, with its own copy of each network (so the
Jacobians the main thread computes for the mouse never share a model with
it); results are merged into the caches only when the main thread
collects them, so the caches and the scene are touched by one thread.
The saliency engine plans (traces) each network before its first
guidance or Jacobian image, and tracing must not overlap with a network
running on another thread. Planning therefore runs as a job of its own on
the worker thread (fusion needs no plan, so the first fused slice does not
wait for it), and the main thread waits for a running plan before it uses
any network; with the worker idle it may plan on its own.
With ``background=False`` a task runs inside :meth:`SliceEngine.submit`.

Slices are the axial slices of the MRI grid, ``(slices, rows, cols)``.
"""
from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
import numpy as np
import torch
from torch import nn

from FuseVisLib.device import pick_device
from FuseVisLib.saliency import SaliencyCancelled, SaliencySession
from FuseVisLib.volume_fusion import fuse_slices

from .network_cache import NetworkCache

FUSE = "fuse"
GUIDANCE = "guidance"
# Saliency sessions (one forward pass of a slice, shared by its guidance and every Jacobian) kept at once:
# the slice under the mouse and its neighbours while scrolling.
SESSIONS_KEPT = 3
# Niceness of the worker thread (see _lower_priority): 0 is normal, 19 the lowest priority.
WORKER_NICENESS = 10


@dataclass
class MethodResults:
    """What one method produced so far; ``*_done[s]`` says whether slice ``s`` holds a result."""

    fused: np.ndarray
    guidance_mri: np.ndarray
    guidance_pet: np.ndarray
    fused_done: np.ndarray
    guidance_done: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, int, int]) -> "MethodResults":
        zeros = lambda: np.zeros(shape, dtype=np.float32)  # noqa: E731
        return cls(zeros(), zeros(), zeros(), np.zeros(shape[0], bool), np.zeros(shape[0], bool))

    @property
    def complete(self) -> bool:
        return bool(self.fused_done.all() and self.guidance_done.all())


@dataclass
class Task:
    """``kind`` (FUSE or GUIDANCE) of ``slices`` for ``method``; ``images`` holds the outputs once run."""

    kind: str
    method: str
    slices: list[int]
    images: dict[str, np.ndarray] = field(default_factory=dict)


class SliceEngine:
    """Fusion, guidance and Jacobian images of one normalised MRI/PET pair, slice by slice."""

    def __init__(
        self,
        mri_slices: np.ndarray,
        pet_slices: np.ndarray,
        networks: NetworkCache,
        device: str = "auto",
        background: bool = True,
    ) -> None:
        if mri_slices.shape != pet_slices.shape:
            raise ValueError(f"MRI slices {mri_slices.shape} and PET slices {pet_slices.shape} differ")
        self.mri = np.ascontiguousarray(mri_slices, dtype=np.float32)
        self.pet = np.ascontiguousarray(pet_slices, dtype=np.float32)
        self.device = pick_device(device)
        self._networks = networks
        self._results: dict[str, MethodResults] = {}
        self._sessions: OrderedDict[tuple[str, str, int], SaliencySession] = OrderedDict()
        self._worker = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="fusevis", initializer=_lower_priority) if background else None
        )
        self._running: Future | None = None
        self._planning = False  # the running job plans networks
        self._finished: list[Task] = []
        self._cancel = threading.Event()

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.mri.shape

    @property
    def busy(self) -> bool:
        """True while a task runs on the worker thread."""
        return self._running is not None

    def set_device(self, device: str) -> None:
        self.device = pick_device(device)
        self._sessions.clear()

    def model(self, method: str) -> nn.Module:
        """The method's network in eval mode on the engine's device (the main thread's)."""
        return self._networks.main(method, str(self.device))

    def results(self, method: str) -> MethodResults:
        if method not in self._results:
            self._results[method] = MethodResults.empty(self.shape)
        return self._results[method]

    def adopt(self, method: str, results: MethodResults) -> None:
        """Take results made earlier (e.g. read back from a saved scene) as the method's cache."""
        self._results[method] = results

    def next_task(self, method: str, view_slice: int, batch_size: int) -> Task | None:
        """The most useful work left for ``method``, or None when every slice is done."""
        results = self.results(method)
        view = int(np.clip(view_slice, 0, self.shape[0] - 1))
        if not results.fused_done[view]:
            return Task(FUSE, method, [view])
        if not results.guidance_done[view]:
            return Task(GUIDANCE, method, [view])
        for kind, done, count in ((FUSE, results.fused_done, batch_size), (GUIDANCE, results.guidance_done, 1)):
            pending = np.flatnonzero(~done)
            if pending.size:
                nearest = pending[np.argsort(np.abs(pending - view), kind="stable")]
                return Task(kind, method, [int(s) for s in nearest[:count]])
        return None

    def submit(self, task: Task) -> None:
        """Start ``task``: on the worker thread, or right here without one. One job at a time.

        A guidance task for a network not planned yet starts the planning
        instead; the task itself is offered again by :meth:`next_task`.
        """
        if self._running is not None:
            raise RuntimeError("a task is still running; collect it first")
        if self._worker is None:
            self._finished.append(self._compute(task, self.model(task.method), use_sessions=True))
            return
        device = str(self.device)
        self.model(task.method)
        worker_model = self._networks.worker(task.method, device)
        self._cancel.clear()
        if task.kind == GUIDANCE and not self._networks.is_warm(task.method, device):
            self._planning = True
            self._running = self._worker.submit(self._networks.warm_up, task.method, device)
            return
        self._running = self._worker.submit(self._compute, task, worker_model, False)

    def collect(self, timeout: float = 0.0) -> list[Task]:
        """Finished tasks, merged into their method's results (waits up to ``timeout`` s for a running one).

        A task that failed raises its error here; a cancelled one is dropped.
        """
        if self._running is not None:
            wait_for([self._running], timeout=max(timeout, 0.0))
            if self._running.done():
                future, self._running = self._running, None
                planned, self._planning = self._planning, False
                try:
                    result = future.result()
                except SaliencyCancelled:
                    result = None
                if not planned and result is not None:
                    self._finished.append(result)
        finished, self._finished = self._finished, []
        for task in finished:
            self._merge(task)
        return finished

    def cancel(self) -> None:
        """Stop the running task as soon as it checks (guidance does, between probes); its result is dropped."""
        self._cancel.set()

    def close(self) -> None:
        """Cancel the running job and wait for the worker thread to end (a plan cannot be cut short)."""
        self.cancel()
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)

    def _compute(self, task: Task, model: nn.Module, use_sessions: bool) -> Task:
        if task.kind == FUSE:
            fused = fuse_slices(model, self.mri[task.slices], self.pet[task.slices], batch_size=len(task.slices), progress=False)
            task.images = {"fused": fused}
            return task
        (index,) = task.slices
        if use_sessions:
            session = self.session(task.method, index)
        else:
            session = SaliencySession(model, self.mri[index], self.pet[index])
        g_mri, g_pet = session.guidance(cancel=self._cancel)
        task.images = {"guidance_mri": _as_array(g_mri)[None], "guidance_pet": _as_array(g_pet)[None]}
        return task

    def _merge(self, task: Task) -> None:
        results = self.results(task.method)
        if task.kind == FUSE:
            results.fused[task.slices] = task.images["fused"]
            results.fused_done[task.slices] = True
        else:
            results.guidance_mri[task.slices] = task.images["guidance_mri"]
            results.guidance_pet[task.slices] = task.images["guidance_pet"]
            results.guidance_done[task.slices] = True

    def stop_running(self) -> Future | None:
        """Cancel the running job (a guidance image stops at its next check) and return it to wait for.

        For a host that must have the worker idle before it plans a network
        on another thread. The job is still collected by :meth:`collect`
        later (a cancelled guidance image is dropped, a finished one kept).
        """
        running = self._running
        if running is not None:
            self.cancel()
        return running

    def wait_for_planning(self) -> None:
        """Return once no network is being planned on the worker thread (the main thread may then run one)."""
        if self._planning and self._running is not None:
            wait_for([self._running])  # collected later by collect()

    def _ready_for(self, method: str) -> None:
        """Before the main thread runs ``method``'s network: no plan may run elsewhere, and the network is planned."""
        if self._worker is None:
            return
        self.wait_for_planning()
        device = str(self.device)
        if self._networks.is_warm(method, device):
            return
        if self._running is not None:
            # Planning here needs the worker idle: cut a guidance job short (it is redone later).
            self.cancel()
            wait_for([self._running])
        self.model(method)
        self._networks.worker(method, device)
        self._networks.warm_up(method, device)

    def jacobian(self, method: str, index: int, row: int, col: int) -> tuple[np.ndarray, np.ndarray]:
        """Jacobian MRI and PET images of fused pixel (row, col) of slice ``index``."""
        self._ready_for(method)
        j_mri, j_pet = self.session(method, index).jacobian(row, col)
        return _as_array(j_mri), _as_array(j_pet)

    def session(self, method: str, index: int) -> SaliencySession:
        """The main thread's saliency session of one slice (its forward pass is done once, then reused)."""
        key = (method, str(self.device), index)
        if key in self._sessions:
            self._sessions.move_to_end(key)
        else:
            self._ready_for(method)
            self._sessions[key] = SaliencySession(self.model(method), self.mri[index], self.pet[index])
            while len(self._sessions) > SESSIONS_KEPT:
                self._sessions.popitem(last=False)
        return self._sessions[key]


def _lower_priority() -> None:
    """Run the calling (worker) thread, and the torch threads it starts, at a lower CPU priority.

    Background slices are worth less than the thread that answers the
    mouse (Jacobians, rendering) and the browser showing them: on a busy
    machine the scheduler now gives those the CPU first, and on an idle one
    nothing changes. Linux only (there a thread id names one thread);
    elsewhere, or if not allowed, the worker keeps its priority.
    """
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, max(os.getpriority(os.PRIO_PROCESS, thread), WORKER_NICENESS))
    except OSError:
        pass


def _as_array(image) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    return np.asarray(image, dtype=np.float32)
