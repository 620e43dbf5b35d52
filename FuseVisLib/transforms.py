"""Linear transforms as 4x4 RAS matrices, and their ITK (LPS) counterparts.

FuseVis states every linear transform as a 4x4 matrix in RAS millimetres
that **maps points from the fixed (MRI) space to the moving (PET) space**:
``pet_point = M @ mri_point``. That is ITK's resampling convention (a
registration's result, and what a ``.tfm`` file holds), so the PET value
seen at an MRI point ``x`` is ``PET(M x)``. ITK works in LPS, so its
matrix is ``F @ M @ F`` with ``F = diag(-1, -1, 1, 1)``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import FuseVisError
from .volume_io.volume import RAS_FROM_LPS

DIRECTION = "maps points from MRI (fixed) RAS to PET (moving) RAS, in mm: pet_point = matrix @ mri_point"


def sitk_from_ras_matrix(matrix: np.ndarray) -> sitk.AffineTransform:
    """ITK affine transform (LPS) equal to the RAS ``matrix``."""
    lps = RAS_FROM_LPS @ np.asarray(matrix, dtype=np.float64) @ RAS_FROM_LPS
    transform = sitk.AffineTransform(3)
    transform.SetMatrix([float(v) for v in lps[:3, :3].ravel()])
    transform.SetTranslation([float(v) for v in lps[:3, 3]])
    return transform


def ras_matrix_from_sitk(transform: sitk.Transform) -> np.ndarray:
    """4x4 RAS matrix of any linear ITK transform (composites included), found by mapping the LPS basis."""
    origin = np.asarray(transform.TransformPoint((0.0, 0.0, 0.0)))
    lps = np.eye(4)
    for axis in range(3):
        unit = [0.0, 0.0, 0.0]
        unit[axis] = 1.0
        lps[:3, axis] = np.asarray(transform.TransformPoint(unit)) - origin
    lps[:3, 3] = origin
    return RAS_FROM_LPS @ lps @ RAS_FROM_LPS


def rotation_part(matrix: np.ndarray) -> np.ndarray:
    """The rotation nearest the 3x3 linear part (polar decomposition), so affine scaling and shear drop out."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, dtype=np.float64)[:3, :3])
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:
        raise FuseVisError("the transform mirrors space (negative determinant); a registration never should")
    return rotation


def rotation_angle_deg(matrix: np.ndarray) -> float:
    """Angle in degrees of the rotation part, about whatever axis."""
    cosine = (np.trace(rotation_part(matrix)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def rotation_axis(matrix: np.ndarray) -> list[float]:
    """Unit axis of the rotation part (right-hand rule, RAS); [0, 0, 0] for no rotation."""
    rotation = rotation_part(matrix)
    axis = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    norm = np.linalg.norm(axis)
    return [0.0, 0.0, 0.0] if norm < 1e-12 else [float(v) for v in axis / norm]


def describe(matrix: np.ndarray) -> dict:
    """JSON-ready summary: matrix, its direction in words, rotation angle and axis, translation."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return {
        "matrix": [[float(v) for v in row] for row in matrix],
        "direction": DIRECTION,
        "space": "RAS, millimetres",
        "rotation_deg": round(rotation_angle_deg(matrix), 4),
        "rotation_axis": [round(v, 6) for v in rotation_axis(matrix)],
        "translation_mm": [round(float(v), 4) for v in matrix[:3, 3]],
    }


def write_transform_file(matrix: np.ndarray, path: str | Path) -> Path:
    """Write the RAS ``matrix`` as an ITK transform file (.tfm/.txt/.h5) that Slicer and ITK load."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteTransform(sitk_from_ras_matrix(matrix), str(path))
    return path


def read_transform_file(path: str | Path) -> np.ndarray:
    """RAS matrix of a linear ITK transform file; FuseVisError when it is missing or not linear."""
    path = Path(path)
    if not path.is_file():
        raise FuseVisError(f"transform file {path} does not exist")
    try:
        transform = sitk.ReadTransform(str(path))
    except RuntimeError:
        raise FuseVisError(f"{path} is not a readable ITK transform file (.tfm, .txt or .h5)") from None
    if not transform.IsLinear():
        raise FuseVisError(f"{path} holds a non-linear transform; FuseVis needs a linear (rigid or affine) one")
    return ras_matrix_from_sitk(transform)
