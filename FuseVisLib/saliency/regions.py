"""Rectangles of the image that each step of a :class:`LocalGraph` must compute for one output pixel.

Going from the output pixel back to the inputs, every convolution widens
the rectangle by its kernel radius; rectangles are clipped at the true image
border, where the network's own zero padding applies. Evaluating each step
only on its rectangle (valid convolutions inside the image, zero padding only
at the border) reproduces the whole-image output at that pixel exactly.
"""
from __future__ import annotations

from typing import NamedTuple

from .local_graph import LocalGraph


class Box(NamedTuple):
    """Half-open pixel rectangle [top, bottom) x [left, right)."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def pixels(self) -> int:
        return (self.bottom - self.top) * (self.right - self.left)

    def widened(self, reach: tuple[int, int]) -> "Box":
        return Box(self.top - reach[0], self.left - reach[1], self.bottom + reach[0], self.right + reach[1])

    def clipped(self, height: int, width: int) -> "Box":
        return Box(max(0, self.top), max(0, self.left), min(height, self.bottom), min(width, self.right))

    def shifted(self, rows: int, cols: int) -> "Box":
        return Box(self.top + rows, self.left + cols, self.bottom + rows, self.right + cols)


BorderKey = tuple[int, int, int, int]  # pixels up, down, left, right to the image border, capped at the reach


def border_key(graph: LocalGraph, row: int, col: int, height: int, width: int) -> BorderKey:
    """What the rectangles of pixel (row, col) depend on: its distances to the border, capped at the inputs' reach.

    Pixels with the same key have the same rectangles up to a shift, so work
    that depends only on the rectangles' shapes can be prepared once per key.
    """
    reach_y, reach_x = graph.reach_to_inputs
    return (min(row, reach_y), min(height - 1 - row, reach_y), min(col, reach_x), min(width - 1 - col, reach_x))


def interior_key(graph: LocalGraph) -> BorderKey:
    """The border key of every pixel at least the inputs' reach away from the border."""
    reach_y, reach_x = graph.reach_to_inputs
    return (reach_y, reach_y, reach_x, reach_x)


def relative_boxes(graph: LocalGraph, key: BorderKey) -> list[Box | None]:
    """Per step, its rectangle relative to the output pixel (None: the output does not depend on the step).

    A step's rectangle is the output pixel widened by the step's reach to the
    output (the largest over the paths from it), clipped at the border.
    """
    up, down, left, right = key
    return [
        None if r is None else Box(-min(r[0], up), -min(r[1], left), min(r[0], down) + 1, min(r[1], right) + 1)
        for r in graph.window_radii
    ]
