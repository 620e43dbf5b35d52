"""The Jacobian images of one output pixel, computed only on the rectangles that pixel depends on.

Forward: each step of the traced network runs on its rectangle from
:func:`regions.relative_boxes` (shrinking towards the output), keeping the
derivative of every pointwise step there. Backward: the cotangent of the
output pixel flows back over the same rectangles; a convolution's
transposed kernel widens it by the kernel radius, and whatever falls outside
the image is cut off, which is exactly the network's zero padding having no
gradient. The cotangents reaching the inputs are the Jacobian images.

The rectangles depend on the pixel only through its distances to the border
(:func:`regions.border_key`), so both passes are prepared once per such key
as lists of instructions with every crop and padding worked out
(:class:`BoxPasses`); a pixel then runs little more than the tensor
operations themselves.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .conv_kernels import ConvKernels
from .linearisation import pointwise_with_derivative
from .local_graph import Affine, Combine, Concat, Conv, LocalGraph, Output, Pointwise, Source, apply_step
from .regions import Box, BorderKey, border_key, relative_boxes

# Instruction codes.
_SOURCE, _CONV, _POINTWISE, _OTHER, _SCALE, _PASS, _COMBINE, _CONCAT = range(8)

Derivative = Callable[[int, Box], torch.Tensor]  # (pointwise step, its rectangle) -> [1,C,h,w] derivative there
Cut = tuple[int, int, int, int] | None  # rows and columns to keep of a source's rectangle; None: all of it
Target = tuple[int, tuple[int, int, int, int] | None]  # (source step, zero padding into its rectangle or None)


class _Prepared:
    """The two passes of one border key, with rectangles relative to the output pixel."""

    def __init__(self, boxes: list[Box | None], image: Box, forward: list[tuple]) -> None:
        self.boxes = boxes
        self.image = image  # where the image lies relative to the output pixel
        self.forward = forward
        self.reverse: list[tuple] | None = None  # prepared on the first reverse pass, once channel counts are known


class BoxPasses:
    """Forward and reverse passes of one traced network over the rectangles of one output pixel."""

    def __init__(self, graph: LocalGraph, kernels: ConvKernels) -> None:
        self.graph = graph
        self.kernels = kernels
        self._prepared: dict[BorderKey, _Prepared] = {}
        self._channels: list[int] | None = None

    def linearise(self, row: int, col: int, mri: torch.Tensor, pet: torch.Tensor) -> tuple[Derivative, list[int]]:
        """Each step on its rectangle around output pixel (row, col): the pointwise derivatives there
        (as a :data:`Derivative`) and every step's channel count."""
        height, width = mri.shape[-2:]
        prepared = self._prepare(border_key(self.graph, row, col, height, width))
        values: list[torch.Tensor | None] = [None] * len(self.graph.steps)
        derivatives: dict[int, torch.Tensor] = {}
        images = (mri, pet)
        valid = self.kernels.valid
        with torch.no_grad():
            for instruction in prepared.forward:
                code, index = instruction[0], instruction[1]
                if code == _SOURCE:
                    box = prepared.boxes[index].shifted(row, col)
                    values[index] = images[instruction[2]][..., box.top : box.bottom, box.left : box.right]
                elif code == _CONV:
                    value = _cut(values[instruction[2]], instruction[3])
                    if instruction[4] is not None:
                        value = F.pad(value, instruction[4])
                    values[index] = valid(index, value)
                elif code == _POINTWISE:
                    values[index], derivatives[index] = pointwise_with_derivative(instruction[2], _cut(values[instruction[3]], instruction[4]))
                else:
                    inputs = [_cut(values[source], cut) for source, cut in instruction[3]]
                    values[index] = apply_step(instruction[2], inputs, images)
        if self._channels is None:
            self._channels = [0 if value is None else value.shape[1] for value in values]
        return (lambda step, box: derivatives[step]), self._channels

    def backward(
        self, row: int, col: int, height: int, width: int, derivative: Derivative, channels: list[int], like: torch.Tensor
    ) -> dict[int, tuple[torch.Tensor, Box]]:
        """Cotangents of output pixel (row, col) at the inputs, ``{input index: ([1,1,h,w], rectangle)}``.

        ``derivative`` gives a pointwise step's derivative on its rectangle,
        ``channels`` every step's channel count; ``like`` gives dtype and device.
        """
        self._channels = self._channels or channels
        prepared = self._prepare(border_key(self.graph, row, col, height, width))
        if prepared.reverse is None:
            prepared.reverse = self._reverse_instructions(prepared.boxes, prepared.image)
        boxes = prepared.boxes
        output = self.graph.output
        cotangents: list[torch.Tensor | None] = [None] * len(boxes)
        cotangents[output] = like.new_ones(1, channels[output], 1, 1)
        results: dict[int, tuple[torch.Tensor, Box]] = {}

        def accumulate(value: torch.Tensor, target: Target) -> None:
            source, padding = target
            if padding is not None:
                value = F.pad(value, padding)
            current = cotangents[source]
            cotangents[source] = value if current is None else current + value

        scattered = self.kernels.scattered
        for instruction in prepared.reverse:
            code, index = instruction[0], instruction[1]
            cotangent = cotangents[index]
            cotangents[index] = None
            if code == _CONV:
                accumulate(_cut(scattered(index, cotangent), instruction[2]), instruction[3])
            elif code == _POINTWISE:
                accumulate(cotangent * derivative(index, boxes[index].shifted(row, col)), instruction[2])
            elif code == _PASS:
                accumulate(cotangent, instruction[2])
            elif code == _SCALE:
                accumulate(instruction[2](cotangent), instruction[3])
            elif code == _COMBINE:
                accumulate(cotangent, instruction[2])
                accumulate(-cotangent if instruction[4] else cotangent, instruction[3])
            elif code == _CONCAT:
                for start, stop, target in instruction[2]:
                    accumulate(cotangent[:, start:stop], target)
            else:
                results[instruction[2]] = (cotangent, boxes[index].shifted(row, col))
        return results

    def _prepare(self, key: BorderKey) -> _Prepared:
        if key not in self._prepared:
            boxes = relative_boxes(self.graph, key)
            up, down, left, right = key
            image = Box(-up, -left, down + 1, right + 1)
            self._prepared[key] = _Prepared(boxes, image, self._forward_instructions(boxes, image))
        return self._prepared[key]

    def _forward_instructions(self, boxes: list[Box | None], image: Box) -> list[tuple]:
        instructions: list[tuple] = []
        for index, step in enumerate(self.graph.steps):
            box = boxes[index]
            if box is None:
                continue
            if isinstance(step, Source):
                instructions.append((_SOURCE, index, step.index))
            elif isinstance(step, Conv):
                source = step.sources[0]
                wanted = box.widened(step.reach)
                inside = _intersection(wanted, image)
                padding = (inside.left - wanted.left, wanted.right - inside.right, inside.top - wanted.top, wanted.bottom - inside.bottom)
                instructions.append((_CONV, index, source, _cut_of(boxes[source], inside), padding if any(padding) else None))
            elif isinstance(step, Pointwise):
                source = step.sources[0]
                instructions.append((_POINTWISE, index, step, source, _cut_of(boxes[source], box)))
            else:
                instructions.append((_OTHER, index, step, tuple((s, _cut_of(boxes[s], box)) for s in step.sources)))
        return instructions

    def _reverse_instructions(self, boxes: list[Box | None], image: Box) -> list[tuple]:
        graph = self.graph

        def target(source: int, box: Box) -> Target:
            # The source's rectangle serves other users too and can be wider: zero-pad into it.
            have = boxes[source]
            padding = (box.left - have.left, have.right - box.right, box.top - have.top, have.bottom - box.bottom)
            return source, (padding if any(padding) else None)

        instructions: list[tuple] = []
        for index in range(len(graph.steps) - 1, -1, -1):
            box, step = boxes[index], graph.steps[index]
            if box is None:
                continue
            if isinstance(step, Source):
                instructions.append((_SOURCE, index, step.index))
            elif isinstance(step, Conv):
                widened = box.widened(step.reach)
                inside = _intersection(widened, image)
                instructions.append((_CONV, index, _cut_of(widened, inside), target(step.sources[0], inside)))
            elif isinstance(step, Pointwise):
                instructions.append((_POINTWISE, index, target(step.sources[0], box)))
            elif isinstance(step, Affine):
                if index in self.kernels.folded_affines:
                    instructions.append((_PASS, index, target(step.sources[0], box)))
                else:
                    instructions.append((_SCALE, index, step.backward, target(step.sources[0], box)))
            elif isinstance(step, Combine):
                first, second = step.sources
                instructions.append((_COMBINE, index, target(first, box), target(second, box), step.subtract))
            elif isinstance(step, Concat):
                parts, offset = [], 0
                for source in step.sources:
                    parts.append((offset, offset + self._channels[source], target(source, box)))
                    offset += self._channels[source]
                instructions.append((_CONCAT, index, tuple(parts)))
            elif isinstance(step, Output):
                instructions.append((_PASS, index, target(step.sources[0], box)))
        return instructions


def _intersection(box: Box, other: Box) -> Box:
    return Box(max(box.top, other.top), max(box.left, other.left), min(box.bottom, other.bottom), min(box.right, other.right))


def _cut_of(have: Box, want: Box) -> Cut:
    """The slice bounds that take ``want`` out of a tensor covering ``have`` (None: the whole of it)."""
    if have == want:
        return None
    return (want.top - have.top, want.bottom - have.top, want.left - have.left, want.right - have.left)


def _cut(value: torch.Tensor, cut: Cut) -> torch.Tensor:
    return value if cut is None else value[..., cut[0] : cut[1], cut[2] : cut[3]]
