"""What an MRI/PET node pair must satisfy before registration or fusion; checked before the scene changes."""
from __future__ import annotations

import numpy as np

from FuseVisLib.errors import FuseVisError
from FuseVisLib.volume_io import Volume, check_volume

from .volume_nodes import volume_from_node

# Networks see the slice through convolutions; fewer pixels than this on a side is not an image.
MIN_SLICE_SIDE = 8


def checked_pair(mri_node, pet_node) -> tuple[Volume, Volume]:
    """The MRI and PET volumes of two nodes, each checked; FuseVisError names the first problem and its fix."""
    if mri_node is not None and pet_node is not None and mri_node.GetID() == pet_node.GetID():
        raise FuseVisError(
            f"the same volume ({mri_node.GetName()!r}) is selected as MRI and as PET; choose the PET volume as PET"
        )
    mri = check_volume(volume_from_node(mri_node, "MRI"), f"the MRI volume {mri_node.GetName()!r}")
    pet = check_volume(volume_from_node(pet_node, "PET"), f"the PET volume {pet_node.GetName()!r}")
    small = [side for side in mri.array.shape if side < MIN_SLICE_SIDE]
    if len(small) > 1:
        raise FuseVisError(
            f"the MRI volume {mri_node.GetName()!r} is {'x'.join(map(str, mri.shape_ijk))} voxels; its axial slices "
            f"need at least {MIN_SLICE_SIDE} pixels on each side"
        )
    return mri, pet


def linear_transform_matrix(transform_node, role: str) -> np.ndarray:
    """4x4 to-world matrix of ``transform_node`` (identity for None); FuseVisError if it is not linear."""
    from slicer.util import arrayFromVTKMatrix
    import vtk

    if transform_node is None:
        return np.eye(4)
    if not transform_node.IsTransformToWorldLinear():
        raise FuseVisError(
            f"the {role} volume is under the non-linear transform {transform_node.GetName()!r}; FuseVis resamples with "
            "linear transforms only: harden it (Data module) or remove it"
        )
    matrix = vtk.vtkMatrix4x4()
    transform_node.GetMatrixTransformToWorld(matrix)
    return arrayFromVTKMatrix(matrix)
