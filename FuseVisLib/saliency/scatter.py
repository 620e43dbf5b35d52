"""Scatterplot data: guidance MRI against guidance PET per pixel, with a chosen pixel's neighbourhood (paper 3.2.4)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FuseVisError
from .inputs import check_pixel

DEFAULT_NEIGHBOURHOOD = 10  # half-width in pixels of the square around the principal pixel


@dataclass(frozen=True)
class ScatterData:
    mri: np.ndarray  # guidance MRI per pixel (x axis), flattened row-major
    pet: np.ndarray  # guidance PET per pixel (y axis)
    neighbourhood: np.ndarray  # bool per pixel: inside the square around the principal pixel
    pixel: tuple[int, int] | None
    half_width: int
    shape: tuple[int, int]  # of the guidance images


def neighbourhood_mask(shape: tuple[int, int], row: int, col: int, half_width: int = DEFAULT_NEIGHBOURHOOD) -> np.ndarray:
    """HxW bool mask of the (2k+1)x(2k+1) square around (row, col), clipped at the image border."""
    height, width = shape
    row, col = check_pixel(row, col, height, width)
    if isinstance(half_width, bool) or not isinstance(half_width, (int, np.integer)) or half_width < 0:
        raise FuseVisError(f"neighbourhood half-width must be a non-negative integer (pixels), got {half_width!r}")
    mask = np.zeros(shape, dtype=bool)
    mask[max(0, row - half_width) : row + half_width + 1, max(0, col - half_width) : col + half_width + 1] = True
    return mask


def scatter_data(
    guidance_mri: np.ndarray, guidance_pet: np.ndarray, pixel: tuple[int, int] | None = None, half_width: int = DEFAULT_NEIGHBOURHOOD
) -> ScatterData:
    """Points (guidance MRI, guidance PET) of every pixel, and which lie near ``pixel`` (none if no pixel)."""
    guidance_mri, guidance_pet = np.asarray(guidance_mri), np.asarray(guidance_pet)
    if guidance_mri.ndim != 2 or guidance_mri.shape != guidance_pet.shape:
        raise FuseVisError(
            f"guidance images must be two 2-D arrays of one shape, got {guidance_mri.shape} and {guidance_pet.shape}; "
            "pass the pair returned by guidance_images"
        )
    if pixel is None:
        mask = np.zeros(guidance_mri.shape, dtype=bool)
    else:
        mask = neighbourhood_mask(guidance_mri.shape, pixel[0], pixel[1], half_width)
        pixel = (int(pixel[0]), int(pixel[1]))
    return ScatterData(guidance_mri.ravel(), guidance_pet.ravel(), mask.ravel(), pixel, half_width, guidance_mri.shape)
