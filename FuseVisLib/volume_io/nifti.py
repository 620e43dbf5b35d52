"""Single-file volumes (NIfTI .nii/.nii.gz; also NRRD and MetaImage) through SimpleITK.

SimpleITK reads NIfTI the way Slicer does (ITK's reader, the sform/qform
choice included), so a file lands on the same RAS geometry in both.
"""
from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from ..errors import FuseVisError
from .checks import check_image_layout
from .volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def read_image_file(path: Path) -> Volume:
    """Volume of a single image file; clear errors for unreadable, 2-D, 4-D, vector or empty images."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise FuseVisError(
            f"{path} is not a readable volume file; give a NIfTI file (.nii or .nii.gz) or a folder holding a DICOM series"
        ) from None
    size = tuple(int(n) for n in reader.GetSize())
    check_image_layout(reader.GetDimension(), size, reader.GetNumberOfComponents(), str(path))
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise FuseVisError(f"{path} could not be read ({_first_line(error)}); the file may be truncated: export it again") from None
    if image.GetDimension() == 4:
        # A 4-D file with a single frame is an ordinary volume.
        image = sitk.Extract(image, [*size[:3], 0], [0, 0, 0, 0])
    return Volume.from_sitk(image)


def write_nifti(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` as float32 NIfTI (qform and sform hold its geometry); returns the path."""
    path = Path(path)
    if not path.name.endswith(NIFTI_SUFFIXES):
        raise FuseVisError(f"{path} must end in .nii or .nii.gz to be written as NIfTI")
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(volume.to_sitk(), str(path), useCompression=path.name.endswith(".gz"))
    return path


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
