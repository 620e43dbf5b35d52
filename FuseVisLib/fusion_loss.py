"""The training objective of the paper, equation 4, and its partial losses."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from pytorch_msssim import ssim

# Paper section 4.6: lambda = 0.99 for every network.
LAMBDA = 0.99


@dataclass(frozen=True)
class LossWeights:
    """gamma_ssim and gamma_l2 of equation 4 (paper Table 1)."""

    gamma_ssim: float = 0.5
    gamma_l2: float = 0.5
    lam: float = LAMBDA


def partial_losses(fused: torch.Tensor, mri: torch.Tensor, pet: torch.Tensor) -> dict[str, torch.Tensor]:
    """The four partial losses of Table 1, each averaged over the batch.

    SSIM is pytorch-msssim's with the authors' settings (Gaussian window 11,
    sigma 1.5, K = (0.01, 0.03), data range 1, valid convolution); the l2
    terms are plain mean squared errors, as in the authors' code.
    """
    return {
        "ssim_loss_mri": 1 - ssim(fused, mri, data_range=1.0, size_average=True),
        "ssim_loss_pet": 1 - ssim(fused, pet, data_range=1.0, size_average=True),
        "l2_loss_mri": torch.mean((fused - mri) ** 2),
        "l2_loss_pet": torch.mean((fused - pet) ** 2),
    }


def total_loss(partials: dict[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    loss_ssim = weights.gamma_ssim * partials["ssim_loss_mri"] + (1 - weights.gamma_ssim) * partials["ssim_loss_pet"]
    loss_l2 = weights.gamma_l2 * partials["l2_loss_mri"] + (1 - weights.gamma_l2) * partials["l2_loss_pet"]
    return weights.lam * loss_ssim + (1 - weights.lam) * loss_l2
