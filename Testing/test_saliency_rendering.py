"""Gamma correction keeps signs, guidance RGB channels, scatterplot data and the PNG renders."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from FuseVisLib.errors import FuseVisError
from FuseVisLib.saliency import (
    gamma_correct,
    guidance_rgb,
    neighbourhood_mask,
    render_neighbourhood_view,
    render_scatter,
    scatter_data,
    signed_rgb,
)


def test_gamma_correction_keeps_the_sign_of_negative_gradients():
    image = np.array([[-0.04, 0.01], [0.0, 0.16]])
    corrected = gamma_correct(image, 0.5)
    np.testing.assert_allclose(corrected, [[-0.5, 0.25], [0.0, 1.0]])
    np.testing.assert_allclose(gamma_correct(image, 2.0), [[-1 / 16, 1 / 256], [0.0, 1.0]])
    np.testing.assert_allclose(gamma_correct(image, 1.0), image / 0.16)
    assert not gamma_correct(np.zeros((2, 2)), 0.3).any()


@pytest.mark.parametrize("gamma", [0.05, 2.5, float("nan"), "1"])
def test_gamma_outside_the_papers_range_is_refused(gamma):
    with pytest.raises(FuseVisError, match=r"gamma must be a number between 0.1 and 2.0"):
        gamma_correct(np.ones((2, 2)), gamma)


def test_guidance_rgb_channels():
    g_mri = np.array([[1.0, 3.0], [2.0, 5.0]])
    g_pet = np.array([[-1.0, 0.0], [1.0, -1.0]])
    fused = np.array([[0.2, 1.4], [-0.1, 0.5]])
    rgb = guidance_rgb(g_mri, g_pet, fused)
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_allclose(rgb[..., 0], [[0.0, 0.5], [0.25, 1.0]])
    np.testing.assert_allclose(rgb[..., 1], [[0.0, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(rgb[..., 2], [[0.2, 1.0], [0.0, 0.5]])
    np.testing.assert_allclose(guidance_rgb(g_mri, g_pet, fused, gamma=0.5)[..., 0], np.sqrt(rgb[..., 0]))


def test_signed_render_shows_negative_values_in_blue():
    rgb = signed_rgb(np.array([[-2.0, 0.0, 1.0]]), 1.0)
    assert rgb[0, 0, 2] == pytest.approx(1.0) and rgb[0, 0, 0] == 0  # negative: blue, full brightness
    assert not rgb[0, 1].any()
    assert rgb[0, 2, 0] == pytest.approx(0.5) and rgb[0, 2, 2] == 0  # positive: orange, half brightness


def test_neighbourhood_mask_is_clipped_at_the_border():
    mask = neighbourhood_mask((10, 12), 1, 11, 2)
    assert mask.sum() == 4 * 3  # rows 0-3, columns 9-11
    assert mask[0, 9] and mask[3, 11] and not mask[4, 11] and not mask[0, 8]


def test_scatter_data_marks_the_neighbourhood(rng):
    g_mri, g_pet = rng.random((9, 8)), rng.random((9, 8))
    data = scatter_data(g_mri, g_pet, (4, 4), 1)
    assert data.mri.shape == data.pet.shape == data.neighbourhood.shape == (72,)
    assert data.neighbourhood.sum() == 9
    assert data.mri[4 * 8 + 4] == g_mri[4, 4] and data.pet[4 * 8 + 4] == g_pet[4, 4]
    assert not scatter_data(g_mri, g_pet).neighbourhood.any()


def test_png_renders(tmp_path, rng):
    mri, pet = rng.random((30, 40)), rng.random((30, 40))
    jacobian = rng.normal(size=(30, 40))
    view = render_neighbourhood_view(tmp_path / "view.png", mri, pet, (mri + pet) / 2, jacobian, -jacobian, (2, 38), 5, 0.5)
    scatter = render_scatter(tmp_path / "scatter.png", scatter_data(jacobian, -jacobian, (2, 38), 5))
    for path in (view, scatter):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 300
