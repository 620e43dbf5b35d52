"""Loading MRI and PET from NIfTI files or DICOM series folders into scalar volume nodes.

Every file is first read and checked with ``FuseVisLib.volume_io.read_volume``,
so a 4-D (dynamic) image, an empty or blank volume, NaNs, an unreadable file
or a DICOM series with a missing slice is refused with a clear FuseVisError
*before* the scene changes. Inside the Slicer application a NIfTI file is
then loaded by Slicer's own loader (it keeps the file as the node's storage);
elsewhere, and for DICOM folders (which Slicer would route through its DICOM
database), the checked voxels and their RAS geometry go into a new node.
Both give the same voxels and IJK-to-RAS matrix, since SimpleITK and Slicer
use the same ITK readers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from FuseVisLib.errors import FuseVisError
from FuseVisLib.volume_io import Volume

from .volume_nodes import add_volume_node, ijk_to_ras


def running_in_slicer_app() -> bool:
    """True inside the Slicer desktop application (which has ``slicer.app``), False with the PyPI package."""
    import slicer

    return getattr(slicer, "app", None) is not None


def load_volume_checked(scene, path: str | Path, volume: Volume, name: str | None = None):
    """A new scalar volume node for ``path``, whose content ``read_volume`` already returned as ``volume``."""
    path = Path(path)
    name = name or _default_name(path)
    if running_in_slicer_app() and path.is_file():
        return _load_with_slicer(scene, path, name, volume)
    return add_volume_node(scene, "vtkMRMLScalarVolumeNode", scene.GenerateUniqueName(name), volume.array, volume.ijk_to_ras)


def _load_with_slicer(scene, path: Path, name: str, checked: Volume):
    import slicer

    if scene is not slicer.mrmlScene:
        raise FuseVisError("inside Slicer, volumes are loaded into the application's scene (slicer.mrmlScene)")
    node = slicer.util.loadVolume(str(path), {"name": name, "show": False})
    if node.GetImageData().GetDimensions() != tuple(reversed(checked.array.shape)) or not np.allclose(
        ijk_to_ras(node), checked.ijk_to_ras, atol=1e-4
    ):
        scene.RemoveNode(node)
        raise FuseVisError(f"Slicer read {path} with another geometry than FuseVis' check did; convert it to NIfTI with one volume and try again")
    return node


def _default_name(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
