"""Where the mouse is over the main slice views: the newest position only, in RAS.

The mouse events trame-slicer forwards to each view's interactor are
observed directly. Slicer's crosshair follows the mouse only while no
button is pressed (a left drag belongs to the window/level widget), but
FuseVis selects the principal pixel by hovering *or* dragging, as in the
paper. The position is mapped through the slice node's XY-to-RAS matrix,
which is how Slicer itself places the cursor.

The host loop, not this observer, decides when to compute: a position is
only recorded here and a newer one replaces it (counted as skipped), so
the Jacobians always catch up with the mouse instead of replaying its
path. The zoom view is not observed: it is centred on the principal
pixel, so following the mouse there would move the view under the mouse.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import vtk

OBSERVER_PRIORITY = 10.0


class CursorTracker:
    def __init__(self, views, on_move: Callable[[], None] | None = None) -> None:
        self._latest: np.ndarray | None = None
        self.on_move = on_move
        self.skipped = 0
        self.received = 0
        self._tags = []
        for view in views:
            interactor = view.interactor()
            for event in (vtk.vtkCommand.MouseMoveEvent, vtk.vtkCommand.LeftButtonPressEvent):
                observer = self._observer(view)
                # Ahead of Slicer's interactor style, which may stop an event from going further.
                self._tags.append((interactor, interactor.AddObserver(event, observer, OBSERVER_PRIORITY)))

    def close(self) -> None:
        for interactor, tag in self._tags:
            interactor.RemoveObserver(tag)
        self._tags = []

    def _observer(self, view):
        def moved(interactor, _event) -> None:
            x, y = interactor.GetEventPosition()
            ras = np.array(view.get_view_node().GetXYToRAS().MultiplyPoint([float(x), float(y), 0.0, 1.0]))[:3]
            if self._latest is not None:
                self.skipped += 1
            self.received += 1
            self._latest = ras
            if self.on_move is not None:
                self.on_move()

        return moved

    def point_at(self, ras) -> None:
        """A position not from the mouse (a newly opened pair's first principal pixel); the mouse's next move replaces it."""
        self._latest = np.array(ras, dtype=float)[:3]
        if self.on_move is not None:
            self.on_move()

    def pending(self) -> bool:
        return self._latest is not None

    def peek(self) -> np.ndarray | None:
        """The newest position not yet taken (RAS, mm), left in place, or None."""
        return self._latest

    def take(self) -> np.ndarray | None:
        """The newest position not yet taken (RAS, mm), or None."""
        position, self._latest = self._latest, None
        return position
