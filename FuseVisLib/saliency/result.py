"""What the saliency functions return: a pair of images that also says how it was computed."""
from __future__ import annotations

import numpy as np


class SaliencyImages(tuple):
    """``(mri_image, pet_image)`` as HxW float32 arrays; unpacks like a 2-tuple.

    ``path`` names the computation taken ("cone", "lattice", "crop",
    "whole-image", "per-pixel"), ``reason`` says why that one, and
    ``radius`` is the receptive radius it relied on (None: none).
    """

    path: str
    reason: str
    radius: int | None

    def __new__(cls, mri: np.ndarray, pet: np.ndarray, path: str, reason: str, radius: int | None) -> "SaliencyImages":
        pair = super().__new__(cls, (mri, pet))
        pair.path = path
        pair.reason = reason
        pair.radius = radius
        return pair

    @property
    def mri(self) -> np.ndarray:
        return self[0]

    @property
    def pet(self) -> np.ndarray:
        return self[1]
