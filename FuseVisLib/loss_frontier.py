"""How low equation 4's partial losses can go on a set of pairs, whatever the network.

The fused image itself is optimised, pixel by pixel (Adam, kept in [0, 1]),
for a given gamma_ssim, starting from the plain average. No network can beat
the image that minimises its own loss, so the partial losses reached here
bound what any fusion network can reach on these pairs with that gamma; a
sweep over gamma traces the trade-off between the two modalities' SSIM
losses. This is how we checked whether the paper's Table 1 values are
reachable on a data set (see the README).
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from .device import pick_device
from .errors import FuseVisError
from .fusion_loss import LossWeights, partial_losses, total_loss
from .pair_folder import SlicePair


def optimal_fused_images(
    mri: torch.Tensor, pet: torch.Tensor, weights: LossWeights, steps: int = 300, learning_rate: float = 0.01
) -> torch.Tensor:
    """[B,1,H,W] fused images minimising equation 4 (with ``weights``) against ``mri`` and ``pet``."""
    fused = ((mri + pet) / 2).clone().requires_grad_()
    optimiser = torch.optim.Adam([fused], lr=learning_rate)
    for _ in range(steps):
        optimiser.zero_grad(set_to_none=True)
        total_loss(partial_losses(fused, mri, pet), weights).backward()
        optimiser.step()
        with torch.no_grad():
            fused.clamp_(0, 1)
    return fused.detach()


def loss_frontier(
    pairs: list[SlicePair], gammas: list[float], steps: int = 300, device: str | None = None
) -> list[dict[str, float]]:
    """For each gamma_ssim: the partial losses of the optimal fused images, averaged over ``pairs``."""
    if not pairs:
        raise FuseVisError("no pairs to optimise; pass a folder with MRI/ and PET/ images of matching names")
    shapes = {pair.mri.shape for pair in pairs}
    if len(shapes) > 1:
        raise FuseVisError(f"the pairs have different sizes {sorted(shapes)}; choose pairs of one size with --series")
    chosen = pick_device(device)
    mri = torch.from_numpy(np.stack([pair.mri for pair in pairs])[:, None]).to(chosen)
    pet = torch.from_numpy(np.stack([pair.pet for pair in pairs])[:, None]).to(chosen)
    points = []
    for gamma in tqdm(gammas, desc="loss frontier", leave=False):
        if not 0 <= gamma <= 1:
            raise FuseVisError(f"gamma_ssim {gamma} is outside [0, 1]; it weights the MRI SSIM term against the PET one")
        fused = optimal_fused_images(mri, pet, LossWeights(gamma_ssim=gamma), steps)
        with torch.no_grad():
            losses = {key: float(value) for key, value in partial_losses(fused, mri, pet).items()}
        points.append({"gamma_ssim": gamma, **losses, "ssim_loss_sum": losses["ssim_loss_mri"] + losses["ssim_loss_pet"]})
    return points
