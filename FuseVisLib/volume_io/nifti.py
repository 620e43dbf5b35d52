"""NIfTI files (.nii, .nii.gz) through nibabel.

nibabel rather than SimpleITK: ITK's NIfTI reader silently turns NaN
voxels into 0, hiding broken input that FuseVis must report. NIfTI's world
space is RAS already, and the affine nibabel returns (sform if set, else
qform) is the voxel-to-RAS matrix as is.
"""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from ..errors import FuseVisError
from .checks import check_image_layout
from .volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_path(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def read_nifti(path: Path) -> Volume:
    """Volume of a NIfTI file; clear errors for unreadable, 4-D, vector, complex or empty images.

    A 2-D file is a volume of one slice, as Slicer loads it.
    """
    try:
        image = nib.load(str(path))
    except (ImageFileError, OSError, EOFError, ValueError) as error:
        raise FuseVisError(f"{path} is not a readable NIfTI file ({_first_line(error)}); export it again, or give a DICOM series folder") from None
    dtype = image.get_data_dtype()
    components = len(dtype.names) if dtype.names else 1
    size = tuple(int(n) for n in image.shape)
    if len(size) == 2:
        size += (1,)
    check_image_layout(len(size), size, components, str(path))
    if np.issubdtype(dtype, np.complexfloating):
        raise FuseVisError(
            f"{path} holds complex voxels ({dtype}); export the magnitude image (e.g. numpy.abs) as real values"
        )
    try:
        data = np.asarray(image.dataobj, dtype=np.float32)
    except (OSError, EOFError, ValueError) as error:
        raise FuseVisError(f"{path} could not be read ({_first_line(error)}); the file may be truncated: export it again") from None
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim == 4:
        # A 4-D file with a single frame is an ordinary volume.
        data = data[..., 0]
    # nibabel indexes [i, j, k]; Slicer and FuseVis hold [k, j, i].
    return Volume(np.ascontiguousarray(data.transpose(2, 1, 0)), image.affine)


def write_nifti(volume: Volume, path: str | Path, description: str | None = None) -> Path:
    """Write ``volume`` as float32 NIfTI-1 (sform and qform both hold its geometry, units mm); returns the path.
    ``description`` goes into the header's ``descrip`` field (79 characters at most)."""
    path = Path(path)
    if not is_nifti_path(path):
        raise FuseVisError(f"{path} must end in .nii or .nii.gz to be written as NIfTI")
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.ascontiguousarray(volume.array.transpose(2, 1, 0)), volume.ijk_to_ras)
    image.set_sform(volume.ijk_to_ras, code="scanner")
    image.set_qform(volume.ijk_to_ras, code="scanner")
    image.header.set_xyzt_units("mm", "sec")
    if description is not None:
        image.header["descrip"] = description[:79].encode("ascii", "replace")
    nib.save(image, str(path))
    return path


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
