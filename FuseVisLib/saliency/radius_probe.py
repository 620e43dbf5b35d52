"""Checking a declared receptive radius against the model itself, before trusting a fast path.

On a random image a little larger than the declared receptive field, the
whole-image Jacobian of a few output pixels (centre, corner, edges) is
computed with autograd. Inputs farther from the output pixel than the
receptive radius cannot influence it, so their gradient is exactly zero;
any nonzero gradient farther out means the declared radius is too small
(or the network has global operations). The fast Jacobian is compared
with the same autograd images, which also catches padding other than
zeros or a trace that does not reproduce the network.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .inputs import ImagePair
from .naive import whole_image_jacobian
from .receptive_radius import MODALITIES, DeclaredRadius

FastJacobian = Callable[[ImagePair, int, int], tuple[torch.Tensor, torch.Tensor]]

# Float32 paths agree to ~1e-7 of the gradient's size; a wrong padding or trace is off by O(1).
RELATIVE_TOLERANCE = 1e-4
PROBE_SEED = 20240


@dataclass(frozen=True)
class ProbeResult:
    agrees: bool
    measured: dict[str, int]  # farthest input pixel with a nonzero gradient, per input (-1: none)
    max_error: float  # fast Jacobian vs autograd, relative to the largest gradient
    message: str


def _support(gradient: torch.Tensor, row: int, col: int) -> int:
    rows, cols = torch.nonzero(gradient, as_tuple=True)
    if rows.numel() == 0:
        return -1
    return int(torch.maximum((rows - row).abs(), (cols - col).abs()).max())


def probe_pixels(size: int) -> list[tuple[int, int]]:
    centre = size // 2
    return [(centre, centre), (0, 0), (size - 1, centre), (centre, size - 1), (size - 1, size - 1)]


def probe_radius(model: nn.Module, declared: DeclaredRadius, fast_jacobian: FastJacobian, device, dtype) -> ProbeResult:
    """Compare ``declared`` and ``fast_jacobian`` with autograd on a random probe image (model in eval mode)."""
    radius = declared.radius
    margin = max(4, radius // 2 + 2)
    size = 2 * (radius + margin) + 1
    generator = torch.Generator().manual_seed(PROBE_SEED)
    images = ImagePair(
        torch.rand(1, 1, size, size, generator=generator).to(device=device, dtype=dtype),
        torch.rand(1, 1, size, size, generator=generator).to(device=device, dtype=dtype),
    )
    measured = {name: -1 for name in MODALITIES}
    worst_error = 0.0
    for row, col in probe_pixels(size):
        reference = whole_image_jacobian(model, images, row, col)
        fast = fast_jacobian(images, row, col)
        scale = max(float(g.abs().max()) for g in reference) or 1.0
        for name, exact, quick in zip(MODALITIES, reference, fast):
            measured[name] = max(measured[name], _support(exact, row, col))
            worst_error = max(worst_error, float((exact - quick).abs().max()) / scale)
    too_far = {name: measured[name] for name in MODALITIES if measured[name] > declared.per_input[name]}
    if too_far:
        found = ", ".join(f"{name.upper()} pixels {d} px away" for name, d in too_far.items())
        message = (
            f"radius probe disagrees: {declared.source} says {declared.per_input} px but {found} change the output; "
            "fix the declared receptive radius (or declare None for networks with global operations)"
        )
        return ProbeResult(False, measured, worst_error, message)
    if worst_error > RELATIVE_TOLERANCE:
        message = (
            f"radius probe disagrees: the fast Jacobian differs from autograd by {worst_error:.1e} of the gradient "
            "(padding other than zeros, or an operation the trace misreads); using the exact per-pixel path"
        )
        return ProbeResult(False, measured, worst_error, message)
    return ProbeResult(True, measured, worst_error, f"radius probe agrees: influence reaches {measured} px within the declared {declared.per_input}")
