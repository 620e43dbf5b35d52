"""Following the mouse: the crosshair node's cursor position, newest only.

The observer only records where the cursor is; it computes nothing. The
Logic takes the position when it next runs (a zero-delay timer in Slicer,
the event loop in the viewer), so positions that arrive faster than the
Jacobians can be computed are overwritten, not queued: the display always
catches up with the mouse and never replays its path.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


class CrosshairFollower:
    """Observes a ``vtkMRMLCrosshairNode``; :meth:`take` returns the newest unseen RAS position."""

    def __init__(self, on_move: Callable[[], None] | None = None) -> None:
        self._node = None
        self._tag = None
        self._latest: np.ndarray | None = None
        self.skipped = 0  # positions overwritten before they were taken
        self.on_move = on_move

    def observe(self, crosshair_node) -> None:
        """Follow ``crosshair_node`` (stops following the previous one)."""
        self.stop()
        import slicer

        self._node = crosshair_node
        self._tag = crosshair_node.AddObserver(slicer.vtkMRMLCrosshairNode.CursorPositionModifiedEvent, self._moved)

    def stop(self) -> None:
        if self._node is not None and self._tag is not None:
            self._node.RemoveObserver(self._tag)
        self._node, self._tag = None, None

    def _moved(self, node, _event) -> None:
        position = [0.0, 0.0, 0.0]
        if not node.GetCursorPositionRAS(position):
            return  # the cursor left the views
        if self._latest is not None:
            self.skipped += 1
        self._latest = np.array(position, dtype=np.float64)
        if self.on_move is not None:
            self.on_move()

    def pending(self) -> bool:
        return self._latest is not None

    def take(self) -> np.ndarray | None:
        """The newest position not yet taken (RAS, mm), or None."""
        position, self._latest = self._latest, None
        return position
