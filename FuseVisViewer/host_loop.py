"""The viewer's host loop: drives the FuseVis Logic from the trame (asyncio) event loop.

One coroutine does all Logic work on the event loop's thread, which is
the thread that owns the MRML scene and renders the views:

* Mouse first. When the cursor moved (:class:`~.cursor.CursorTracker`
  wakes the loop at once), the newest position becomes the principal
  pixel: one Jacobian pair of one slice, then the page is updated.
  Positions that came in meanwhile were overwritten, never queued.
* Otherwise one ``logic.step(budget_seconds=0)``: it collects what the
  Logic's worker thread finished (fusion, guidance images) and starts the
  next slice task there. With a zero budget a step never waits for the
  worker, so it takes only the few milliseconds of writing slices.
* Between steps the loop sleeps (:data:`POLL_SECONDS`) or waits for the
  next mouse move, so the server keeps serving the views and the page.

Cancelling is :meth:`HostLoop.pause` (the running slice task is stopped,
finished slices stay); :meth:`HostLoop.resume` goes on where it stopped.
A network's first Jacobian needs its saliency plan, which the Logic's
worker makes after fusing the slice in view; until then mouse positions
wait (:attr:`HostLoop.waiting_for_plan`) instead of planning on the event
loop. Errors are reported and pause the work; the loop itself never dies.
"""
from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections import deque
from typing import Callable

from FuseVisLib.device import pick_device
from FuseVisLib.errors import FuseVisError

POLL_SECONDS = 0.02
IDLE_SECONDS = 0.25
RATE_WINDOW_SECONDS = 1.0

log = logging.getLogger(__name__)


class HostLoop:
    def __init__(
        self,
        cursor,
        on_principal: Callable[[float], None],
        on_step: Callable[[object], None],
        on_error: Callable[[str], None],
    ) -> None:
        self.logic = None
        self.cursor = cursor
        self.on_principal = on_principal
        self.on_step = on_step
        self.on_error = on_error
        self.paused = False
        # Set while the Logic must not be touched (a pair is being swapped in, a network planned).
        self.suspended = 0
        self.waiting_for_plan = False
        self.updates = 0
        self._update_times: deque[float] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="fusevis-host-loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def wake(self) -> None:
        """Run the next iteration now (a mouse move, a parameter change)."""
        self._wake.set()

    def pause(self) -> None:
        """Stop computing slices: the running task is cancelled, finished slices stay. Hovering still works."""
        self.paused = True
        if self.logic is not None and self.logic.prepared:
            self.logic.cancel()

    def resume(self) -> None:
        self.paused = False
        self.wake()

    @property
    def updates_per_second(self) -> float:
        now = time.perf_counter()
        while self._update_times and now - self._update_times[0] > RATE_WINDOW_SECONDS:
            self._update_times.popleft()
        return len(self._update_times) / RATE_WINDOW_SECONDS

    async def _run(self) -> None:
        while True:
            try:
                delay = self._iterate()
            except FuseVisError as error:
                self.paused = True
                self.on_error(str(error))
                delay = IDLE_SECONDS
            except Exception as error:  # the server must keep running whatever a step raises
                log.error("FuseVis host loop: %s", traceback.format_exc())
                self.paused = True
                self.on_error(f"internal error: {error!r}; computing stopped, the data stay loaded (Resume retries)")
                delay = IDLE_SECONDS
            if delay == 0:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    def _iterate(self) -> float:
        """One unit of work; returns how long to wait for the next (0: at once)."""
        logic = self.logic
        if logic is None or self.suspended or not logic.prepared:
            return IDLE_SECONDS
        if self.cursor.pending():
            if self._plan_ready(logic):
                self.waiting_for_plan = False
                started = time.perf_counter()
                pixel = logic.pixel_at_ras(self.cursor.take())
                if pixel is not None and logic.set_principal_pixel(*pixel):
                    self.updates += 1
                    self._update_times.append(time.perf_counter())
                    self.on_principal(time.perf_counter() - started)
                return 0
            self.waiting_for_plan = True
        if not self.paused and logic.has_work():
            report = logic.step(budget_seconds=0.0)
            self.on_step(report)
            return 0 if report.kind in ("fuse", "guidance") else POLL_SECONDS
        return IDLE_SECONDS if not self.cursor.pending() else POLL_SECONDS

    def _plan_ready(self, logic) -> bool:
        """May a Jacobian be computed now without planning the network on this thread?

        While slices are still being computed, the Logic's worker plans the
        network soon (right after fusing the slice in view); waiting for it
        keeps the event loop free. When computing is paused or done, nothing
        else would plan it, so the Logic plans here once.
        """
        device = str(pick_device(logic.parameters.device))
        if logic.networks.is_warm(logic.parameters.method, device):
            return True
        return self.paused or not logic.has_work()
