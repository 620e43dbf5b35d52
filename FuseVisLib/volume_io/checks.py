"""What makes a volume usable for fusion, each failure a FuseVisError naming the problem and the fix."""
from __future__ import annotations

import numpy as np

from ..errors import FuseVisError
from .volume import Volume


def check_image_layout(dimension: int, size: tuple[int, ...], components: int, source: str) -> None:
    """Reject what is not one 3-D scalar volume, from the header alone (before reading voxels)."""
    if components != 1:
        raise FuseVisError(
            f"{source} has {components} values per voxel (a colour or vector image); "
            "load a scalar (greyscale) MRI or PET volume instead"
        )
    if dimension == 4 and size[3] > 1:
        raise FuseVisError(
            f"{source} is a 4-D (dynamic) volume with {size[3]} frames; FuseVis fuses one 3-D volume: "
            "export a single frame or a summed/static image and load that"
        )
    if dimension < 3:
        raise FuseVisError(f"{source} is a {dimension}-D image, not a volume; load a 3-D NIfTI file or a DICOM series folder")
    if dimension > 4:
        raise FuseVisError(f"{source} has {dimension} dimensions; load a 3-D MRI or PET volume")
    if 0 in size[:3]:
        raise FuseVisError(f"{source} is empty (size {'x'.join(map(str, size[:3]))}); load a volume that has voxels")


def check_volume(volume: Volume, source: str) -> Volume:
    """Return ``volume`` if fusion can use it, else raise a FuseVisError naming ``source``.

    Rejects: not 3-D, no voxels, NaN or infinite voxels, all voxels equal
    (a blank volume carries no image), and a singular voxel-to-RAS matrix.
    """
    array = volume.array
    if array.ndim != 3:
        raise FuseVisError(f"{source} has {array.ndim} array dimensions; a volume needs 3 (k, j, i)")
    check_image_layout(3, volume.shape_ijk, 1, source)
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - np.count_nonzero(finite))
        kind = "NaN" if np.isnan(array).any() else "infinite"
        raise FuseVisError(
            f"{source} has {bad} {kind} voxel(s); replace them (e.g. with 0) in the software that made the "
            "volume, or mask them out, and load it again"
        )
    low, high = float(array.min()), float(array.max())
    if low == high:
        raise FuseVisError(f"{source} is blank (every voxel is {low:g}); load a volume that holds an image")
    if abs(np.linalg.det(volume.ijk_to_ras[:3, :3])) < 1e-12:
        raise FuseVisError(f"{source} has a degenerate geometry (zero spacing or collinear axes); fix its header")
    return volume
