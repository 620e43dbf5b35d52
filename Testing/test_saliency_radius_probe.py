"""The radius probe: a declared receptive radius is checked against the model before a fast path is used."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from FuseVisLib.networks import FunFuseAn, MaskNet
from FuseVisLib.registry import get_method
from FuseVisLib.saliency import SaliencyCancelled, guidance_images, jacobian_images
from FuseVisLib.saliency.inputs import prepare_images
from FuseVisLib.saliency.model_mode import evaluation_mode
from FuseVisLib.saliency.naive import per_pixel_guidance
from FuseVisLib.saliency.plan import plan_for


class AddsTheImageMean(torch.nn.Module):
    """A local convolution plus a global term: it declares a radius but has none."""

    receptive_radius = 1

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, mri, pet):
        return self.conv(torch.cat((mri, pet), dim=1)) + 0.1 * mri.mean()


class ProductOfInputs(torch.nn.Module):
    """Local (radius 1) but beyond the cone's rectangle passes: a reflection-padded convolution and a product of two feature maps."""

    receptive_radius = 1

    def __init__(self) -> None:
        super().__init__()
        self.mri_conv = torch.nn.Conv2d(1, 1, 3, padding=1)
        self.pet_conv = torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")

    def forward(self, mri, pet):
        return torch.tanh(self.mri_conv(mri)) * self.pet_conv(pet)


def _pair(rng, height=14, width=17):
    return rng.random((height, width), dtype=np.float32), rng.random((height, width), dtype=np.float32)


def _plan(model, radius="auto"):
    with evaluation_mode(model):
        return plan_for(model, radius)


def test_probe_agrees_with_the_registry_radius():
    torch.manual_seed(0)
    plan = _plan(FunFuseAn())
    assert plan.probe.agrees
    assert plan.probe.measured == {"mri": 9, "pet": 11}  # the architecture's per-input radii, found empirically
    assert (plan.jacobian_path, plan.guidance_path) == ("cone", "cone")
    assert plan.probes == 144


def test_probe_catches_a_declared_radius_that_is_too_small(rng):
    torch.manual_seed(0)
    model = FunFuseAn()
    mri, pet = _pair(rng)
    result = guidance_images(model, mri, pet, radius=9)  # the PET path reaches 11 px
    assert result.path == "per-pixel"
    assert "radius probe disagrees" in result.reason and "PET pixels 11 px away" in result.reason
    # The exact per-pixel path still gives the right answer.
    images = prepare_images(model, mri, pet)
    with evaluation_mode(model):
        reference = per_pixel_guidance(model, images)
    np.testing.assert_array_equal(result.mri, reference[0].numpy())


def test_probe_catches_one_modality_declared_too_small():
    torch.manual_seed(0)
    assert _plan(FunFuseAn(), {"mri": 9, "pet": 11}).probe.agrees
    plan = _plan(FunFuseAn(), {"mri": 8, "pet": 11})
    assert plan.guidance_path == "per-pixel" and "MRI pixels 9 px away" in plan.reason


def test_probe_catches_a_global_operation(rng):
    torch.manual_seed(0)
    model = AddsTheImageMean().eval()
    mri, pet = _pair(rng)
    jacobians = jacobian_images(model, mri, pet, 3, 4)
    assert jacobians.path == "whole-image" and "radius probe disagrees" in jacobians.reason
    # Every MRI pixel influences every output pixel through the mean.
    assert np.count_nonzero(jacobians.mri) == mri.size


def test_no_finite_radius_takes_the_per_pixel_path_with_progress_and_cancellation(rng):
    torch.manual_seed(0)
    model = AddsTheImageMean().eval()
    mri, pet = _pair(rng, 6, 7)
    result = guidance_images(model, mri, pet, radius=None, progress=True)
    assert result.path == "per-pixel" and result.radius is None and "no finite receptive radius" in result.reason
    expected = 0.1 / mri.size + float(model.conv.weight.detach()[0, 0, 1, 1])  # centre tap plus the mean's share
    assert abs(result.mri[3, 3] - expected) < 1e-6
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(SaliencyCancelled, match="cancelled"):
        guidance_images(model, mri, pet, radius=None, cancel=cancel)


def test_cancelling_the_fast_guidance(rng):
    torch.manual_seed(0)
    calls = []

    def cancel_after_first_band() -> bool:
        calls.append(1)
        return len(calls) > 1

    from FuseVisLib.saliency import guidance as guidance_module

    model = MaskNet()
    mri, pet = _pair(rng, 30, 20)
    with evaluation_mode(model):
        plan = plan_for(model)
        with pytest.raises(SaliencyCancelled):
            guidance_module.cone_guidance(plan, prepare_images(model, mri, pet), cancel=cancel_after_first_band, band_rows=4)
    assert len(calls) == 2


def test_local_network_beyond_the_rectangle_passes_uses_crop_and_lattice_and_is_exact(rng):
    torch.manual_seed(0)
    model = ProductOfInputs().eval()
    mri, pet = _pair(rng)
    guidance = guidance_images(model, mri, pet)
    assert guidance.path == "lattice" and "generic paths because the cone's rectangle passes cannot run it" in guidance.reason
    images = prepare_images(model, mri, pet)
    with evaluation_mode(model):
        reference = per_pixel_guidance(model, images)
    for ours, exact in zip(guidance, reference):
        np.testing.assert_allclose(ours, exact.numpy(), rtol=0, atol=1e-6)
    jacobians = jacobian_images(model, mri, pet, 0, 16)
    assert jacobians.path == "crop"


def test_probe_reruns_when_the_weights_change():
    torch.manual_seed(0)
    model = AddsTheImageMean().eval()
    model.receptive_radius = 1
    first = _plan(model, 1)
    assert _plan(model, 1) is first  # cached
    with torch.no_grad():
        model.conv.weight.mul_(2.0)
    assert _plan(model, 1) is not first


class WrappedDeepFuse(torch.nn.Module):
    """DeepFuse inside a module that declares no receptive radius itself."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = get_method("DeepFuse").build()

    def forward(self, mri, pet):
        return self.inner(mri, pet)


def test_radius_from_the_registry_entry_or_else_the_traced_architecture():
    torch.manual_seed(0)
    model = WrappedDeepFuse().eval()
    plan = _plan(model)
    assert plan.declared.source.startswith("the traced architecture") and plan.radius == 12
    model.fusevis_method = "DeepFuse"
    plan = _plan(model)
    assert plan.declared.source == "the registry entry 'DeepFuse'" and plan.radius == 12 and plan.probe.agrees
