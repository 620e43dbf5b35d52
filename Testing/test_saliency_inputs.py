"""Bad input to the saliency engine gets a clear FuseVisError naming the problem and the fix."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from FuseVisLib.errors import FuseVisError
from FuseVisLib.networks import FunFuseAn, WeightedAveraging
from FuseVisLib.saliency import guidance_images, jacobian_images, scatter_data


@pytest.fixture()
def pair(rng):
    return rng.random((12, 14), dtype=np.float32), rng.random((12, 14), dtype=np.float32)


def _model():
    torch.manual_seed(0)
    return FunFuseAn().eval()


def test_mismatched_shapes(pair):
    mri, _ = pair
    with pytest.raises(FuseVisError, match=r"MRI is 14x12 pixels but the PET is 13x12.*resample"):
        guidance_images(_model(), mri, mri[:, :13])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinite_values(pair, bad):
    mri, pet = pair
    pet = pet.copy()
    pet[3, 4] = bad
    with pytest.raises(FuseVisError, match=r"PET image contains NaN or infinite values; replace them"):
        jacobian_images(_model(), mri, pet, 1, 1)


def test_three_dimensional_array_where_a_slice_is_expected(pair):
    mri, pet = pair
    volume = np.stack([mri, mri, mri])
    with pytest.raises(FuseVisError, match=r"MRI image has shape \(3, 12, 14\); pass one 2-D slice"):
        jacobian_images(_model(), volume, pet, 1, 1)


def test_batched_tensor_is_refused(pair):
    mri, pet = pair
    batch = torch.from_numpy(np.stack([mri, pet]))[:, None]
    with pytest.raises(FuseVisError, match=r"shape \(2, 1, 12, 14\)"):
        guidance_images(_model(), batch, batch)


@pytest.mark.parametrize("pixel", [(12, 0), (0, 14), (-1, 3), (5, -2)])
def test_pixel_outside_the_image(pair, pixel):
    with pytest.raises(FuseVisError, match=r"lies outside the image of 12 rows and 14 columns; choose 0 <= row < 12 and 0 <= col < 14"):
        jacobian_images(_model(), *pair, *pixel)


def test_pixel_that_is_not_an_integer(pair):
    with pytest.raises(FuseVisError, match=r"pixel row must be an integer"):
        jacobian_images(_model(), *pair, 2.5, 3)


def test_values_outside_zero_to_one(pair):
    _, pet = pair
    with pytest.raises(FuseVisError, match=r"MRI image ranges over \[0, 255\].*min-max normalise"):
        guidance_images(_model(), np.eye(12, 14, dtype=np.uint8) * 255, pet)


def test_not_an_image(pair):
    with pytest.raises(FuseVisError, match=r"MRI image is a list"):
        guidance_images(_model(), [[0.1, 0.2]], pair[1])


def test_network_that_does_not_return_one_fused_image(pair):
    class TwoChannels(torch.nn.Module):
        receptive_radius = 0

        def forward(self, mri, pet):
            return torch.cat((mri, pet), dim=1)

    with pytest.raises(FuseVisError, match=r"TwoChannels returned \(1, 2, \d+, \d+\) for inputs of shape \(1, 1, \d+, \d+\).*one fused image of the same size"):
        guidance_images(TwoChannels(), *pair)


def test_invalid_declared_radius(pair):
    with pytest.raises(FuseVisError, match=r"non-negative integer"):
        guidance_images(WeightedAveraging(), *pair, radius=-1)
    with pytest.raises(FuseVisError, match=r"must name exactly 'mri' and 'pet'"):
        guidance_images(WeightedAveraging(), *pair, radius={"mri": 1})


def test_scatter_of_mismatched_guidance_images(pair):
    with pytest.raises(FuseVisError, match=r"two 2-D arrays of one shape"):
        scatter_data(pair[0], pair[1][:, :5])
