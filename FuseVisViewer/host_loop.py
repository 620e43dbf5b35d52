"""The viewer's host loop: drives the FuseVis Logic from the trame (asyncio) event loop.

One coroutine does all Logic work on the event loop's thread, which is
the thread that owns the MRML scene and renders the views:

* Mouse first. When the cursor moved (:class:`~.cursor.CursorTracker`
  wakes the loop at once), the newest position becomes the principal
  pixel: one Jacobian pair of one slice, then the views are updated (the
  app sends the readout and scatterplot at most every 0.1 s). Positions
  that came in meanwhile were overwritten, never queued.
* Otherwise one ``logic.step(budget_seconds=0)``: it collects what the
  Logic's worker thread finished (fusion, guidance images) and starts the
  next slice task there. With a zero budget a step never waits for the
  worker, so it takes only the few milliseconds of writing slices.
* Between steps the loop sleeps (:data:`POLL_SECONDS`) or waits for the
  next mouse move, so the server keeps serving the views and the page.

Cancelling is :meth:`HostLoop.pause` (the running slice task is stopped,
finished slices stay); :meth:`HostLoop.resume` goes on where it stopped.
A network's first Jacobian needs its networks loaded and planned
(seconds). :meth:`HostLoop.prepare_method` does that on a worker thread
while the Logic reports itself :attr:`~FuseVisMRML.FuseVisLogic.busy` (and
``on_busy`` tells the page); meanwhile the loop leaves the Logic alone and
mouse positions wait (:attr:`HostLoop.waiting_for_plan`, only the newest
is kept), so the server keeps answering the page. Errors are reported and
pause the work; the loop itself never dies.
"""
from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections import deque
from typing import Callable

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
        self.waiting_for_plan = False
        # Called with what the Logic is preparing (a text) when that starts, and with None when it ends.
        self.on_busy: Callable[[str | None], None] | None = None
        self._preparing: asyncio.Task | None = None
        self._failed_method: str | None = None  # its preparation failed: not retried until resume()
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
        self._failed_method = None
        self.wake()

    async def prepare_method(self, method: str) -> None:
        """Load and plan ``method``'s networks on a worker thread (FuseVisError: e.g. it has no weights).

        Returns at once when the method is ready. The Logic is busy meanwhile
        (see :meth:`~FuseVisMRML.FuseVisLogic.begin_preparing_method`).
        """
        logic = self.logic
        work = logic.begin_preparing_method(method)
        if work is None:
            return
        self._tell_busy(logic.busy)
        try:
            await asyncio.to_thread(work)
        finally:
            logic.end_preparing_method()
            self._tell_busy(None)
            self.wake()

    def _tell_busy(self, text: str | None) -> None:
        if self.on_busy is not None:
            self.on_busy(text)

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
            # Not asyncio.wait_for: in Python 3.11 it swallows a cancellation (stop()) that comes in the turn
            # the wait ends (a wake), and the loop would run on.
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _iterate(self) -> float:
        """One unit of work; returns how long to wait for the next (0: at once)."""
        logic = self.logic
        if logic is None or not logic.prepared or logic.busy:
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
        """May a Jacobian be computed now? If the method is not prepared, prepare it off the loop first."""
        method = logic.parameters.method
        if logic.method_ready(method):
            return True
        if self._failed_method == method:
            return False
        if self._preparing is None or self._preparing.done():
            self._preparing = asyncio.get_running_loop().create_task(self._prepare_reporting(method))
        return False

    async def _prepare_reporting(self, method: str) -> None:
        try:
            await self.prepare_method(method)
        except FuseVisError as error:
            self._failed_method, self.paused = method, True
            self.on_error(str(error))
        except Exception as error:  # the server must keep running
            log.error("FuseVis host loop: %s", traceback.format_exc())
            self._failed_method, self.paused = method, True
            self.on_error(f"internal error while preparing {method}: {error!r}")
