"""What an MRI/PET node pair must satisfy before registration or fusion; checked before the scene changes."""
from __future__ import annotations

import numpy as np

from FuseVisLib.errors import FuseVisError
from FuseVisLib.volume_fusion import axial_axis
from FuseVisLib.volume_io import Volume, check_volume

from .volume_nodes import volume_from_node

# Networks see the slice through convolutions; fewer pixels than this on a side is not an image.
MIN_SLICE_SIDE = 8


def checked_pair(mri_node, pet_node, outputs=()) -> tuple[Volume, Volume]:
    """The MRI and PET volumes of two nodes, each checked; FuseVisError names the first problem and its fix.

    ``outputs``: the nodes FuseVis writes its results into, which cannot be
    inputs as well (preparing the pair would overwrite the input).
    """
    if mri_node is not None and pet_node is not None and mri_node.GetID() == pet_node.GetID():
        raise FuseVisError(
            f"the same volume ({mri_node.GetName()!r}) is selected as MRI and as PET; choose the PET volume as PET"
        )
    written = {node.GetID() for node in outputs if node is not None}
    for node, role in ((mri_node, "MRI"), (pet_node, "PET")):
        if node is not None and node.GetID() in written:
            raise FuseVisError(
                f"{node.GetName()!r} is one of FuseVis's own results, rewritten whenever the pair is prepared; "
                f"choose the original {role} volume as {role}"
            )
    mri = check_volume(volume_from_node(mri_node, "MRI"), f"the MRI volume {mri_node.GetName()!r}")
    pet = check_volume(volume_from_node(pet_node, "PET"), f"the PET volume {pet_node.GetName()!r}")
    axis = axial_axis(mri)
    rows, cols = (side for index, side in enumerate(mri.array.shape) if index != axis)
    if min(rows, cols) < MIN_SLICE_SIDE:
        raise FuseVisError(
            f"the MRI volume {mri_node.GetName()!r} is {'x'.join(map(str, mri.shape_ijk))} voxels, so its axial slices are "
            f"{cols}x{rows} pixels; they need at least {MIN_SLICE_SIDE} on each side (a thin sagittal or coronal slab "
            "cannot be fused axially: load a volume that covers the head in the axial plane)"
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
