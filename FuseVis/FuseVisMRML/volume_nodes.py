"""Volume nodes <-> FuseVisLib volumes: voxels as ``array[k, j, i]`` plus the IJK-to-RAS matrix.

A node's IJK-to-RAS matrix places its voxels in the node's own coordinate
system; a parent transform (e.g. the registration's) then places that in
the world. Both conversions here work in the node's own coordinates.
"""
from __future__ import annotations

import numpy as np
import vtk
from slicer.util import arrayFromVolume, arrayFromVolumeModified, updateVolumeFromArray, vtkMatrixFromArray

from FuseVisLib.errors import FuseVisError
from FuseVisLib.volume_io import Volume


def ijk_to_ras(node) -> np.ndarray:
    """4x4 IJK-to-RAS matrix of a volume node (its own coordinates)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(row, col) for col in range(4)] for row in range(4)])


def volume_from_node(node, role: str) -> Volume:
    """The node's voxels (a float32 copy) and geometry; FuseVisError if it holds no 3-D scalar image."""
    if node is None:
        raise FuseVisError(f"no {role} volume is selected; load or choose one first")
    if node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise FuseVisError(f"{node.GetName()!r} is a label map (a segmentation), not an image; choose the {role} image volume")
    image = node.GetImageData() if node.IsA("vtkMRMLVolumeNode") else None
    if image is None:
        raise FuseVisError(f"the {role} node {node.GetName()!r} holds no image data; load a volume into it")
    components = image.GetNumberOfScalarComponents()
    if components != 1 or node.IsA("vtkMRMLVectorVolumeNode"):
        raise FuseVisError(
            f"the {role} node {node.GetName()!r} has {components} values per voxel (a vector, colour or "
            "dynamic 4-D volume); choose a scalar 3-D volume, e.g. a single frame"
        )
    dimensions = image.GetDimensions()
    if 0 in dimensions or image.GetPointData().GetScalars() is None:
        raise FuseVisError(f"the {role} node {node.GetName()!r} is empty ({'x'.join(map(str, dimensions))} voxels); load a volume that has voxels")
    return Volume(np.array(arrayFromVolume(node), dtype=np.float32), ijk_to_ras(node))


def set_volume(node, array: np.ndarray, matrix: np.ndarray) -> None:
    """Replace the node's voxels and geometry (``array`` is copied)."""
    node.SetIJKToRASMatrix(vtkMatrixFromArray(np.asarray(matrix, dtype=np.float64)))
    updateVolumeFromArray(node, np.ascontiguousarray(array))


def add_volume_node(scene, class_name: str, name: str, array: np.ndarray, matrix: np.ndarray):
    """A new volume node in ``scene`` holding ``array`` with ``matrix`` as IJK-to-RAS, with display nodes."""
    node = scene.AddNewNodeByClass(class_name, name)
    set_volume(node, array, matrix)
    node.CreateDefaultDisplayNodes()
    return node


def node_array(node) -> np.ndarray:
    """The node's voxel array itself (no copy): write into it, then call :func:`array_modified`."""
    return arrayFromVolume(node)


def array_modified(node) -> None:
    """Tell the scene (and views) that the voxels returned by :func:`node_array` changed."""
    arrayFromVolumeModified(node)


def same_geometry(a: Volume, b_node) -> bool:
    """True if ``b_node`` has ``a``'s voxel grid (shape and IJK-to-RAS)."""
    image = b_node.GetImageData()
    if image is None:
        return False
    return tuple(reversed(image.GetDimensions())) == a.array.shape and np.allclose(ijk_to_ras(b_node), a.ijk_to_ras, atol=1e-6)
