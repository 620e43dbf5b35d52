"""A model's saliency plan (traced passes, BatchNorm folded into kernels) follows every change of the model.

A researcher fine-tunes, reloads or edits a network in the same process and
asks for Jacobians again: they must be the new network's, whichever way it
changed. Each case first runs the fast path until it replays traces, then
changes the model and compares with autograd on the changed model.
"""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
from torch import nn

from FuseVisLib import networks
from FuseVisLib.saliency import jacobian_images
from FuseVisLib.saliency.inputs import prepare_images
from FuseVisLib.saliency.naive import per_pixel_gradients

SIZE = 28
PIXEL = (13, 15)  # inside: replayed traces
TOLERANCE = 1e-6


def _model() -> nn.Module:
    torch.manual_seed(3)
    model = networks.FunFuseAn()
    for module in model.modules():  # BatchNorm away from the identity, so that folding it matters
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _images(dtype=np.float32):
    rng = np.random.default_rng(0)
    return rng.random((SIZE, SIZE)).astype(dtype), rng.random((SIZE, SIZE)).astype(dtype)


def _warmed_up(model: nn.Module, mri, pet) -> tuple[np.ndarray, np.ndarray]:
    for _ in range(3):  # interpreted, traced, replayed
        before = jacobian_images(model, mri, pet, *PIXEL)
    return before.mri, before.pet


def _assert_autograd(model: nn.Module, mri, pet, before) -> None:
    ours = jacobian_images(model, mri, pet, *PIXEL)
    (exact,) = per_pixel_gradients(model, prepare_images(model, mri, pet), [PIXEL])
    for modality in range(2):
        np.testing.assert_allclose(ours[modality], exact[modality].numpy(), rtol=0, atol=TOLERANCE)
    assert not np.allclose(ours.mri, before[0], rtol=0, atol=1e-4), "the change did not change the Jacobian: no test"


def _scale_a_kernel_in_place(model: nn.Module) -> None:
    with torch.no_grad():
        model.mri_lf[0].weight.mul_(1.5)  # an optimiser step or load_state_dict: the same tensor, a new version


def _load_other_weights(model: nn.Module) -> None:
    torch.manual_seed(11)
    model.load_state_dict(networks.FunFuseAn().state_dict())


def _replace_a_parameter(model: nn.Module) -> None:
    conv = model.mri_lf[0]
    conv.weight = nn.Parameter(conv.weight.detach() * -1.0)


def _update_batchnorm_statistics(model: nn.Module) -> None:
    # Re-estimating BatchNorm statistics in training mode changes buffers only, in place.
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 1, SIZE, SIZE) * 3, torch.rand(2, 1, SIZE, SIZE) * 3)
    model.eval()


def _replace_a_layer(model: nn.Module) -> None:
    old = model.mri_lf[0]
    torch.manual_seed(5)
    model.mri_lf[0] = nn.Conv2d(old.in_channels, old.out_channels, old.kernel_size, padding=old.padding)


def _write_a_parameter_into_its_dict(model: nn.Module) -> None:
    # As torch's own module conversions and some libraries do: no __setattr__, no registration hook.
    conv = model.mri_lf[0]
    conv._parameters["weight"] = nn.Parameter(conv.weight.detach() * -1.0)


def _give_a_layer_new_parameter_dict(model: nn.Module) -> None:
    conv = model.mri_lf[0]
    conv._parameters = {**conv._parameters, "weight": nn.Parameter(conv.weight.detach() * 0.5)}


def _replace_an_activation(model: nn.Module) -> None:
    # A layer without parameters or buffers: no tensor of the model changes.
    model.mri_lf[2] = nn.LeakyReLU(0.01)


CHANGES = [
    _scale_a_kernel_in_place,
    _load_other_weights,
    _replace_a_parameter,
    _update_batchnorm_statistics,
    _replace_a_layer,
    _write_a_parameter_into_its_dict,
    _give_a_layer_new_parameter_dict,
    _replace_an_activation,
]


@pytest.mark.parametrize("change", CHANGES, ids=[change.__name__.strip("_") for change in CHANGES])
def test_jacobians_follow_a_changed_model(change):
    model = _model()
    mri, pet = _images()
    before = _warmed_up(model, mri, pet)
    change(model)
    _assert_autograd(model, mri, pet, before)


def test_jacobians_follow_a_model_converted_to_float64():
    model = _model()
    mri, pet = _images()
    before = _warmed_up(model, mri, pet)
    model.double()
    ours = jacobian_images(model, mri, pet, *PIXEL)
    assert ours.mri.dtype == np.float64
    (exact,) = per_pixel_gradients(model, prepare_images(model, mri, pet), [PIXEL])
    for modality in range(2):
        np.testing.assert_allclose(ours[modality], exact[modality].numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.mri, before[0], rtol=0, atol=1e-5)  # the same network, more digits


def test_a_cached_plan_does_not_keep_its_model_alive():
    model = _model()
    _warmed_up(model, *_images())
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None, "the plan cache keeps a model alive after its last use"
