"""The scatterplot of guidance MRI vs guidance PET (paper 3.2.4) as a small PNG for the page.

The Logic keeps the points in two MRML table nodes (every pixel of the
slice, and the principal pixel's neighbourhood). Drawing them with
matplotlib would take longer than a mouse move allows, so the points are
rasterised with numpy into a palette image: the slice's points (black)
are drawn once per slice and method, the neighbourhood (green) on a copy
for every move.
"""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageDraw
from vtkmodules.util.numpy_support import vtk_to_numpy

WIDTH, HEIGHT = 340, 280
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 46, 10, 10, 34
# A palette image: one byte per pixel encodes as PNG about ten times faster than RGB.
PALETTE = {"background": (255, 255, 255), "slice": (30, 30, 30), "hood": (0, 170, 0), "axis": (90, 90, 90), "text": (0, 0, 0)}
INDEX = {name: index for index, name in enumerate(PALETTE)}
FLAT_PALETTE = [channel for colour in PALETTE.values() for channel in colour]


def table_columns(table_node) -> tuple[np.ndarray, np.ndarray]:
    """The two columns (guidance MRI, guidance PET) of a FuseVis scatter table node."""
    table = table_node.GetTable()
    if table.GetNumberOfColumns() < 2 or table.GetNumberOfRows() == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    return vtk_to_numpy(table.GetColumn(0)).astype(np.float64), vtk_to_numpy(table.GetColumn(1)).astype(np.float64)


class ScatterPlot:
    """Renders the scatterplot; the slice's points are cached between moves."""

    def __init__(self) -> None:
        self._key = None
        self._base: np.ndarray | None = None  # palette indices, HEIGHT x WIDTH
        self._ranges: tuple[tuple[float, float], tuple[float, float]] | None = None

    def render(self, key, slice_points, hood_points) -> bytes | None:
        """PNG bytes, or None when the slice has no guidance yet. ``key`` names the slice's point set."""
        x, y = slice_points
        if x.size == 0:
            self._key = None
            return None
        if key != self._key or self._base is None:
            self._ranges = (_range(x), _range(y))
            self._base = self._axes()
            self._dots(self._base, x, y, INDEX["slice"], 1)
            self._key = key
        pixels = self._base.copy()
        hood_x, hood_y = hood_points
        if hood_x.size:
            self._dots(pixels, hood_x, hood_y, INDEX["hood"], 2)
        image = Image.fromarray(pixels, mode="P")
        image.putpalette(FLAT_PALETTE)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    def _to_pixels(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (x0, x1), (y0, y1) = self._ranges
        width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
        height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
        px = MARGIN_LEFT + (x - x0) / (x1 - x0) * (width - 1)
        py = MARGIN_TOP + (1 - (y - y0) / (y1 - y0)) * (height - 1)
        return np.rint(px).astype(int), np.rint(py).astype(int)

    def _dots(self, pixels: np.ndarray, x: np.ndarray, y: np.ndarray, index: int, radius: int) -> None:
        px, py = self._to_pixels(x, y)
        for dy in range(-radius + 1, radius):
            for dx in range(-radius + 1, radius):
                pixels[np.clip(py + dy, 0, HEIGHT - 1), np.clip(px + dx, 0, WIDTH - 1)] = index

    def _axes(self) -> np.ndarray:
        image = Image.new("P", (WIDTH, HEIGHT), INDEX["background"])
        draw = ImageDraw.Draw(image)
        axis, text = INDEX["axis"], INDEX["text"]
        left, top, right, bottom = MARGIN_LEFT, MARGIN_TOP, WIDTH - MARGIN_RIGHT, HEIGHT - MARGIN_BOTTOM
        draw.rectangle((left - 1, top - 1, right, bottom), outline=axis)
        (x0, x1), (y0, y1) = self._ranges
        draw.text((left, bottom + 3), f"{x0:.3g}", fill=axis)
        draw.text((right, bottom + 3), f"{x1:.3g}", fill=axis, anchor="ra")
        draw.text(((left + right) // 2, bottom + 18), "Guidance MRI", fill=text, anchor="ma")
        draw.text((left - 3, bottom), f"{y0:.3g}", fill=axis, anchor="rb")
        draw.text((left - 3, top), f"{y1:.3g}", fill=axis, anchor="ra")
        label = Image.new("P", (90, 12), INDEX["background"])
        ImageDraw.Draw(label).text((45, 0), "Guidance PET", fill=text, anchor="ma")
        image.paste(label.rotate(90, expand=True), (2, (top + bottom) // 2 - 45))
        return np.array(image, dtype=np.uint8)


def _range(values: np.ndarray) -> tuple[float, float]:
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return low - 0.5, high + 0.5
    pad = 0.03 * (high - low)
    return low - pad, high + pad


def data_url(png: bytes | None) -> str:
    """An ``img`` source for the page ("" for no image)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii") if png else ""
