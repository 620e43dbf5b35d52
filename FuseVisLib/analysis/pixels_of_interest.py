"""The principal pixels of the paper's case studies (section 5.3), found automatically.

The paper reads every method at two kinds of pixel inside the brain:

* ``dark PET, bright MRI``: the necrotic core of a glioma (no blood flow,
  hyperintense on T2 MRI);
* ``bright PET, dark MRI``: healthy, highly active tissue.

Rules, in this order:

1. The brain, per axial slice, comes from both inputs. The head is the MRI
   above ``HEAD_FRACTION`` of its 99th percentile, holes filled. Active brain
   is the PET (smoothed by ``PET_SMOOTHING_PX``) above ``BRAIN_PET_FRACTION``
   of its 99th percentile: cortex and deep grey matter, while skull and scalp
   take up little; closing and hole filling then add what the cortex
   encloses: white matter, ventricles and a dark necrotic core. The brain is
   their intersection, its largest connected part, eroded by
   ``BRAIN_MARGIN_PX`` so that the PET's blurred border is left out.
   Percentiles are those of all searched slices together, so slices beyond
   the head (noise only) hold no brain.
2. For volumes only slices whose brain covers at least ``MIN_BRAIN_SHARE``
   of the largest brain cross-section are searched: the central brain. The
   skull base holds much that is bright on T2 and dark on PET (eyes,
   cisterns, sinuses), and the top of the brain is small and mostly border.
3. ``bright`` MRI is at or above the ``BRIGHT_PERCENTILE`` of the smoothed
   MRI over the brain pixels searched, ``dark`` at or below the
   ``DARK_PERCENTILE``.
4. The dark-PET pixel is the minimum of the smoothed PET over bright-MRI
   brain pixels; the bright-PET pixel is the maximum over dark-MRI brain
   pixels *of the same slice*, so that both appear side by side as in the
   paper's figures. Smoothing puts the choice in the middle of a dark or
   bright region rather than on a noisy pixel.

Ventricles (CSF) are bright on T2 MRI and dark on PET as well; where they are
darker on PET than the lesion the rule picks them. Pass ``--pixel`` to choose.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from ..errors import FuseVisError

HEAD_FRACTION = 0.1
BRAIN_PET_FRACTION = 0.3
BRAIN_CLOSING_PX = 3
BRAIN_MARGIN_PX = 2
MIN_BRAIN_SHARE = 0.5
BRIGHT_PERCENTILE = 70.0
DARK_PERCENTILE = 30.0
MRI_SMOOTHING_PX = 1.0
PET_SMOOTHING_PX = 2.0

DARK_PET = "dark PET, bright MRI"
BRIGHT_PET = "bright PET, dark MRI"
REQUESTED = "requested"

RULE = {
    "brain": f"MRI > {HEAD_FRACTION} x its 99th percentile (holes filled), intersected with PET smoothed by "
    f"{PET_SMOOTHING_PX} px > {BRAIN_PET_FRACTION} x its 99th percentile (closed by {BRAIN_CLOSING_PX} px, holes filled); "
    f"largest component, eroded by {BRAIN_MARGIN_PX} px; percentiles over all searched slices; volumes: only slices "
    f"with at least {MIN_BRAIN_SHARE:.0%} of the largest brain section (the skull base is left out)",
    "bright_mri": f">= {BRIGHT_PERCENTILE:g}th percentile of the MRI (smoothed by {MRI_SMOOTHING_PX} px) inside the brain",
    "dark_mri": f"<= {DARK_PERCENTILE:g}th percentile of the MRI inside the brain",
    DARK_PET: "minimum of the smoothed PET over bright-MRI brain pixels",
    BRIGHT_PET: "maximum of the smoothed PET over dark-MRI brain pixels of the same slice",
}


@dataclass(frozen=True)
class PixelOfInterest:
    """A principal pixel: ``slice`` indexes the case's axial slices (0 for a 2-D image)."""

    row: int
    col: int
    slice: int
    label: str
    source: str  # "automatic" or "requested"

    def tag(self, volume: bool) -> str:
        """File-name fragment: ``r40_c52`` for an image, ``s20_r40_c52`` for a volume."""
        return f"s{self.slice}_r{self.row}_c{self.col}" if volume else f"r{self.row}_c{self.col}"

    def describe(self, volume: bool) -> str:
        place = f"slice {self.slice}, row {self.row}, col {self.col}" if volume else f"row {self.row}, col {self.col}"
        return f"{self.label} ({place})"


def brain_mask(mri: np.ndarray, pet: np.ndarray, references: tuple[float, float] | None = None) -> np.ndarray:
    """Bool mask of the brain in one axial slice pair (rule 1 of the module docstring).

    ``references``: the 99th percentiles of the MRI and of the smoothed PET
    that the thresholds are fractions of; by default the slice's own. For a
    volume pass the whole volume's, so that a slice above or below the head
    (noise only) yields no brain.
    """
    smooth_pet = ndimage.gaussian_filter(pet.astype(np.float32), PET_SMOOTHING_PX)
    mri_reference, pet_reference = references if references is not None else (_reference(mri), _reference(smooth_pet))
    head = mri > HEAD_FRACTION * mri_reference
    active = smooth_pet > BRAIN_PET_FRACTION * pet_reference
    closing = ndimage.generate_binary_structure(2, 1)
    active = ndimage.binary_closing(active, closing, iterations=BRAIN_CLOSING_PX, border_value=0)
    brain = ndimage.binary_fill_holes(head) & ndimage.binary_fill_holes(active)
    labels, count = ndimage.label(brain)
    if count == 0 or mri_reference <= 0 or pet_reference <= 0:
        return np.zeros(mri.shape, dtype=bool)
    sizes = ndimage.sum_labels(brain, labels, index=np.arange(1, count + 1))
    largest = labels == 1 + int(np.argmax(sizes))
    return ndimage.binary_erosion(largest, iterations=BRAIN_MARGIN_PX, border_value=0)


def _reference(image: np.ndarray) -> float:
    return float(np.percentile(image, 99))


def find_pixels_of_interest(mri: np.ndarray, pet: np.ndarray, slices: Sequence[int]) -> list[PixelOfInterest]:
    """The dark-PET/bright-MRI and bright-PET/dark-MRI pixels among ``slices`` of two (S, H, W) stacks in [0, 1].

    Raises FuseVisError when no brain is found (then the pixels must be given).
    """
    if mri.shape != pet.shape or mri.ndim != 3:
        raise FuseVisError(f"MRI {mri.shape} and PET {pet.shape} must be two stacks of slices of one shape")
    slices = list(slices)
    smooth_mri = np.stack([ndimage.gaussian_filter(mri[s].astype(np.float32), MRI_SMOOTHING_PX) for s in slices])
    smooth_pet = np.stack([ndimage.gaussian_filter(pet[s].astype(np.float32), PET_SMOOTHING_PX) for s in slices])
    references = (_reference(mri[slices]), _reference(smooth_pet))
    masks = np.stack([brain_mask(mri[s], pet[s], references) for s in slices])
    areas = masks.reshape(len(slices), -1).sum(axis=1)
    if areas.max(initial=0) == 0:
        raise FuseVisError(
            "no brain found in the searched slices (MRI and PET barely overlap, or the PET is blank there); "
            "choose the principal pixels with --pixel ROW,COL[,SLICE]"
        )
    masks[areas < MIN_BRAIN_SHARE * areas.max()] = False
    bright_level, dark_level = np.percentile(smooth_mri[masks], [BRIGHT_PERCENTILE, DARK_PERCENTILE])
    bright_mri = masks & (smooth_mri >= bright_level)
    index = int(np.argmin(np.where(bright_mri, smooth_pet, np.inf)))
    first, row, col = np.unravel_index(index, smooth_pet.shape)
    dark_mri = masks[first] & (smooth_mri[first] <= dark_level)
    if not dark_mri.any():
        raise FuseVisError(
            f"slice {slices[first]} has no dark-MRI brain pixel to compare with; choose the principal pixels with --pixel"
        )
    second_row, second_col = np.unravel_index(int(np.argmax(np.where(dark_mri, smooth_pet[first], -np.inf))), dark_mri.shape)
    chosen = slices[first]
    return [
        PixelOfInterest(int(row), int(col), chosen, DARK_PET, "automatic"),
        PixelOfInterest(int(second_row), int(second_col), chosen, BRIGHT_PET, "automatic"),
    ]
