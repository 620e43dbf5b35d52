"""Jacobian images: how every input pixel of each modality influences one output pixel (paper 3.2.1).

Only inputs within the receptive radius r of the output pixel matter. The
``cone`` path evaluates each layer of the network only on the rectangle the
output pixel needs from it, a rectangle that shrinks by each layer's radius
on the way to the output (valid convolutions inside the image, the
network's own zero padding only at the true border), then runs the reverse
pass over the same rectangles (:mod:`box_passes`); with a cached
whole-image forward pass (:class:`SaliencySession`) only the reverse pass
remains. The ``crop`` path runs an
untraceable network on the (2r+1)^2 crop around the pixel, clipped at the
border. Both equal the whole-image backward pass exactly.
"""
from __future__ import annotations

import torch
from torch import nn

from .inputs import ImagePair, check_pixel, prepare_images
from .linearisation import Linearisation
from .model_mode import evaluation_mode, fused_output
from .naive import whole_image_jacobian
from .plan import CONE, CROP, WHOLE_IMAGE, SaliencyPlan, plan_for
from .receptive_radius import AUTO
from .regions import Box
from .result import SaliencyImages
from .threads import jacobian_threads


def jacobian_images(model: nn.Module, mri, pet, row: int, col: int, *, radius=AUTO) -> SaliencyImages:
    """Jacobian images (d y[row, col] / d MRI, d y[row, col] / d PET), each HxW float32.

    ``mri`` and ``pet``: 2-D arrays or [1,1,H,W] tensors in [0, 1]. ``radius``
    overrides the model's declared receptive radius (an int, a
    {"mri": r1, "pet": r2} dict, or None for none). The result says which
    path computed it (``.path``, ``.reason``).
    """
    with jacobian_threads():
        images = prepare_images(model, mri, pet)
        row, col = check_pixel(row, col, images.height, images.width)
        plan = plan_for(model, radius)
        if plan.jacobian_path == CONE and plan.box_passes().replayed(row, col, images.height, images.width):
            jacobians = cone_jacobian(plan, images, row, col)  # no eval mode to enter and leave (see plan_for)
        elif plan.jacobian_path != WHOLE_IMAGE:
            with evaluation_mode(model):
                jacobians = fast_jacobian(model, plan, images, row, col)
    if plan.jacobian_path == WHOLE_IMAGE:  # a whole-image backward pass is big enough for every thread
        with evaluation_mode(model):
            jacobians = whole_image_jacobian(model, images, row, col)
    return SaliencyImages(*(j.detach().cpu().numpy() for j in jacobians), plan.jacobian_path, plan.reason, plan.radius)


def fast_jacobian(model: nn.Module, plan: SaliencyPlan, images: ImagePair, row: int, col: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The Jacobian images as HxW tensors by the plan's path."""
    if plan.jacobian_path == CONE:
        return cone_jacobian(plan, images, row, col)
    if plan.jacobian_path == CROP:
        return crop_jacobian(model, images, row, col, plan.declared.radius)
    return whole_image_jacobian(model, images, row, col)


def cone_jacobian(
    plan: SaliencyPlan, images: ImagePair, row: int, col: int, linearisation: Linearisation | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The cone path: both passes over the pixel's rectangles, or only the reverse pass given a whole-image ``linearisation``."""
    passes = plan.box_passes()
    if linearisation is None:
        cotangents = passes.jacobian(row, col, images.mri, images.pet)
    else:
        cotangents = passes.backward(
            row, col, images.height, images.width, linearisation.derivative_on, linearisation.channels, images.mri
        )
    return _placed(cotangents.get(0), images.mri), _placed(cotangents.get(1), images.mri)


def _placed(cotangent: tuple[torch.Tensor, Box] | None, like: torch.Tensor) -> torch.Tensor:
    image = like.new_zeros(like.shape[-2:])
    if cotangent is not None:
        values, box = cotangent
        image[box.top : box.bottom, box.left : box.right] = values[0, 0]
    return image


def crop_jacobian(model: nn.Module, images: ImagePair, row: int, col: int, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The network on the crop of radius ``radius`` around the pixel; exact for zero-padded local networks."""
    box = Box(row, col, row + 1, col + 1).widened((radius, radius)).clipped(images.height, images.width)
    crops = [image[..., box.top : box.bottom, box.left : box.right].clone().requires_grad_() for image in (images.mri, images.pet)]
    with torch.enable_grad():
        output = fused_output(model, *crops)
        grads = torch.autograd.grad(output[0, 0, row - box.top, col - box.left], crops, allow_unused=True)
    zeros = images.mri.new_zeros(images.height, images.width)
    result = []
    for grad in grads:
        image = zeros.clone()
        if grad is not None:
            image[box.top : box.bottom, box.left : box.right] = grad[0, 0]
        result.append(image)
    return result[0], result[1]
