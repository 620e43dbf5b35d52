"""A traced network linearised at one image pair, from one forward pass.

Reverse-mode differentiation of a :class:`LocalGraph` needs, besides the
weights, only the derivative of every pointwise nonlinearity at its input.
One forward pass yields all of them, either over the whole image (guidance
images, cached Jacobians) or only over the shrinking rectangles one output
pixel depends on (a single Jacobian image, see :mod:`regions`). The maps are
kept in a *frame* (the whole image, or the rectangle the output pixel
reaches), zero-padded and channels-last (``[rows * cols, channels]``) so
that windows around any set of pixels can be gathered with one
``index_select``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .local_graph import LocalGraph, Pointwise, Step, apply_step
from .regions import Box, crop, step_on_box


@dataclass
class Linearisation:
    graph: LocalGraph
    frame: Box  # the part of the image the maps cover
    padding: int  # the maps are zero-padded by this many pixels on each side of the frame
    channels: list[int]  # per step
    derivatives: dict[int, torch.Tensor]  # pointwise step -> [padded frame pixels, C]: d output / d input
    inside: torch.Tensor  # [padded frame pixels]: 1 inside the image, 0 in the padding
    output: torch.Tensor  # the fused image on the output step's rectangle

    @property
    def padded_width(self) -> int:
        return self.frame.right - self.frame.left + 2 * self.padding


def _flat_channels_last(value: torch.Tensor, padding: int) -> torch.Tensor:
    padded = F.pad(value, (padding,) * 4) if padding else value
    return padded[0].permute(1, 2, 0).reshape(-1, value.shape[1]).contiguous()


def _pointwise_with_derivative(step: Pointwise, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if step.derivative is not None:
        with torch.no_grad():
            result = step.forward(value)
            return result, step.derivative(value, result)
    with torch.enable_grad():
        leaf = value.detach().requires_grad_()
        result = step.forward(leaf)
        # The reverse-mode derivative, with autograd's own conventions at kinks.
        (derivative,) = torch.autograd.grad(result, leaf, torch.ones_like(result))
    return result.detach(), derivative


def linearise(
    graph: LocalGraph, mri: torch.Tensor, pet: torch.Tensor, padding: int, boxes: list[Box | None] | None = None
) -> Linearisation:
    """One forward pass over [1,1,H,W] images keeping each pointwise step's derivative map.

    Without ``boxes`` every step runs on the whole image, with the network's
    own operations. With ``boxes`` (from :func:`regions.needed_boxes`) each
    step runs only on its rectangle and the maps cover the rectangle of the
    inputs.
    """
    height, width = mri.shape[-2:]
    whole = Box(0, 0, height, width)
    if boxes is None:
        boxes = [whole] * len(graph.steps)
    used = [b for b in boxes if b is not None]
    frame = Box(min(b.top for b in used), min(b.left for b in used), max(b.bottom for b in used), max(b.right for b in used))
    values: list[torch.Tensor | None] = [None] * len(graph.steps)
    remaining = [sum(1 for u in graph.users[i] if boxes[u] is not None) for i in range(len(graph.steps))]
    channels = [0] * len(graph.steps)
    derivatives: dict[int, torch.Tensor] = {}
    for index, step in enumerate(graph.steps):
        box = boxes[index]
        if box is None:
            continue
        inputs, input_boxes = [values[s] for s in step.sources], [boxes[s] for s in step.sources]
        if isinstance(step, Pointwise):
            value, derivative = _pointwise_with_derivative(step, crop(inputs[0], input_boxes[0], box))
            derivatives[index] = _flat_channels_last(_in_frame(derivative, box, frame), padding)
        else:
            value = _evaluate(step, inputs, input_boxes, box, whole, (mri, pet))
        values[index] = value
        channels[index] = value.shape[1]
        for source in step.sources:
            remaining[source] -= 1
            if remaining[source] == 0:
                values[source] = None
    inside = _flat_channels_last(torch.ones_like(mri[..., frame.top : frame.bottom, frame.left : frame.right]), padding)[:, 0]
    return Linearisation(graph, frame, padding, channels, derivatives, inside.contiguous(), values[graph.output])


def _evaluate(step: Step, inputs, input_boxes, box: Box, whole: Box, images) -> torch.Tensor:
    with torch.no_grad():
        if box == whole and all(b == whole for b in input_boxes):
            return apply_step(step, inputs, images)
        return step_on_box(step, inputs, input_boxes, box, images)


def _in_frame(value: torch.Tensor, box: Box, frame: Box) -> torch.Tensor:
    if box == frame:
        return value
    placed = value.new_zeros(*value.shape[:2], frame.bottom - frame.top, frame.right - frame.left)
    placed[..., box.top - frame.top : box.bottom - frame.top, box.left - frame.left : box.right - frame.left] = value
    return placed
