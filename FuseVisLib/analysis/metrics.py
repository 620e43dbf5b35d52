"""The numbers of the report: fusion quality per method, and what the paper reads off Jacobian images by eye.

Per method: the four partial losses of equation 4 (SSIM loss and mean
squared error with each input) and SSIM of the fused image with each input
(1 - SSIM loss), over the analysed slices.

Per method and principal pixel p, with N the (2k+1)^2 square around p
(k = the neighbourhood half-width, the zoomed region of the figures):

* ``value``: the Jacobian at p itself, dy_p/dx_p, per modality;
* ``neighbourhood_share``: sum over N of |J| / sum over the image of |J|,
  how much of the pixel's sensitivity lies within the zoomed region;
* ``pixel_share``: |J(p)| / sum of |J|, how much lies at p itself (1 for a
  per-pixel method such as weighted averaging);
* ``pet_share``: PET's part of the absolute Jacobian mass within N of both
  modalities together; ``dominant`` is "PET" when that is at least
  ``DOMINANCE_SHARE``, "MRI" when at most 1 - ``DOMINANCE_SHARE``, else
  "balanced" ("none" when the fused pixel depends on neither input).
"""
from __future__ import annotations

import numpy as np
import torch

from ..fusion_loss import partial_losses
from ..saliency.scatter import neighbourhood_mask

DOMINANCE_SHARE = 0.6


def fusion_quality(fused: np.ndarray, mri: np.ndarray, pet: np.ndarray) -> dict:
    """Partial losses and SSIM with each input of (slices, rows, cols) stacks, averaged over the slices."""
    tensors = [torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))[:, None] for stack in (fused, mri, pet)]
    with torch.no_grad():
        losses = {name: float(value) for name, value in partial_losses(*tensors).items()}
    return {
        "partial_losses": losses,
        "ssim": {"mri": 1.0 - losses["ssim_loss_mri"], "pet": 1.0 - losses["ssim_loss_pet"]},
    }


def jacobian_readout(jacobian_mri: np.ndarray, jacobian_pet: np.ndarray, row: int, col: int, half_width: int) -> dict:
    """The per-pixel measures of the module docstring for one pixel's two Jacobian images."""
    near = neighbourhood_mask(jacobian_mri.shape, row, col, half_width)
    readout: dict = {"value": {}, "neighbourhood_share": {}, "pixel_share": {}}
    mass_near = {}
    for modality, image in (("mri", jacobian_mri), ("pet", jacobian_pet)):
        magnitude = np.abs(np.asarray(image, dtype=np.float64))
        total = float(magnitude.sum())
        mass_near[modality] = float(magnitude[near].sum())
        readout["value"][modality] = float(image[row, col])
        readout["neighbourhood_share"][modality] = mass_near[modality] / total if total > 0 else None
        readout["pixel_share"][modality] = float(magnitude[row, col]) / total if total > 0 else None
    both = mass_near["mri"] + mass_near["pet"]
    pet_share = mass_near["pet"] / both if both > 0 else None
    readout["pet_share"] = pet_share
    readout["dominant"] = dominant_modality(pet_share)
    return readout


def dominant_modality(pet_share: float | None) -> str:
    if pet_share is None:
        return "none"
    if pet_share >= DOMINANCE_SHARE:
        return "PET"
    if pet_share <= 1.0 - DOMINANCE_SHARE:
        return "MRI"
    return "balanced"
