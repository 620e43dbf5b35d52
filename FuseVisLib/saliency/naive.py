"""The reference method (the paper's): whole-image backward passes, one per output pixel.

Exact for any network, with or without a finite receptive radius, and the
yardstick the fast paths are tested and benchmarked against. A guidance
image this way costs one backward pass per pixel (65,536 at 256x256), so
it shows a progress bar and can be cancelled.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch import nn

from .cancellation import CancelCheck, progress_bar, raise_if_cancelled
from .inputs import ImagePair
from .model_mode import fused_output


def _leaves(images: ImagePair) -> tuple[torch.Tensor, torch.Tensor]:
    return images.mri.clone().requires_grad_(), images.pet.clone().requires_grad_()


def _gradients(output: torch.Tensor, leaves, retain: bool, cotangent: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    grads = torch.autograd.grad(output, leaves, cotangent, retain_graph=retain, allow_unused=True)
    return tuple(torch.zeros_like(leaf) if g is None else g for g, leaf in zip(grads, leaves))  # type: ignore[return-value]


def whole_image_jacobian(model: nn.Module, images: ImagePair, row: int, col: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Jacobian images of output pixel (row, col): one forward and one backward pass over the whole image."""
    leaves = _leaves(images)
    with torch.enable_grad():
        output = fused_output(model, *leaves)
        mri_grad, pet_grad = _gradients(output[0, 0, row, col], leaves, retain=False)
    return mri_grad[0, 0], pet_grad[0, 0]


def per_pixel_gradients(
    model: nn.Module,
    images: ImagePair,
    pixels: list[tuple[int, int]],
    progress: bool = False,
    cancel: CancelCheck = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Whole-image Jacobian images of each pixel in turn: one shared forward pass, one backward pass per pixel."""
    leaves = _leaves(images)
    with torch.enable_grad():
        output = fused_output(model, *leaves)
        with progress_bar(len(pixels), "guidance, one backward pass per pixel", progress, unit="px") as bar:
            for index, (row, col) in enumerate(pixels):
                raise_if_cancelled(cancel, "the per-pixel computation")
                mri_grad, pet_grad = _gradients(output[0, 0, row, col], leaves, retain=index < len(pixels) - 1)
                yield mri_grad[0, 0], pet_grad[0, 0]
                bar.update(1)


def per_pixel_guidance(
    model: nn.Module,
    images: ImagePair,
    pixels: Iterable[tuple[int, int]] | None = None,
    progress: bool = False,
    cancel: CancelCheck = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """dy_p/dx_p for each pixel p by :func:`per_pixel_gradients`.

    With ``pixels`` the values at those pixels (two 1-D tensors), else the
    HxW guidance images.
    """
    height, width = images.height, images.width
    chosen = [(r, c) for r in range(height) for c in range(width)] if pixels is None else list(pixels)
    mri_values = images.mri.new_zeros(len(chosen))
    pet_values = images.mri.new_zeros(len(chosen))
    gradients = per_pixel_gradients(model, images, chosen, progress, cancel)
    for index, ((row, col), (mri_grad, pet_grad)) in enumerate(zip(chosen, gradients)):
        mri_values[index] = mri_grad[row, col]
        pet_values[index] = pet_grad[row, col]
    if pixels is None:
        return mri_values.view(height, width), pet_values.view(height, width)
    return mri_values, pet_values
