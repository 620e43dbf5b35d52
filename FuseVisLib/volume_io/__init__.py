"""Reading and writing MRI/PET volumes (NIfTI files, DICOM series folders) with RAS geometry.

``read_volume(path)`` is the one entry point: a folder is read as a DICOM
series, a .nii/.nii.gz file as NIfTI. Every volume it returns has passed
:func:`check_volume`.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import FuseVisError
from .checks import check_volume
from .dicom import is_dicom_file, read_dicom_series, write_dicom_series
from .nifti import is_nifti_path, read_nifti, write_nifti
from .volume import RAS_FROM_LPS, Volume

__all__ = ["RAS_FROM_LPS", "Volume", "check_volume", "read_volume", "write_dicom_series", "write_nifti"]


def read_volume(path: str | Path, series_id: str | None = None) -> Volume:
    """Volume at ``path``: a NIfTI file (.nii/.nii.gz) or a folder holding one DICOM series.

    ``series_id`` picks a series when the folder holds several. A 2-D NIfTI
    file is a volume of one slice, as Slicer loads it. Raises FuseVisError
    for a missing path, an unreadable file, a 4-D (dynamic) image, an empty
    or blank volume, NaNs, and DICOM series with a missing slice.
    """
    path = Path(path)
    if not path.exists():
        raise FuseVisError(f"{path} does not exist; give a NIfTI file or a DICOM series folder")
    if path.is_dir():
        volume = read_dicom_series(path, series_id)
    elif is_nifti_path(path):
        volume = read_nifti(path)
    elif is_dicom_file(path):
        raise FuseVisError(f"{path} is a single DICOM file; give the folder that holds the whole series")
    else:
        raise FuseVisError(f"{path} is neither a NIfTI file (.nii, .nii.gz) nor a folder holding a DICOM series; convert it to NIfTI")
    return check_volume(volume, str(path))
