"""How slices are shown: 2-D images as stored, axial slices of volumes the radiological way.

The radiological view (anterior up, the patient's right on the viewer's
left) depends on which way the stored rows and columns run, which the
volume's geometry says: NIfTI files are often stored towards Right and
Anterior (dcm2niix, FSL), DICOM series towards Left and Posterior, some
with rows and columns swapped. So the turn is worked out from the MRI's
voxel-to-RAS matrix, never assumed.

Only pictures are turned; every coordinate in summary.json and report.html
refers to the stored array (row, col of the axial slice, as in the .npy and
NIfTI outputs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..volume_io.volume import Volume

# Slices tilted further than this from the true axial plane are called oblique in the figures.
OBLIQUE_DEGREES = 1.0


@dataclass(frozen=True)
class Display:
    transpose: bool = False  # stored columns run more nearly anterior-posterior than the rows
    flip_rows: bool = False
    flip_cols: bool = False
    caption: str | None = None  # how the pictures are oriented, for volumes

    @classmethod
    def radiological(cls, geometry: Volume, axis: int) -> "Display":
        """Axial slices (slices along array ``axis`` of ``geometry``'s ``[k, j, i]``) the radiological way."""
        rows_axis, cols_axis = (a for a in range(3) if a != axis)
        direction = geometry.direction_ras  # columns: the i, j, k axes; array axis a is ijk axis 2 - a
        down, right = direction[:, 2 - rows_axis], direction[:, 2 - cols_axis]
        transpose = abs(right[1]) > abs(down[1])
        if transpose:
            down, right = right, down
        tilt = math.degrees(math.acos(min(1.0, abs(float(direction[2, 2 - axis])))))
        caption = "Axial slices shown the radiological way (anterior up, patient's right on the left); coordinates are the array's."
        if tilt > OBLIQUE_DEGREES:
            caption = (
                f"Oblique slices ({tilt:.0f} degrees from axial) shown in the nearest radiological orientation "
                "(anterior up, patient's right on the left); coordinates are the array's."
            )
        # Flip where the index runs towards Anterior (it should run down towards Posterior) or towards the
        # patient's Right (it should run right, towards the patient's Left).
        return cls(transpose, bool(down[1] > 0), bool(right[0] > 0), caption)

    def image(self, image: np.ndarray) -> np.ndarray:
        """``image`` (rows, cols[, channels]) as it is shown."""
        shown = image.swapaxes(0, 1) if self.transpose else image
        if self.flip_rows:
            shown = shown[::-1]
        if self.flip_cols:
            shown = shown[:, ::-1]
        return shown

    def pixel(self, row: int, col: int, shown_shape: tuple[int, ...]) -> tuple[int, int]:
        """Where stored pixel (row, col) appears in :meth:`image`, whose shape is ``shown_shape``."""
        if self.transpose:
            row, col = col, row
        if self.flip_rows:
            row = shown_shape[0] - 1 - row
        if self.flip_cols:
            col = shown_shape[1] - 1 - col
        return row, col
