"""A scalar volume in memory: voxels as Slicer holds them plus their place in RAS space.

Two world conventions meet here. Slicer and NIfTI use RAS (+x towards the
patient's Right, +y Anterior, +z Superior); ITK, SimpleITK and DICOM use
LPS (+x Left, +y Posterior, +z Superior). They differ by flipping x and y,
so a point converts with ``diag(-1, -1, 1)`` and a 4x4 matrix ``M`` with
``F @ M @ F`` where ``F = diag(-1, -1, 1, 1)``. A :class:`Volume` stores
its geometry in RAS only; conversion to and from SimpleITK happens in
:meth:`Volume.to_sitk` and :meth:`Volume.from_sitk` and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

# Flips x and y: RAS <-> LPS (its own inverse).
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Volume:
    """Voxels as ``array[k, j, i]`` (float32, like Slicer's ``arrayFromVolume``).

    ``ijk_to_ras`` is the 4x4 matrix taking a voxel index ``(i, j, k, 1)`` to
    its centre in RAS millimetres (Slicer's ``GetIJKToRASMatrix``, NIfTI's
    affine). Its first three columns are the axis directions scaled by the
    spacing; the last column is the RAS position of voxel ``(0, 0, 0)``.
    """

    array: np.ndarray
    ijk_to_ras: np.ndarray

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array, dtype=np.float32)
        self.ijk_to_ras = np.asarray(self.ijk_to_ras, dtype=np.float64).reshape(4, 4)

    @classmethod
    def from_geometry(
        cls,
        array: np.ndarray,
        spacing: tuple[float, float, float],
        origin_ras: tuple[float, float, float],
        direction_ras: np.ndarray | None = None,
    ) -> "Volume":
        """Volume from spacing (i, j, k), the RAS centre of voxel 0 and unit axis directions (columns)."""
        direction = np.eye(3) if direction_ras is None else np.asarray(direction_ras, dtype=np.float64)
        matrix = np.eye(4)
        matrix[:3, :3] = direction * np.asarray(spacing, dtype=np.float64)[None, :]
        matrix[:3, 3] = origin_ras
        return cls(array, matrix)

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        k, j, i = self.array.shape
        return i, j, k

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along i, j, k in mm."""
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    @property
    def origin_ras(self) -> np.ndarray:
        return self.ijk_to_ras[:3, 3].copy()

    @property
    def direction_ras(self) -> np.ndarray:
        """Unit direction of the i, j, k axes in RAS, as columns."""
        return self.ijk_to_ras[:3, :3] / self.spacing[None, :]

    def ras_of_ijk(self, ijk: np.ndarray) -> np.ndarray:
        """RAS mm of voxel indices ``(..., 3)`` in (i, j, k) order."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.ijk_to_ras[:3, :3].T + self.ijk_to_ras[:3, 3]

    def centre_ras(self) -> np.ndarray:
        """RAS mm of the middle of the voxel grid."""
        return self.ras_of_ijk((np.asarray(self.shape_ijk, dtype=np.float64) - 1.0) / 2.0)

    def with_array(self, array: np.ndarray) -> "Volume":
        """The same geometry holding other voxels of the same shape."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} differs from the volume's {self.array.shape}")
        return Volume(array, self.ijk_to_ras.copy())

    def to_sitk(self) -> sitk.Image:
        """SimpleITK image (LPS geometry) with the same voxels."""
        image = sitk.GetImageFromArray(np.ascontiguousarray(self.array, dtype=np.float32))
        ijk_to_lps = RAS_FROM_LPS @ self.ijk_to_ras
        spacing = self.spacing
        image.SetSpacing([float(s) for s in spacing])
        image.SetOrigin([float(v) for v in ijk_to_lps[:3, 3]])
        image.SetDirection([float(v) for v in (ijk_to_lps[:3, :3] / spacing[None, :]).ravel()])
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image) -> "Volume":
        """Volume from a 3-D scalar SimpleITK image, converting its LPS geometry to RAS."""
        array = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
        ijk_to_lps = np.eye(4)
        direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
        ijk_to_lps[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)[None, :]
        ijk_to_lps[:3, 3] = image.GetOrigin()
        return cls(array, RAS_FROM_LPS @ ijk_to_lps)
