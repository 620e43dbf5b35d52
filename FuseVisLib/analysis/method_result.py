"""What one method produced for one case: fused slices, guidance of the analysed slab, Jacobians per pixel."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..saliency import SaliencyImages
from .pixels_of_interest import PixelOfInterest


@dataclass
class MethodResult:
    """``fused``: every slice of the case; ``guidance_mri``/``guidance_pet``: the slab's slices, the first being
    slice ``slab_start``; ``jacobians``: per principal pixel."""

    name: str
    fused: np.ndarray
    slab_start: int
    guidance_mri: np.ndarray
    guidance_pet: np.ndarray
    jacobians: dict[PixelOfInterest, SaliencyImages] = field(default_factory=dict)
    saliency_path: dict = field(default_factory=dict)

    def guidance(self, slice_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Guidance MRI and PET images of one analysed slice."""
        index = slice_index - self.slab_start
        return self.guidance_mri[index], self.guidance_pet[index]
