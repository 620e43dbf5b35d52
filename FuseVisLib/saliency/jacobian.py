"""Jacobian images: how every input pixel of each modality influences one output pixel (paper 3.2.1).

Only inputs within the receptive radius r of the output pixel matter. The
``cone`` path evaluates each layer of the network only on the rectangle the
output pixel needs from it, a rectangle that shrinks by each layer's radius
on the way to the output (valid convolutions inside the image, the
network's own zero padding only at the true border), then runs the reverse
pass in windows over the same rectangles. The ``crop`` path runs an
untraceable network on the (2r+1)^2 crop around the pixel, clipped at the
border. Both equal the whole-image backward pass exactly.
"""
from __future__ import annotations

import torch
from torch import nn

from .inputs import ImagePair, check_pixel, prepare_images
from .linearisation import Linearisation, linearise
from .model_mode import evaluation_mode, fused_output
from .naive import whole_image_jacobian
from .plan import CONE, CROP, SaliencyPlan, plan_for
from .receptive_radius import AUTO
from .regions import Box, needed_boxes
from .result import SaliencyImages
from .window_backward import Windows, backward_windows


def jacobian_images(model: nn.Module, mri, pet, row: int, col: int, *, radius=AUTO) -> SaliencyImages:
    """Jacobian images (d y[row, col] / d MRI, d y[row, col] / d PET), each HxW float32.

    ``mri`` and ``pet``: 2-D arrays or [1,1,H,W] tensors in [0, 1]. ``radius``
    overrides the model's declared receptive radius (an int, a
    {"mri": r1, "pet": r2} dict, or None for none). The result says which
    path computed it (``.path``, ``.reason``).
    """
    images = prepare_images(model, mri, pet)
    row, col = check_pixel(row, col, images.height, images.width)
    with evaluation_mode(model):
        plan = plan_for(model, radius)
        jacobians = fast_jacobian(model, plan, images, row, col)
    return SaliencyImages(*(j.detach().cpu().numpy() for j in jacobians), plan.jacobian_path, plan.reason, plan.radius)


def fast_jacobian(model: nn.Module, plan: SaliencyPlan, images: ImagePair, row: int, col: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The Jacobian images as HxW tensors by the plan's path."""
    if plan.jacobian_path == CONE:
        return cone_jacobian(plan, images, row, col)
    if plan.jacobian_path == CROP:
        return crop_jacobian(model, images, row, col, plan.declared.radius)
    return whole_image_jacobian(model, images, row, col)


def cone_jacobian(plan: SaliencyPlan, images: ImagePair, row: int, col: int) -> tuple[torch.Tensor, torch.Tensor]:
    graph = plan.graph
    boxes = needed_boxes(graph, row, col, images.height, images.width)
    padding = max(max(r) for r in graph.window_radii if r is not None)
    linearisation = linearise(graph, images.mri, images.pet, padding, boxes)
    return jacobian_from_linearisation(plan, linearisation, row, col, images.height, images.width)


def jacobian_from_linearisation(
    plan: SaliencyPlan, linearisation: Linearisation, row: int, col: int, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Jacobian images from a linearisation whose frame covers everything pixel (row, col) depends on."""
    device = linearisation.inside.device
    windows = Windows(linearisation, torch.tensor([row], device=device), torch.tensor([col], device=device))
    cotangents = backward_windows(linearisation, windows, plan.graph.window_radii, plan.backward_weights())
    zeros = linearisation.output.new_zeros(height, width)
    return tuple(_placed(cotangents.get(i), row, col, zeros) for i in (0, 1))  # type: ignore[return-value]


def _placed(window: torch.Tensor | None, row: int, col: int, zeros: torch.Tensor) -> torch.Tensor:
    image = zeros.clone()
    if window is None:
        return image
    ry, rx = (window.shape[-2] - 1) // 2, (window.shape[-1] - 1) // 2
    box = Box(row - ry, col - rx, row + ry + 1, col + rx + 1)
    inside = box.clipped(*zeros.shape)
    image[inside.top : inside.bottom, inside.left : inside.right] = window[
        0, 0, inside.top - box.top : inside.bottom - box.top, inside.left - box.left : inside.right - box.left
    ]
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
