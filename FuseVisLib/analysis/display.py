"""How slices are shown: 2-D images as stored, axial slices of volumes the radiological way.

Only pictures are turned; every coordinate in summary.json and report.html
refers to the stored array (row, col of the axial slice, as in the .npy and
NIfTI outputs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..demo_sheet import radiological


@dataclass(frozen=True)
class Display:
    radiological: bool

    def image(self, image: np.ndarray) -> np.ndarray:
        """``image`` (rows, cols[, channels]) as it is shown."""
        return radiological(image) if self.radiological else image

    def pixel(self, row: int, col: int, shape: tuple[int, ...]) -> tuple[int, int]:
        """Where stored pixel (row, col) of an image of ``shape`` appears in :meth:`image`."""
        if not self.radiological:
            return row, col
        return shape[0] - 1 - row, shape[1] - 1 - col
