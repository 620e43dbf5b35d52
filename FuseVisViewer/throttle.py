"""Calling something at most every so often, the last request always honoured (a trailing call).

While the mouse drags, the principal pixel changes tens of times a second.
The slice views must follow every change, but the readout table and the
scatterplot (a PNG) are read by a person: sending them at every change
costs the server and, more so, the browser (a table re-render and an image
decode per change) time the Jacobian layers need. :class:`Throttle` runs
its function at once when it has not run for ``interval`` seconds, and
otherwise once more when the interval is over, so the page always ends on
the newest state.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable


class Throttle:
    def __init__(self, function: Callable[[], None], interval: float) -> None:
        self.function = function
        self.interval = interval
        self._last = -float("inf")
        self._pending: asyncio.TimerHandle | None = None

    def request(self) -> None:
        """Run the function now, or at the end of the interval if it ran less than ``interval`` s ago."""
        if self._pending is not None:
            return  # the trailing call will see the newest state
        wait = self._last + self.interval - time.monotonic()
        if wait <= 0:
            self._run()
        else:
            self._pending = asyncio.get_running_loop().call_later(wait, self._run)

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _run(self) -> None:
        self._pending = None
        self._last = time.monotonic()
        self.function()
