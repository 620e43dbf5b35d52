"""An MRI tilted as a scan along the AC-PC line is: the same head resampled onto oblique, anisotropic voxels."""
from __future__ import annotations

import numpy as np

from FuseVisLib.registration import resample_to_reference
from FuseVisLib.volume_io import Volume


def tilted(volume: Volume, shape_kji: tuple[int, int, int], spacing_ijk: tuple[float, float, float], degrees: float = 20) -> Volume:
    """``volume`` resampled onto a grid of ``shape_kji`` voxels of ``spacing_ijk`` mm, turned ``degrees`` about
    the R axis and centred on the same point."""
    tilt = np.deg2rad(degrees)
    rotation = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ np.diag(spacing_ijk)
    centre = volume.ijk_to_ras[:3, :3] @ ((np.array(volume.array.shape[::-1]) - 1) / 2) + volume.ijk_to_ras[:3, 3]
    matrix[:3, 3] = centre - matrix[:3, :3] @ ((np.array(shape_kji[::-1]) - 1) / 2)
    return resample_to_reference(volume, Volume(np.zeros(shape_kji, np.float32), matrix), np.eye(4))
