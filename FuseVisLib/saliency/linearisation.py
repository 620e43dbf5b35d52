"""A traced network linearised at one image pair, from one shared forward pass over the whole image.

Reverse-mode differentiation of a :class:`LocalGraph` needs, besides the
weights, only the derivative of every pointwise nonlinearity at its input.
One forward pass yields all of them. The maps are kept zero-padded and
channels-last (``[padded rows * padded cols, channels]``) so that windows
around any set of pixels can be gathered with one ``index_select``
(guidance images), and any rectangle is a view (Jacobian images).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .local_graph import LocalGraph, Pointwise, apply_step
from .regions import Box


@dataclass
class Linearisation:
    graph: LocalGraph
    height: int
    width: int
    padding: int  # every map is zero-padded by this many pixels on each side
    channels: list[int]  # per step
    derivatives: dict[int, torch.Tensor]  # pointwise step -> [padded pixels, C]: d output / d input
    inside: torch.Tensor  # [padded pixels]: 1 inside the image, 0 in the padding
    output: torch.Tensor  # the fused image, [1,1,H,W]
    _grids: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)  # step -> [1,C,H,W] view of its map

    @property
    def padded_width(self) -> int:
        return self.width + 2 * self.padding

    def derivative_on(self, step: int, box: Box) -> torch.Tensor:
        """A pointwise step's derivative on a rectangle of the image, as a [1,C,h,w] (channels-last) view."""
        grid = self._grids.get(step)
        if grid is None:
            p = self.padding
            padded = self.derivatives[step].view(self.height + 2 * p, self.width + 2 * p, -1)
            grid = self._grids[step] = padded[p : p + self.height, p : p + self.width].permute(2, 0, 1).unsqueeze(0)
        return grid[:, :, box.top : box.bottom, box.left : box.right]


def _flat_channels_last(value: torch.Tensor, padding: int) -> torch.Tensor:
    padded = F.pad(value, (padding,) * 4) if padding else value
    return padded[0].permute(1, 2, 0).reshape(-1, value.shape[1]).contiguous()


def pointwise_with_derivative(step: Pointwise, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The step's output and its derivative by its input (closed form where known, else autograd)."""
    if step.backward is not None:
        with torch.no_grad():
            result = step.forward(value)
            return result, step.backward.derivative(value, result)
    with torch.enable_grad():
        leaf = value.detach().requires_grad_()
        result = step.forward(leaf)
        # The reverse-mode derivative, with autograd's own conventions at kinks.
        (derivative,) = torch.autograd.grad(result, leaf, torch.ones_like(result))
    return result.detach(), derivative


def linearise(graph: LocalGraph, mri: torch.Tensor, pet: torch.Tensor, padding: int) -> Linearisation:
    """One forward pass over whole [1,1,H,W] images, with the network's own operations, keeping each
    pointwise step's derivative map (zero-padded by ``padding``)."""
    height, width = mri.shape[-2:]
    values: list[torch.Tensor | None] = [None] * len(graph.steps)
    remaining = [len(users) for users in graph.users]
    channels = [0] * len(graph.steps)
    derivatives: dict[int, torch.Tensor] = {}
    for index, step in enumerate(graph.steps):
        inputs = [values[s] for s in step.sources]
        if isinstance(step, Pointwise):
            value, derivative = pointwise_with_derivative(step, inputs[0])
            derivatives[index] = _flat_channels_last(derivative, padding)
        else:
            with torch.no_grad():
                value = apply_step(step, inputs, (mri, pet))
        values[index] = value
        channels[index] = value.shape[1]
        for source in step.sources:
            remaining[source] -= 1
            if remaining[source] == 0:
                values[source] = None
    inside = _flat_channels_last(torch.ones_like(mri), padding)[:, 0].contiguous()
    return Linearisation(graph, height, width, padding, channels, derivatives, inside, values[graph.output])
