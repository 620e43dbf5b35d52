"""Weighted averaging (radius 0): guidance is its closed-form derivative; Jacobians vanish off the principal pixel."""
from __future__ import annotations

import numpy as np

from FuseVisLib.registry import load_method
from FuseVisLib.saliency import guidance_images, jacobian_images


def _closed_form(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x1, x2 = x1.astype(np.float64), x2.astype(np.float64)
    total = x1 + x2
    safe = np.where(total == 0, 1.0, total)
    d_mri = np.where(total == 0, 0.5, (x1**2 + 2 * x1 * x2 - x2**2) / safe**2)
    d_pet = np.where(total == 0, 0.5, (x2**2 + 2 * x1 * x2 - x1**2) / safe**2)
    return d_mri, d_pet


def _images(rng):
    mri = rng.random((20, 23), dtype=np.float32)
    pet = rng.random((20, 23), dtype=np.float32)
    mri[:4, :5] = 0  # background in both: the 0.5/0.5 convention
    pet[:4, :5] = 0
    pet[10, :] = 0  # one input zero: derivative 1 for the other
    return mri, pet


def test_guidance_is_the_closed_form_derivative(rng):
    mri, pet = _images(rng)
    guidance = guidance_images(load_method("WeightedAveraging", "cpu"), mri, pet)
    assert guidance.radius == 0
    expected = _closed_form(mri, pet)
    np.testing.assert_allclose(guidance.mri, expected[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(guidance.pet, expected[1], rtol=0, atol=1e-6)
    assert guidance.mri[0, 0] == 0.5 and guidance.mri[10, 3] == 1.0


def test_jacobian_is_zero_off_the_principal_pixel(rng):
    mri, pet = _images(rng)
    model = load_method("WeightedAveraging", "cpu")
    expected = _closed_form(mri, pet)
    for row, col in [(0, 0), (19, 22), (7, 11), (10, 3)]:
        jacobians = jacobian_images(model, mri, pet, row, col)
        for image, derivative in zip(jacobians, expected):
            off = image.copy()
            off[row, col] = 0
            assert not off.any()
            assert abs(image[row, col] - derivative[row, col]) <= 1e-6
