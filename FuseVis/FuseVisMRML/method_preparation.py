"""Preparing a fusion method on a thread of its own, for a host that polls from its event loop.

Loading a network and planning its saliency (a trace and a receptive-radius
probe) takes seconds; on the host's thread that freezes the application.
The Logic splits the work (:meth:`FuseVisLogic.begin_preparing_method`):
:class:`MethodPreparation` runs the slow part on a daemon thread and, polled
from the host's event loop (the Slicer module's timer), ends it there. The
browser viewer does the same with asyncio (``HostLoop.prepare_method``).
"""
from __future__ import annotations

import threading
from typing import Callable


class MethodPreparation:
    """One method being made ready; :meth:`poll` it on the host's thread until it returns True.

    Creating it raises at once what the Logic refuses on the host's thread
    (an unknown method, another preparation still running). Failures of the
    slow part (missing weights, a network that does not run) end up in
    :attr:`error`, and the Logic is never left busy.
    """

    def __init__(self, logic, method: str) -> None:
        self.method = method
        self.error: Exception | None = None
        self._logic = logic
        work = logic.begin_preparing_method(method)
        self._thread: threading.Thread | None = None
        if work is not None:
            self._thread = threading.Thread(target=self._run, args=(work,), name=f"FuseVis: preparing {method}", daemon=True)
            self._thread.start()

    def _run(self, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as error:  # noqa: BLE001 - handed to the host's thread by poll()
            self.error = error

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poll(self) -> bool:
        """True once the preparation has ended (then :attr:`error` says whether it failed); host's thread only."""
        if self.running:
            return False
        if self._thread is not None:
            self._thread = None
            self._logic.end_preparing_method()
        return True
