"""Reading and writing MRI/PET volumes (NIfTI files, DICOM series folders) with RAS geometry.

``read_volume(path)`` is the one entry point: a folder is read as a DICOM
series, a file as NIfTI (or another single-file format SimpleITK knows).
Every volume it returns has passed :func:`check_volume`.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import FuseVisError
from .checks import check_volume
from .dicom import read_dicom_series, write_dicom_series
from .nifti import read_image_file, write_nifti
from .volume import RAS_FROM_LPS, Volume

__all__ = ["RAS_FROM_LPS", "Volume", "check_volume", "read_volume", "write_dicom_series", "write_nifti"]


def read_volume(path: str | Path, series_id: str | None = None) -> Volume:
    """Volume at ``path``: a NIfTI file (.nii/.nii.gz) or a folder holding one DICOM series.

    ``series_id`` picks a series when the folder holds several. Raises
    FuseVisError for a missing path, an unreadable file, a 2-D or 4-D
    (dynamic) image, an empty or blank volume, NaNs, and DICOM series with a
    missing slice.
    """
    path = Path(path)
    if not path.exists():
        raise FuseVisError(f"{path} does not exist; give a NIfTI file or a DICOM series folder")
    volume = read_dicom_series(path, series_id) if path.is_dir() else read_image_file(path)
    return check_volume(volume, str(path))
