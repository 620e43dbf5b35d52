"""Guidance images: dy_p/dx_p for every pixel p, per modality (paper 3.2.2).

The paper ran one whole-image backward pass per pixel. With a receptive
radius r, output pixels on a lattice of spacing r+1 (one "colour") are more
than r apart, so one backward pass of their summed outputs yields each one's
own diagonal entry without mixing: (r+1)^2 probes give the exact guidance
images of both modalities.

- ``lattice`` path (any network with a finite radius): the (r+1)^2 probes
  as autograd backward passes sharing one forward pass.
- ``cone`` path (traced networks): the same probes with the work outside the
  region each probe reaches skipped. Around each lattice pixel, a step's
  cotangent can only matter within its distance to the output *and* to the
  inputs; those windows of one colour are disjoint, so all colours are
  batched as windows (:mod:`window_backward`), in bands of rows to bound
  memory, after one shared forward pass.
"""
from __future__ import annotations

import torch
from torch import nn

from .cancellation import CancelCheck, progress_bar, raise_if_cancelled
from .inputs import ImagePair, prepare_images
from .linearisation import Linearisation, linearise
from .model_mode import evaluation_mode, fused_output
from .naive import per_pixel_guidance
from .plan import CONE, LATTICE, SaliencyPlan, plan_for
from .receptive_radius import AUTO
from .result import SaliencyImages
from .window_backward import Windows, backward_windows

# Bytes of cotangent windows per band of rows; bounds peak memory, large enough for efficient batches.
BAND_BUDGET_BYTES = 192 * 2**20


def guidance_images(
    model: nn.Module, mri, pet, *, radius=AUTO, progress: bool = False, cancel: CancelCheck = None
) -> SaliencyImages:
    """Guidance images (dy_p/dx_p of MRI and of PET for every pixel p), each HxW float32.

    ``progress`` shows a tqdm bar; ``cancel`` (a callable returning True, or
    a threading.Event) stops the computation with :class:`SaliencyCancelled`.
    """
    images = prepare_images(model, mri, pet)
    with evaluation_mode(model):
        plan = plan_for(model, radius)
        guidance = compute_guidance(model, plan, images, progress, cancel)
    return SaliencyImages(*(g.detach().cpu().numpy() for g in guidance), plan.guidance_path, plan.reason, plan.radius)


def compute_guidance(
    model: nn.Module,
    plan: SaliencyPlan,
    images: ImagePair,
    progress: bool = False,
    cancel: CancelCheck = None,
    linearisation: Linearisation | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Guidance images as HxW tensors by the plan's path (model in eval mode)."""
    if plan.guidance_path == CONE:
        return cone_guidance(plan, images, progress, cancel, linearisation)
    if plan.guidance_path == LATTICE:
        return lattice_guidance(model, images, plan.radius, progress, cancel)
    return per_pixel_guidance(model, images, None, progress, cancel)


def lattice_guidance(
    model: nn.Module, images: ImagePair, radius: int, progress: bool = False, cancel: CancelCheck = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(r+1)^2 lattice-coloured autograd backward passes after one shared forward pass."""
    spacing = radius + 1
    colours = [(a, b) for a in range(min(spacing, images.height)) for b in range(min(spacing, images.width))]
    leaves = (images.mri.clone().requires_grad_(), images.pet.clone().requires_grad_())
    guidance = (images.mri.new_zeros(images.height, images.width), images.mri.new_zeros(images.height, images.width))
    with torch.enable_grad():
        output = fused_output(model, *leaves)
        with progress_bar(len(colours), "guidance, lattice probes", progress, unit="probe") as bar:
            for index, (a, b) in enumerate(colours):
                raise_if_cancelled(cancel, "the guidance computation")
                cotangent = torch.zeros_like(output)
                cotangent[..., a::spacing, b::spacing] = 1
                grads = torch.autograd.grad(output, leaves, cotangent, retain_graph=index < len(colours) - 1, allow_unused=True)
                for image, grad in zip(guidance, grads):
                    if grad is not None:
                        image[a::spacing, b::spacing] = grad[0, 0, a::spacing, b::spacing]
                bar.update(1)
    return guidance


def rows_per_band(linearisation: Linearisation, radii, width: int, budget: int = BAND_BUDGET_BYTES) -> int:
    """How many image rows of anchors fit the memory budget at once."""
    itemsize = linearisation.output.element_size()
    per_anchor = sum(
        linearisation.channels[i] * (2 * r[0] + 1) * (2 * r[1] + 1) * itemsize for i, r in enumerate(radii) if r is not None
    )
    return max(1, budget // max(1, per_anchor * width))


def cone_guidance(
    plan: SaliencyPlan,
    images: ImagePair,
    progress: bool = False,
    cancel: CancelCheck = None,
    linearisation: Linearisation | None = None,
    band_rows: int | None = None,
    channels_last: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windowed reverse passes for every pixel, a band of rows at a time, after one shared forward pass.

    ``band_rows`` overrides the memory-bounded band height; ``channels_last``
    picks the memory layout of the windows (channels-last is faster on CPU).
    """
    graph = plan.graph
    radii = graph.diagonal_radii
    if linearisation is None:
        padding = max(max(r) for r in radii if r is not None)
        linearisation = linearise(graph, images.mri, images.pet, padding)
    weights = plan.conv_kernels()
    height, width = images.height, images.width
    device = images.mri.device
    band_rows = band_rows or rows_per_band(linearisation, radii, width)
    guidance = (images.mri.new_zeros(height, width), images.mri.new_zeros(height, width))
    columns = torch.arange(width, device=device)
    with progress_bar(height, "guidance, windowed probes", progress, unit="row") as bar:
        for top in range(0, height, band_rows):
            raise_if_cancelled(cancel, "the guidance computation")
            bottom = min(height, top + band_rows)
            rows = torch.arange(top, bottom, device=device).repeat_interleave(width)
            windows = Windows(linearisation, rows, columns.repeat(bottom - top), channels_last)
            cotangents = backward_windows(linearisation, windows, radii, weights, channels_last)
            for index, image in enumerate(guidance):
                if index in cotangents:
                    image[top:bottom] = cotangents[index].reshape(bottom - top, width)
            bar.update(bottom - top)
    return guidance
