"""A researcher's own networks: local ones the registry does not know get exact fast paths, others a reason and a fix.

Networks written for image fusion often pad by reflection (an
``nn.ReflectionPad2d`` before an unpadded convolution, or ``padding_mode``),
dilate their convolutions or use even kernels with ``padding="same"``. Each
is local with a receptive radius read off the architecture; the dilated
zero-padded one runs on the cone's rectangles, the others on the crop and
lattice paths. All are compared with autograd, pixel by pixel.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from FuseVisLib.saliency import SaliencySession, guidance_images, jacobian_images
from FuseVisLib.saliency.inputs import prepare_images
from FuseVisLib.saliency.naive import per_pixel_gradients

# PyTorch's own note on even kernels with padding="same" (a padded copy of the input), not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")

HEIGHT, WIDTH = 19, 23
TOLERANCE = 1e-6


class ReflectionPadded(nn.Module):
    """DenseFuse's layout: a reflection-padding module before each unpadded convolution, and ``padding_mode``."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.encode = nn.Conv2d(2, 8, 3)
        self.decode = nn.Conv2d(8, 1, 5, padding=2, padding_mode="reflect")

    def forward(self, mri, pet):
        return torch.sigmoid(self.decode(torch.relu(self.encode(self.pad(torch.cat((mri, pet), dim=1))))))


class PaddedByFunction(nn.Module):
    """``F.pad`` by reflection on one branch, replication padding on the other: radii 2 (MRI) and 3 (PET)."""

    def __init__(self) -> None:
        super().__init__()
        self.mri_conv = nn.Conv2d(1, 4, 3)
        self.pet_conv = nn.Conv2d(1, 4, 5, padding=2, padding_mode="replicate")
        self.out = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, mri, pet):
        return self.out(torch.tanh(self.mri_conv(F.pad(mri, (1, 1, 1, 1), mode="reflect")) + self.pet_conv(pet)))


class Dilated(nn.Module):
    """Zero-padded dilated convolutions (radius 2*1 + 3*2 + 1 = 9): the cone path."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(2, 6, 3, padding=2, dilation=2)
        self.second = nn.Conv2d(6, 6, 5, padding=(6, 6), dilation=3)
        self.out = nn.Conv2d(6, 1, 3, padding=1)

    def forward(self, mri, pet):
        hidden = F.leaky_relu(self.first(torch.cat((mri, pet), dim=1)), 0.2)
        return torch.tanh(self.out(F.leaky_relu(self.second(hidden), 0.2)))


class RectangularReflected(nn.Module):
    """Reflection padding with 3x5 and 5x3 kernels: windows of other heights than widths cross the border."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(2, 4, (3, 5), padding=(1, 2), padding_mode="reflect")
        self.out = nn.Conv2d(4, 1, (5, 3), padding=(2, 1), padding_mode="reflect")

    def forward(self, mri, pet):
        return self.out(torch.tanh(self.first(torch.cat((mri, pet), dim=1))))


class EvenKernel(nn.Module):
    """A 4x4 kernel with ``padding="same"`` pads one pixel more after than before: radius 2 + 1."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(2, 4, 4, padding="same")
        self.out = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, mri, pet):
        return self.out(torch.relu(self.first(torch.cat((mri, pet), dim=1))))


class AttentionFused(nn.Module):
    """DenseFuse's L1-norm fusion strategy between a shared encoder and a decoder:
    each modality's weight is its features' L1 norm over channels, box-filtered (a stride-1 average
    pooling) and divided by the sum of both; radius 1 (encoder) + 1 (box filter) + 1 (decoder) = 3."""

    def __init__(self) -> None:
        super().__init__()
        self.encode = nn.Conv2d(1, 6, 3, padding=1)
        self.box = nn.AvgPool2d(3, stride=1, padding=1)
        self.decode = nn.Conv2d(6, 1, 3, padding=1)

    def forward(self, mri, pet):
        mri_features, pet_features = torch.relu(self.encode(mri)), torch.relu(self.encode(pet))
        mri_activity = self.box(mri_features.abs().sum(dim=1, keepdim=True))
        pet_activity = self.box(torch.sum(pet_features.abs(), dim=1, keepdim=True))
        total = mri_activity + pet_activity + 1e-3
        fused = mri_features * (mri_activity / total) + pet_features * (pet_activity / total)
        return torch.sigmoid(self.decode(torch.maximum(fused, 0.5 * mri_features)))


CASES = [  # network, radii, Jacobian path, guidance path, why not the fastest
    (ReflectionPadded, {"mri": 3, "pet": 3}, "cone", "cone", None),
    (PaddedByFunction, {"mri": 2, "pet": 3}, "cone", "cone", None),
    (Dilated, {"mri": 9, "pet": 9}, "cone", "cone", None),
    (RectangularReflected, {"mri": 3, "pet": 3}, "cone", "cone", None),
    (EvenKernel, {"mri": 3, "pet": 3}, "crop", "lattice", "pads one side more than the other"),
    (AttentionFused, {"mri": 3, "pet": 3}, "crop", "lattice", "the rectangle passes do not run sum over channels"),
]


def _pixels() -> list[tuple[int, int]]:
    corners = [(0, 0), (0, WIDTH - 1), (HEIGHT - 1, 0), (HEIGHT - 1, WIDTH - 1)]
    edges = [(0, 11), (9, 0), (HEIGHT - 1, 7), (5, WIDTH - 1), (1, 2), (HEIGHT - 2, WIDTH - 3)]
    interior = [(9, 11), (10, 12), (9, 11), (8, 13)]
    again = [(0, 11), (0, 11), (HEIGHT - 2, WIDTH - 3)]  # border pixels again: interpreted, traced, replayed
    return corners + edges + interior + again


@pytest.mark.parametrize("network, radii, path, guidance_path, why", CASES, ids=[case[0].__name__ for case in CASES])
def test_local_user_networks_get_their_radius_and_exact_fast_paths(network, radii, path, guidance_path, why, rng):
    torch.manual_seed(3)
    model = network().eval()
    mri, pet = rng.random((HEIGHT, WIDTH), dtype=np.float32), rng.random((HEIGHT, WIDTH), dtype=np.float32)
    pixels = _pixels()
    session = SaliencySession(model, mri, pet)
    for (row, col), exact in zip(pixels, per_pixel_gradients(model, prepare_images(model, mri, pet), pixels)):
        for ours in (jacobian_images(model, mri, pet, row, col), session.jacobian(row, col)):
            assert ours.path == path, ours.reason
            for modality in range(2):
                np.testing.assert_allclose(ours[modality], exact[modality].numpy(), rtol=0, atol=TOLERANCE, err_msg=f"{row},{col}")
    guidance = guidance_images(model, mri, pet)
    assert guidance.path == guidance_path
    assert "the traced architecture" in guidance.reason and str(radii) in guidance.reason
    if why is not None:
        assert why in guidance.reason
    all_pixels = [(row, col) for row in range(HEIGHT) for col in range(WIDTH)]
    diagonal = np.zeros((2, HEIGHT, WIDTH), dtype=np.float32)
    for (row, col), exact in zip(all_pixels, per_pixel_gradients(model, prepare_images(model, mri, pet), all_pixels)):
        diagonal[:, row, col] = [float(exact[modality][row, col]) for modality in range(2)]
    for modality in range(2):
        np.testing.assert_allclose(guidance[modality], diagonal[modality], rtol=0, atol=TOLERANCE)
    assert session.guidance().path == guidance.path


class CircularlyPadded(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 3, padding=1, padding_mode="circular")

    def forward(self, mri, pet):
        return self.conv(torch.cat((mri, pet), dim=1))


class Strided(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(2, 4, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(4, 1, 2, stride=2)

    def forward(self, mri, pet):
        return self.up(torch.relu(self.down(torch.cat((mri, pet), dim=1))))


class PaddingReadTwice(nn.Module):
    """The padded tensor also feeds a sum: its border pixels would count in the output."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ReplicationPad2d(1)
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, mri, pet):
        padded = self.pad(mri)
        return self.conv(padded) + padded[..., 1:-1, 1:-1] + pet


class StridedPooling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, mri, pet):
        return F.interpolate(F.max_pool2d(self.conv(torch.cat((mri, pet), dim=1)), 2), scale_factor=2.0)


class MeanOverTheImage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, mri, pet):
        features = self.conv(torch.cat((mri, pet), dim=1))
        return features - features.mean(dim=(2, 3), keepdim=True)


@pytest.mark.parametrize(
    "network, problem",
    [
        (CircularlyPadded, "pads circularly: a pixel at one edge reads the opposite edge"),
        (Strided, "has a stride"),
        (PaddingReadTwice, "is not read by convolutions alone"),
        (StridedPooling, "changes the image size"),
        (MeanOverTheImage, "over anything but the channels"),
    ],
    ids=["circular", "strided", "padding-read-twice", "strided-pooling", "mean-over-the-image"],
)
def test_non_local_user_networks_say_why_and_how_to_get_the_fast_paths(network, problem, rng):
    torch.manual_seed(3)
    model = network().eval()
    mri, pet = rng.random((8, 10), dtype=np.float32), rng.random((8, 10), dtype=np.float32)
    jacobians = jacobian_images(model, mri, pet, 0, 9)
    assert jacobians.path == "whole-image" and jacobians.radius is None
    assert problem in jacobians.reason
    assert "declare its radius (model.receptive_radius = r, or radius=r)" in jacobians.reason
    images = prepare_images(model, mri, pet)
    (exact,) = per_pixel_gradients(model, images, [(0, 9)])
    for modality in range(2):
        np.testing.assert_allclose(jacobians[modality], exact[modality].numpy(), rtol=0, atol=TOLERANCE)


def test_a_registered_network_without_a_radius_gets_the_one_its_layers_have(rng):
    import FuseVisLib
    from FuseVisLib.cli.methods import describe_methods

    FuseVisLib.register_method("TestReflectionPadded", ReflectionPadded, replace=True)
    model = FuseVisLib.load_method("TestReflectionPadded", "cpu")
    assert not hasattr(model, "receptive_radius")
    assert {"name": "TestReflectionPadded", "receptive_radius": "auto"}.items() <= next(
        entry for entry in describe_methods() if entry["name"] == "TestReflectionPadded"
    ).items()
    mri, pet = rng.random((12, 14), dtype=np.float32), rng.random((12, 14), dtype=np.float32)
    jacobians = jacobian_images(model, mri, pet, 11, 0)
    assert jacobians.path == "cone" and jacobians.radius == 3
    assert "from the traced architecture" in jacobians.reason
    (exact,) = per_pixel_gradients(model, prepare_images(model, mri, pet), [(11, 0)])
    for modality in range(2):
        np.testing.assert_allclose(jacobians[modality], exact[modality].numpy(), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("radius", [-1, 2.5, "big", True])
def test_a_registered_radius_must_be_a_count_none_or_auto(radius):
    import FuseVisLib

    with pytest.raises(FuseVisLib.FuseVisError, match="non-negative integer, None or 'auto'"):
        FuseVisLib.register_method("TestBadRadius", ReflectionPadded, receptive_radius=radius)
