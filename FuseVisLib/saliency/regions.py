"""Rectangles of the image that each step of a :class:`LocalGraph` must compute for one output pixel.

Going from the output pixel back to the inputs, every convolution widens
the rectangle by its kernel radius; rectangles are clipped at the true image
border, where the network's own zero padding applies. Evaluating each step
only on its rectangle (valid convolutions inside the image, zero padding only
at the border) reproduces the whole-image output at that pixel exactly.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .local_graph import Conv, LocalGraph, Source, Step, apply_step


class Box(NamedTuple):
    """Half-open pixel rectangle [top, bottom) x [left, right)."""

    top: int
    left: int
    bottom: int
    right: int

    def widened(self, reach: tuple[int, int]) -> "Box":
        return Box(self.top - reach[0], self.left - reach[1], self.bottom + reach[0], self.right + reach[1])

    def clipped(self, height: int, width: int) -> "Box":
        return Box(max(0, self.top), max(0, self.left), min(height, self.bottom), min(width, self.right))

    def union(self, other: "Box | None") -> "Box":
        if other is None:
            return self
        return Box(min(self.top, other.top), min(self.left, other.left), max(self.bottom, other.bottom), max(self.right, other.right))


def needed_boxes(graph: LocalGraph, row: int, col: int, height: int, width: int) -> list[Box | None]:
    """Per step, the rectangle it must compute so that the output at (row, col) is exact."""
    boxes: list[Box | None] = [None] * len(graph.steps)
    boxes[graph.output] = Box(row, col, row + 1, col + 1)
    for index in range(len(graph.steps) - 1, -1, -1):
        box = boxes[index]
        if box is None:
            continue
        needed = box.widened(graph.steps[index].reach).clipped(height, width)
        for source in graph.steps[index].sources:
            boxes[source] = needed.union(boxes[source])
    return boxes


def crop(value: torch.Tensor, have: Box, want: Box) -> torch.Tensor:
    return value[..., want.top - have.top : want.bottom - have.top, want.left - have.left : want.right - have.left]


def step_on_box(
    step: Step, inputs: list[torch.Tensor], input_boxes: list[Box], box: Box, images: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """One step evaluated on ``box`` from its inputs, each given on its own (larger) box."""
    height, width = images[0].shape[-2:]
    if isinstance(step, Source):
        return crop(images[step.index], Box(0, 0, height, width), box)
    if isinstance(step, Conv):
        return _valid_conv(step, inputs[0], input_boxes[0], box, height, width)
    return apply_step(step, [crop(value, have, box) for value, have in zip(inputs, input_boxes)], images)


def _valid_conv(step: Conv, value: torch.Tensor, have: Box, box: Box, height: int, width: int) -> torch.Tensor:
    wanted = box.widened(step.reach)
    inside = wanted.clipped(height, width)
    # Zeros only where the rectangle leaves the image: the network's own padding.
    padding = (inside.left - wanted.left, wanted.right - inside.right, inside.top - wanted.top, wanted.bottom - inside.bottom)
    x = crop(value, have, inside)
    if any(padding):
        x = F.pad(x, padding)
    conv = step.module
    bias = None if conv.bias is None else conv.bias.detach()
    return F.conv2d(x, conv.weight.detach(), bias, groups=conv.groups)

