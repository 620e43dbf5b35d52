"""Reverse-mode differentiation restricted to small windows around a batch of anchor pixels.

For an anchor pixel p, the cotangent of the output pixel y_p at a step of
the network is nonzero only within that step's distance to the output
(``reach_to_output``). Every step's cotangent is kept as a window
``[B, C, 2*ry+1, 2*rx+1]`` centred on its anchor: convolutions become
transposed convolutions of the window (cropped to the radius the next step
needs), pointwise nonlinearities multiply by derivative windows gathered
from a :class:`Linearisation`, and positions outside the image (the
network's zero padding) are masked out; where a convolution pads by
reflection or replication, the windows crossing the border are computed
over the convolution's whole spread and what lies beyond the border is
folded back onto the pixels it copied.

For guidance images every pixel is an anchor, and each window is also
clipped to the step's distance from the inputs (its value cannot depend on
x_p farther out), so the windows reaching the inputs are single pixels,
dy_p/dx_p. This is the lattice-probe computation with the work outside the
region each probe reaches skipped: pixels of one lattice colour have
disjoint windows, so batching windows is batching probes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .conv_kernels import ConvKernels
from .linearisation import Linearisation
from .local_graph import Affine, Combine, Concat, Conv, Output, Pointwise, Reach, Source


class Windows:
    """Anchor pixels and the flat indices of the windows around them in the padded maps."""

    def __init__(self, linearisation: Linearisation, rows: torch.Tensor, cols: torch.Tensor, channels_last: bool = True) -> None:
        self.linearisation = linearisation
        self.channels_last = channels_last
        padding, width = linearisation.padding, linearisation.padded_width
        self.count = rows.numel()
        self.rows, self.cols = rows.reshape(-1), cols.reshape(-1)
        self.base = ((rows + padding) * width + (cols + padding)).reshape(-1, 1, 1)
        self._indices: dict[Reach, torch.Tensor] = {}
        self._masks: dict[Reach, torch.Tensor | None] = {}
        self._crossing: dict[Reach, torch.Tensor | None] = {}
        # (axis, window radius, border) -> where each position of the crossing windows lands along that axis
        self._folds: dict[tuple[int, Reach, str], torch.Tensor] = {}

    def _index(self, radius: Reach) -> torch.Tensor:
        if radius not in self._indices:
            device = self.base.device
            if max(radius) > self.linearisation.padding:
                raise ValueError(f"window radius {radius} exceeds the padding {self.linearisation.padding}")
            dy = torch.arange(-radius[0], radius[0] + 1, device=device).view(-1, 1)
            dx = torch.arange(-radius[1], radius[1] + 1, device=device).view(1, -1)
            self._indices[radius] = (self.base + dy * self.linearisation.padded_width + dx).reshape(-1)
        return self._indices[radius]

    def gather(self, flat_map: torch.Tensor, radius: Reach) -> torch.Tensor:
        """Windows of a [(H+2p)*(W+2p), C] map as a channels-last [B, C, 2ry+1, 2rx+1] tensor."""
        window = flat_map.index_select(0, self._index(radius))
        window = window.view(self.count, 2 * radius[0] + 1, 2 * radius[1] + 1, -1).permute(0, 3, 1, 2)
        return window if self.channels_last else window.contiguous()

    def mask(self, radius: Reach) -> torch.Tensor | None:
        """1 where a window position lies inside the image; None if every position does."""
        if radius not in self._masks:
            mask = self.gather(self.linearisation.inside.view(-1, 1), radius)
            self._masks[radius] = None if bool(mask.min() > 0) else mask
        return self._masks[radius]

    def crossing(self, radius: Reach) -> torch.Tensor | None:
        """Indices of the windows of ``radius`` that reach beyond the image border (None: none do)."""
        if radius not in self._crossing:
            height, width = self.linearisation.height, self.linearisation.width
            beyond = (self.rows < radius[0]) | (self.rows > height - 1 - radius[0]) | (self.cols < radius[1]) | (self.cols > width - 1 - radius[1])
            self._crossing[radius] = torch.nonzero(beyond).flatten() if bool(beyond.any()) else None
        return self._crossing[radius]

    def fold(self, value: torch.Tensor, radius: Reach, border: str) -> torch.Tensor:
        """The windows :meth:`crossing` selects, ``[b, C, 2ry+1, 2rx+1]``, with what lies beyond the image border
        handed back to the pixels a reflected or replicated border copied there (zero beyond it afterwards).
        Padding by reflection or replication is separable, so rows fold first, then columns; a copied pixel
        lies between the border and the position it fills, hence inside the same window."""
        selected = self.crossing(radius)
        for axis, (anchors, size) in enumerate(((self.rows, self.linearisation.height), (self.cols, self.linearisation.width))):
            key = (axis, radius, border)  # the whole radius: it decides which windows cross
            if key not in self._folds:
                offsets = torch.arange(-radius[axis], radius[axis] + 1, device=anchors.device)
                anchor = anchors[selected][:, None]
                position = anchor + offsets[None, :]
                if border == "reflect":
                    landed = torch.where(position < 0, -position, torch.where(position > size - 1, 2 * (size - 1) - position, position))
                else:  # replicate
                    landed = position.clamp(0, size - 1)
                self._folds[key] = landed - anchor + radius[axis]
            shape = [len(selected), 1, 1, 1]
            shape[2 + axis] = -1
            index = self._folds[key].view(shape).expand_as(value)
            value = torch.zeros_like(value).scatter_add_(2 + axis, index, value)
        return value


def _fit(value: torch.Tensor, have: Reach, want: Reach) -> torch.Tensor:
    """Crop or zero-pad a centred window from radius ``have`` to radius ``want``."""
    if have == want:
        return value
    crop_y, crop_x = max(0, have[0] - want[0]), max(0, have[1] - want[1])
    if crop_y or crop_x:
        value = value[..., crop_y : value.shape[-2] - crop_y, crop_x : value.shape[-1] - crop_x]
    pad_y, pad_x = max(0, want[0] - have[0]), max(0, want[1] - have[1])
    if pad_y or pad_x:
        value = F.pad(value, (pad_x, pad_x, pad_y, pad_y))
    return value


def backward_windows(
    linearisation: Linearisation,
    windows: Windows,
    radii: list[Reach | None],
    kernels: ConvKernels,
    channels_last: bool = True,
) -> dict[int, torch.Tensor]:
    """Cotangent windows of the output pixel at each anchor, per input (0: MRI, 1: PET).

    ``radii[i]`` is the window radius kept at step ``i`` (None: not needed).
    Returns ``{input index: [B, 1, 2ry+1, 2rx+1]}``; an input the output does
    not depend on is absent.
    """
    graph = linearisation.graph
    steps = graph.steps
    device = linearisation.inside.device
    dtype = linearisation.output.dtype
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    cotangents: dict[int, tuple[torch.Tensor, Reach]] = {}
    results: dict[int, torch.Tensor] = {}
    masked_sources = graph.needs_border_mask

    def accumulate(source: int, value: torch.Tensor, radius: Reach) -> None:
        target = radii[source]
        if target is None:
            return
        value = _fit(value, radius, target)
        if source in cotangents:
            value = cotangents[source][0] + value
        cotangents[source] = (value, target)

    output = graph.output
    seed = torch.ones(windows.count, linearisation.channels[output], 1, 1, device=device, dtype=dtype)
    cotangents[output] = (seed.contiguous(memory_format=memory_format), (0, 0))
    for index in range(len(steps) - 1, -1, -1):
        if index not in cotangents:
            continue
        cotangent, radius = cotangents.pop(index)
        step = steps[index]
        if isinstance(step, Source):
            results[step.index] = cotangent
        elif isinstance(step, Conv):
            source = step.sources[0]
            if radii[source] is None:
                continue
            reach = step.reach
            kept = (min(radii[source][0], radius[0] + reach[0]), min(radii[source][1], radius[1] + reach[1]))
            cotangent = cotangent.contiguous(memory_format=memory_format)
            crop = (radius[0] + reach[0] - kept[0], radius[1] + reach[1] - kept[1])
            padding = (2 * reach[0] - crop[0], 2 * reach[1] - crop[1])
            value = kernels.transposed_convolution(index, step.module.groups, cotangent, padding)
            spread = (radius[0] + reach[0], radius[1] + reach[1])
            if step.border != "zeros":
                crossing = windows.crossing(spread)
                if crossing is not None:
                    # Those windows again over the whole spread: positions beyond ``kept`` may fold back inside it.
                    whole = kernels.transposed_convolution(index, step.module.groups, cotangent.index_select(0, crossing), (2 * reach[0], 2 * reach[1]))
                    value = value.index_copy(0, crossing, _fit(windows.fold(whole, spread, step.border), spread, kept))
                accumulate(source, value, kept)
                continue
            mask = windows.mask(kept) if masked_sources[source] else None
            accumulate(source, value if mask is None else value * mask, kept)
        elif isinstance(step, Pointwise):
            accumulate(step.sources[0], cotangent * windows.gather(linearisation.derivatives[index], radius), radius)
        elif isinstance(step, Affine):
            accumulate(step.sources[0], cotangent if index in kernels.folded_affines else step.backward(cotangent), radius)
        elif isinstance(step, Combine):
            accumulate(step.sources[0], cotangent, radius)
            accumulate(step.sources[1], -cotangent if step.subtract else cotangent, radius)
        elif isinstance(step, Concat):
            offset = 0
            for source in step.sources:
                count = linearisation.channels[source]
                accumulate(source, cotangent[:, offset : offset + count], radius)
                offset += count
        elif isinstance(step, Output):
            accumulate(step.sources[0], cotangent, radius)
    return results
