"""Equation 4 against a hand computation of SSIM (Gaussian window 11, sigma 1.5, valid) and MSE."""
import numpy as np
import torch
from scipy.signal import correlate2d

from FuseVisLib.fusion_loss import LossWeights, partial_losses, total_loss


def _ssim_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    coords = np.arange(11) - 5
    gauss = np.exp(-(coords**2) / (2 * 1.5**2))
    window = np.outer(gauss, gauss) / gauss.sum() ** 2

    def filt(image):
        return correlate2d(image, window, mode="valid")

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = filt(x), filt(y)
    sigma_x = filt(x * x) - mu_x**2
    sigma_y = filt(y * y) - mu_y**2
    sigma_xy = filt(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sigma_x + sigma_y + c2))
    return float(ssim_map.mean())


def test_partial_and_total_losses_match_hand_computation(rng):
    mri, pet, fused = (rng.random((32, 40)) for _ in range(3))
    pet = 0.5 * pet + 0.5 * fused  # correlated, so SSIM is far from 0
    as_tensor = [torch.from_numpy(a)[None, None] for a in (fused, mri, pet)]
    partials = partial_losses(*as_tensor)
    expected = {
        "ssim_loss_mri": 1 - _ssim_by_hand(mri, fused),
        "ssim_loss_pet": 1 - _ssim_by_hand(pet, fused),
        "l2_loss_mri": float(np.mean((fused - mri) ** 2)),
        "l2_loss_pet": float(np.mean((fused - pet) ** 2)),
    }
    for key, value in expected.items():
        assert abs(float(partials[key]) - value) < 1e-6, key
    weights = LossWeights(gamma_ssim=0.47, gamma_l2=0.5)
    hand_total = 0.99 * (0.47 * expected["ssim_loss_mri"] + 0.53 * expected["ssim_loss_pet"]) + 0.01 * (
        0.5 * expected["l2_loss_mri"] + 0.5 * expected["l2_loss_pet"]
    )
    assert abs(float(total_loss(partials, weights)) - hand_total) < 1e-6
