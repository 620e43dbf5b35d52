"""The Jacobian images of one output pixel, computed only on the rectangles that pixel depends on.

Forward: each step of the traced network runs on its rectangle from
:func:`regions.relative_boxes` (shrinking towards the output), keeping what
each pointwise step's pullback reads there. Backward: the cotangent of the
output pixel flows back over the same rectangles; a convolution's
transposed kernel widens it by the kernel radius, and whatever falls outside
the image is cut off, which is exactly the network's zero padding having no
gradient. The cotangents reaching the inputs are the Jacobian images.

The rectangles depend on the pixel only through its distances to the border
(:func:`regions.border_key`), so both passes are prepared once per such key
as lists of instructions with every crop and padding worked out
(:class:`BoxPasses`); from the second pixel of a key on, a trace of those
instructions replays the tensor operations without the Python between them
(:class:`_Replay`). A session with a whole-image forward pass runs the
reverse pass alone, the same way.

A standalone Jacobian near the border runs on the interior's rectangles
instead, with every convolution's input masked to the image: zeros outside
it are the network's zero padding, and masking the transposed convolution's
output is that padding's reverse. So one trace serves every border pixel,
which are then as fast as interior ones from the second on (instead of
interpreted once per distance to the border, 5-28 ms), at the cost of the
interior's work and two masking operations per convolution.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Callable

import torch
import torch.nn.functional as F

from .conv_kernels import ConvKernels, in_layout
from .linearisation import pointwise_with_derivative
from .local_graph import Affine, Combine, Concat, Conv, LocalGraph, Output, Pointwise, Source, apply_step
from .regions import Box, BorderKey, border_key, interior_key, relative_boxes
from .threads import WIDE_MULTIPLY_ADDS, caller_threads

log = logging.getLogger(__name__)

# Instruction codes.
_SOURCE, _CONV, _POINTWISE, _OTHER, _SCALE, _PASS, _COMBINE, _CONCAT = range(8)

DerivativeOn = Callable[[int, Box], torch.Tensor]  # (pointwise step, its rectangle) -> [1,C,h,w] derivative there
# Border situations kept as traces; each holds a graph of a few hundred nodes. Pixels
# within the receptive radius of the border have situations of their own.
MAX_TRACED = 64
Cut = tuple[int, int, int, int] | None  # rows and columns to keep of a source's rectangle; None: all of it
Target = tuple[int, tuple[int, int, int, int] | None]  # (source step, zero padding into its rectangle or None)
Mask = tuple[int, int, int, int] | None  # rows and columns of the image-mask vectors a convolution's input takes; None: unmasked
MASKED: BorderKey = (-1, -1, -1, -1)  # the key of the masked passes every border pixel shares
# The reverse of padding by reflection or replication: (cotangent over the padded rectangle, a tensor of the
# unpadded shape, F.pad amounts) -> cotangent over the unpadded rectangle.
_FOLD_BORDER = {"reflect": torch.ops.aten.reflection_pad2d_backward, "replicate": torch.ops.aten.replication_pad2d_backward}


class _Replay:
    """One pass of one border situation: interpreted op by op for its first pixel, traced
    (``torch.jit.trace``) for its second, replayed for every later one, which skips the
    Python between the operations. Replays equal the interpreted pass to the bit."""

    def __init__(self) -> None:
        self.seen = False
        self.trace: torch.jit.ScriptFunction | None = None


class _Prepared:
    """The two passes of one border key, with rectangles relative to the output pixel."""

    def __init__(self, graph: LocalGraph, boxes: list[Box | None], image: Box | None, forward: list[tuple]) -> None:
        self.boxes = boxes
        self.image = image  # where the image lies relative to the output pixel; None: masked passes, anywhere
        self.forward = forward
        used = [(index, step) for index, step in enumerate(graph.steps) if boxes[index] is not None]
        self.sources = [(index, step.index) for index, step in used if isinstance(step, Source)]  # (step, input) the pixel depends on
        self.pointwise = [index for index, step in used if isinstance(step, Pointwise)]  # whose derivatives a reverse pass reads
        self.wide = False  # enough work for the caller's threads
        self.reverse: list[tuple] | None = None  # prepared on the first reverse pass, once channel counts are known
        self.both_passes = _Replay()  # forward and reverse pass (a standalone Jacobian)
        self.reverse_pass = _Replay()  # the reverse pass alone (a session's Jacobian)


class BoxPasses:
    """Forward and reverse passes of one traced network over the rectangles of one output pixel."""

    def __init__(self, graph: LocalGraph, kernels: ConvKernels) -> None:
        self.graph = graph
        self.kernels = kernels
        self._prepared: dict[BorderKey, _Prepared] = {}
        self._inside: dict[tuple, torch.Tensor] = {}  # (side length, reach, device) -> in-image flags with margins
        self._channels: list[int] | None = None
        self._traces = 0
        self._trace_failed = False
        self._closed_form = all(step.backward is not None for step in graph.steps if isinstance(step, Pointwise))

    def jacobian(self, row: int, col: int, mri: torch.Tensor, pet: torch.Tensor) -> dict[int, tuple[torch.Tensor, Box]]:
        """Both passes for output pixel (row, col) of [1,1,H,W] images: the cotangents at the inputs,
        ``{input index: ([1,1,h,w], rectangle)}`` (the Jacobian images, cropped).

        Interpreted op by op, or replayed (see :class:`_Replay`). A large
        Jacobian runs on the caller's threads (see :mod:`threads`).
        """
        height, width = mri.shape[-2:]
        key, masked = self._standalone_key(row, col, height, width)
        prepared = self._prepare(key)
        images = (mri, pet)
        inputs, boxes = [], []
        for step, source in prepared.sources:
            box = prepared.boxes[step].shifted(row, col)
            inside = box.clipped(height, width)
            crop = images[source][..., inside.top : inside.bottom, inside.left : inside.right]
            padding = _padding_of(inside, box)
            if padding is not None:  # masked passes: the image's zeros around it
                crop = F.pad(crop, padding)
            inputs.append(crop)
            boxes.append((box, inside))
        if masked:
            inputs += self._image_masks(row, col, height, width, mri.device)
        threads = caller_threads() if prepared.wide else contextlib.nullcontext()
        with threads:
            cotangents = self._run(prepared.both_passes, lambda *inputs: self._both_passes(prepared, *inputs), inputs, self.traceable)
        results = {}
        for (_, source), cotangent, (box, inside) in zip(prepared.sources, cotangents, boxes):
            results[source] = (_cut(cotangent, _cut_of(box, inside)), inside)
        return results

    def replayed(self, row: int, col: int, height: int, width: int) -> bool:
        """Whether :meth:`jacobian` of this pixel replays a trace: then it calls none of the model's modules, and
        needs neither eval mode nor frozen parameters (tracing does: it refuses constants that require grad)."""
        key, _ = self._standalone_key(row, col, height, width)
        prepared = self._prepared.get(key)
        return prepared is not None and prepared.both_passes.trace is not None

    def _standalone_key(self, row: int, col: int, height: int, width: int) -> tuple[BorderKey, bool]:
        """The prepared passes a standalone Jacobian of this pixel runs, and whether they are the masked ones."""
        key = border_key(self.graph, row, col, height, width)
        # Masking to the image stands for zero padding only; other borders keep a trace per distance to them.
        masked = self.traceable and self.graph.zero_padded and key != interior_key(self.graph)
        return (MASKED if masked else key), masked

    def _image_masks(self, row: int, col: int, height: int, width: int, device: torch.device) -> list[torch.Tensor]:
        """Which rows and which columns of the interior's widest rectangle around (row, col) lie in the image:
        views into a vector per image side length with the reach's margin of False at both ends."""
        masks = []
        for position, length, reach in ((row, height, self.graph.reach_to_inputs[0]), (col, width, self.graph.reach_to_inputs[1])):
            key = (length, reach, device)
            if key not in self._inside:
                inside = torch.zeros(length + 2 * reach, dtype=torch.bool, device=device)
                inside[reach : reach + length] = True
                self._inside[key] = inside
            masks.append(self._inside[key][position : position + 2 * reach + 1])
        return masks

    def backward(
        self, row: int, col: int, height: int, width: int, derivative_on: DerivativeOn, channels: list[int], like: torch.Tensor
    ) -> dict[int, tuple[torch.Tensor, Box]]:
        """The reverse pass alone, for a network linearised elsewhere (a whole-image forward pass):
        cotangents of output pixel (row, col) at the inputs, as :meth:`jacobian`.

        ``derivative_on`` gives a pointwise step's derivative on its rectangle,
        ``channels`` every step's channel count, ``like`` dtype and device.
        """
        self._channels = self._channels or channels
        prepared = self._prepare(border_key(self.graph, row, col, height, width))
        boxes, pointwise = prepared.boxes, prepared.pointwise
        derivatives = [derivative_on(index, boxes[index].shifted(row, col)) for index in pointwise]

        def reverse_pass(*derivatives: torch.Tensor) -> tuple[torch.Tensor, ...]:
            by_step = dict(zip(pointwise, derivatives))
            reached = self._reverse(prepared, lambda step, cotangent: cotangent * by_step[step], like)
            return tuple(reached[source] for _, source in prepared.sources)

        cotangents = self._run(prepared.reverse_pass, reverse_pass, derivatives, not self._trace_failed)
        return {source: (cotangent, boxes[step].shifted(row, col)) for (step, source), cotangent in zip(prepared.sources, cotangents)}

    def _run(self, replay: _Replay, passes: Callable[..., tuple[torch.Tensor, ...]], inputs: list[torch.Tensor], traceable: bool) -> tuple[torch.Tensor, ...]:
        # Replayed as recorded: the graph executor's optimisations (e.g. decomposing
        # BatchNorm) would change the rounding against the interpreted passes.
        with torch.no_grad(), torch.jit.optimized_execution(False):
            if replay.trace is None and replay.seen and traceable and self._traces < MAX_TRACED:
                self._trace(replay, passes, inputs)
            if replay.trace is not None:
                return replay.trace(*inputs)
            replay.seen = True
            return passes(*inputs)

    def _trace(self, replay: _Replay, passes: Callable[..., tuple[torch.Tensor, ...]], inputs: list[torch.Tensor]) -> None:
        """Trace ``passes`` into ``replay``; on failure, no more tracing for this network."""

        def traced_passes(*inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:  # the tracer wants a named function
            return passes(*inputs)

        with warnings.catch_warnings():
            # Shapes and layouts are constants of a border situation, as the tracer warns.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # torch.jit.trace is deprecated in favour of torch.compile (a C++ toolchain, 13 s per
            # network and shape, and its code ran FunFuseAn's passes in 2.4-2.9 ms against the
            # trace's 1.9-2.4) and torch.export (replays node by node from Python). Where tracing
            # goes, the passes stay interpreted.
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace.* deprecated", category=DeprecationWarning)
            try:
                replay.trace = torch.jit.trace(traced_passes, tuple(inputs), check_trace=False)
            except Exception as error:  # e.g. a user's layer whose tensors the tracer cannot hold
                log.info("Jacobian passes stay interpreted: torch.jit.trace failed (%s)", str(error).splitlines()[0])
                self._trace_failed = True
                return
        self._traces += 1

    @property
    def traceable(self) -> bool:
        """Whether both passes can be traced: the tracer has not failed, and every pointwise step has
        a closed-form pullback (autograd inside a trace is not replayable)."""
        return not self._trace_failed and self._closed_form

    def _both_passes(self, prepared: _Prepared, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        crops = inputs[: len(prepared.sources)]
        masks = inputs[len(prepared.sources) :] or None  # rows and columns in the image, for masked passes
        values, saved = self._forward(prepared, crops, masks)
        steps = self.graph.steps

        def pullback(step: int, cotangent: torch.Tensor) -> torch.Tensor:
            # The reverse pass keeps cotangents channels-last (see conv_kernels); elementwise
            # kernels are fast only when both operands share a layout.
            operand = in_layout(saved[step], _layout_of(cotangent))
            backward = steps[step].backward
            return cotangent * operand if backward is None else backward.vjp(cotangent, operand)

        reached = self._reverse(prepared, pullback, crops[0], masks)
        return tuple(reached[source] for _, source in prepared.sources)

    def _forward(self, prepared: _Prepared, crops, masks) -> tuple[list[torch.Tensor | None], dict[int, torch.Tensor]]:
        """Every step on its rectangle, and what each pointwise step's pullback reads."""
        values: list[torch.Tensor | None] = [None] * len(self.graph.steps)
        saved: dict[int, torch.Tensor] = {}
        for (step, _), crop in zip(prepared.sources, crops):
            values[step] = crop
        valid = self.kernels.valid
        for instruction in prepared.forward:
            code, index = instruction[0], instruction[1]
            if code == _CONV:
                value = _cut(values[instruction[2]], instruction[3])
                if instruction[4] is not None:  # the image border: the network's own padding
                    value = F.pad(value, instruction[4]) if instruction[6] == "zeros" else F.pad(value, instruction[4], mode=instruction[6])
                if instruction[5] is not None:
                    value = _masked(value, masks, instruction[5])
                values[index] = valid(index, value)
            elif code == _SCALE:
                values[index] = instruction[2](_cut(values[instruction[3]], instruction[4]))
            elif code == _PASS:
                values[index] = _cut(values[instruction[2]], instruction[3])
            elif code == _POINTWISE:
                step, value = instruction[2], _cut(values[instruction[3]], instruction[4])
                if step.backward is None:
                    values[index], saved[index] = pointwise_with_derivative(step, value)
                else:
                    values[index] = step.forward(value)
                    saved[index] = value if step.backward.saves_input else values[index]
            elif code != _SOURCE:
                inputs = [_cut(values[source], cut) for source, cut in instruction[3]]
                values[index] = apply_step(instruction[2], inputs, crops)
        if self._channels is None:
            self._channels = [0 if value is None else value.shape[1] for value in values]
        return values, saved

    def _reverse(
        self, prepared: _Prepared, pullback: Callable[[int, torch.Tensor], torch.Tensor], like: torch.Tensor, masks=None
    ) -> dict[int, torch.Tensor]:
        """The cotangent of the output pixel carried back to each input: ``{input index: [1,1,h,w]}``."""
        if prepared.reverse is None:
            prepared.reverse = self._reverse_instructions(prepared.boxes, prepared.image)
        output = self.graph.output
        cotangents: list[torch.Tensor | None] = [None] * len(prepared.boxes)
        cotangents[output] = like.new_ones(1, self._channels[output], 1, 1)
        results: dict[int, torch.Tensor] = {}

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
                value = scattered(index, cotangent)
                if instruction[5] is None:  # zeros beyond the image border have no gradient
                    value = _cut(value, instruction[2])
                else:  # a reflected or replicated border hands its cotangent back to the pixels it copied
                    border, padding = instruction[5]
                    value = _FOLD_BORDER[border](value, _cut(value, instruction[2]), padding)
                if instruction[4] is not None:
                    value = _masked(value, masks, instruction[4])
                accumulate(value, instruction[3])
            elif code == _POINTWISE:
                accumulate(pullback(index, cotangent), instruction[2])
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
                results[instruction[2]] = cotangent
        return results

    def _prepare(self, key: BorderKey) -> _Prepared:
        if key not in self._prepared:
            if key == MASKED:
                boxes, image = relative_boxes(self.graph, interior_key(self.graph)), None
            else:
                boxes = relative_boxes(self.graph, key)
                up, down, left, right = key
                image = Box(-up, -left, down + 1, right + 1)
            prepared = _Prepared(self.graph, boxes, image, self._forward_instructions(boxes, image))
            multiply_adds = sum(
                box.pixels * step.module.weight.numel()
                for step, box in zip(self.graph.steps, boxes)
                if isinstance(step, Conv) and box is not None
            )
            prepared.wide = multiply_adds >= WIDE_MULTIPLY_ADDS
            self._prepared[key] = prepared
        return self._prepared[key]

    def _forward_instructions(self, boxes: list[Box | None], image: Box | None) -> list[tuple]:
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
                inside = wanted if image is None else _intersection(wanted, image)
                instructions.append((
                    _CONV, index, source, _cut_of(boxes[source], inside), _padding_of(inside, wanted), self._mask_of(wanted, image),
                    step.border,
                ))
            elif isinstance(step, Pointwise):
                source = step.sources[0]
                instructions.append((_POINTWISE, index, step, source, _cut_of(boxes[source], box)))
            elif isinstance(step, Affine) and index in self.kernels.folded_affines:  # into the convolution before it
                source = step.sources[0]
                instructions.append((_PASS, index, source, _cut_of(boxes[source], box)))
            elif isinstance(step, Affine):
                source = step.sources[0]
                instructions.append((_SCALE, index, step.forward, source, _cut_of(boxes[source], box)))
            else:
                instructions.append((_OTHER, index, step, tuple((s, _cut_of(boxes[s], box)) for s in step.sources)))
        return instructions

    def _mask_of(self, box: Box, image: Box | None) -> Mask:
        """For masked passes (no ``image``): where ``box`` lies in the image-mask vectors, which start at the reach."""
        if image is not None:
            return None
        reach_y, reach_x = self.graph.reach_to_inputs
        return (box.top + reach_y, box.bottom + reach_y, box.left + reach_x, box.right + reach_x)

    def _reverse_instructions(self, boxes: list[Box | None], image: Box | None) -> list[tuple]:
        graph = self.graph

        def target(source: int, box: Box) -> Target:
            # The source's rectangle serves other users too and can be wider: zero-pad into it.
            return source, _padding_of(box, boxes[source])

        instructions: list[tuple] = []
        for index in range(len(graph.steps) - 1, -1, -1):
            box, step = boxes[index], graph.steps[index]
            if box is None:
                continue
            if isinstance(step, Source):
                instructions.append((_SOURCE, index, step.index))
            elif isinstance(step, Conv):
                widened = box.widened(step.reach)
                inside = widened if image is None else _intersection(widened, image)
                padding = _padding_of(inside, widened)
                fold = None if step.border == "zeros" or padding is None else (step.border, padding)
                instructions.append((_CONV, index, _cut_of(widened, inside), target(step.sources[0], inside), self._mask_of(widened, image), fold))
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


def _layout_of(value: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if value.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def _intersection(box: Box, other: Box) -> Box:
    return Box(max(box.top, other.top), max(box.left, other.left), min(box.bottom, other.bottom), min(box.right, other.right))


def _cut_of(have: Box, want: Box) -> Cut:
    """The slice bounds that take ``want`` out of a tensor covering ``have`` (None: the whole of it)."""
    if have == want:
        return None
    return (want.top - have.top, want.bottom - have.top, want.left - have.left, want.right - have.left)


def _padding_of(have: Box, want: Box) -> tuple[int, int, int, int] | None:
    """The zero padding (``F.pad`` order) that widens a tensor covering ``have`` to ``want`` (None: none)."""
    padding = (have.left - want.left, want.right - have.right, have.top - want.top, want.bottom - have.bottom)
    return padding if any(padding) else None


def _masked(value: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor], mask: tuple[int, int, int, int]) -> torch.Tensor:
    """``value`` with zeros where its rectangle leaves the image (``masks``: rows and columns inside it)."""
    rows, cols = masks
    inside = rows[mask[0] : mask[1], None] & cols[None, mask[2] : mask[3]]
    return torch.where(inside, value, 0.0)


def _cut(value: torch.Tensor, cut: Cut) -> torch.Tensor:
    return value if cut is None else value[..., cut[0] : cut[1], cut[2] : cut[3]]
