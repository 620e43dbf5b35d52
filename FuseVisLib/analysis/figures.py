"""Figure sheets laid out like the paper's Figures 4-8: one row per method, each principal pixel's region beside.

For every principal pixel P1, P2, ... a sheet shows the whole slice with a
red box around the pixel's neighbourhood, then the zoomed neighbourhood with
the pixel marked, as the paper places "the zoomed image ... on the right of
the unzoomed image":

* ``fused``        (Figure 4): MRI, PET, then the fused image of each method;
* ``guidance``     (Figure 5): guidance MRI and guidance PET (gamma2);
* ``guidance_rgb`` (Figure 6): guidance RGB;
* ``jacobians``    (Figure 7): zoomed Jacobian MRI and PET (gamma1);
* ``scatter``      (Figure 8): the scatterplots of guidance MRI against
  guidance PET, the neighbourhood in green.

Guidance and Jacobian images of one method share one brightness scale for
both modalities (the paper compares them "on an absolute scale"), so the
brighter of the two is the more influential; scales differ between methods.
Colours come from :mod:`FuseVisLib.saliency.rendering` (orange positive,
blue negative); the scatterplots are its renders. Sheets are assembled with
Pillow, pixels enlarged without smoothing, which keeps the whole of a sheet
cheaper than one matplotlib figure.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..saliency import guidance_rgb, neighbourhood_mask, signed_rgb
from .display import Display
from .method_result import MethodResult
from .pixels_of_interest import PixelOfInterest

PANEL_PIXELS = 200  # images are enlarged by whole factors up to about this size
SCATTER_PIXELS = 320
GAP = 6
FONT_SIZE = 14
RED = (255, 40, 40)
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)

RowImage = Callable[[PixelOfInterest], np.ndarray]  # stored-orientation RGB (H, W, 3) in [0, 1] for a pixel's slice


class SheetPainter:
    """Draws the sheets of one case; images and pixels are given as stored (``mri``, ``pet``: all slices)."""

    def __init__(
        self,
        mri: np.ndarray,
        pet: np.ndarray,
        results: Sequence[MethodResult],
        pixels: Sequence[PixelOfInterest],
        display: Display,
        half_width: int,
        gamma_jacobian: float,
        gamma_guidance: float,
    ) -> None:
        self.mri, self.pet, self.results, self.pixels = mri, pet, list(results), list(pixels)
        self.volume, self.display, self.half_width = display.caption is not None, display, half_width
        self.gamma_jacobian, self.gamma_guidance = gamma_jacobian, gamma_guidance

    def write_all(self, folder: Path, scatter_files: dict[tuple[str, PixelOfInterest], Path]) -> dict[str, Path]:
        """Every sheet as ``<folder>/<name>.png``; returns name -> path."""
        return {
            "fused": self.fused(folder / "fused.png"),
            "guidance": self.guidance(folder / "guidance.png"),
            "guidance_rgb": self.guidance_rgb(folder / "guidance_rgb.png"),
            "jacobians": self.jacobians(folder / "jacobians.png"),
            "scatter": self.scatter(folder / "scatter.png", scatter_files),
        }

    def fused(self, path: Path) -> Path:
        rows: list[tuple[str, RowImage]] = [
            ("MRI", lambda p: _grey(self.mri[p.slice])),
            ("PET", lambda p: _hot(self.pet[p.slice])),
        ]
        rows += [(result.name, self._fused_of(result)) for result in self.results]
        return self._region_sheet(path, "Fused images (paper Figure 4)", rows, [""])

    def guidance(self, path: Path) -> Path:
        rows = [(result.name, self._guidance_pair_of(result)) for result in self.results]
        title = f"Guidance images, gamma2 = {self.gamma_guidance:g}, one scale per method (paper Figure 5)"
        return self._region_sheet(path, title, rows, ["guidance MRI", "guidance PET"])

    def guidance_rgb(self, path: Path) -> Path:
        rows = [(result.name, self._guidance_rgb_of(result)) for result in self.results]
        title = "Guidance RGB: red = guidance MRI, green = guidance PET, blue = fused (paper Figure 6)"
        return self._region_sheet(path, title, rows, [""])

    def jacobians(self, path: Path) -> Path:
        headers = [f"P{i + 1} Jacobian {modality}, zoom" for i in range(len(self.pixels)) for modality in ("MRI", "PET")]
        rows = []
        for result in self.results:
            panels = []
            for pixel in self.pixels:
                pair = signed_rgb(np.concatenate(result.jacobians[pixel], axis=1), self.gamma_jacobian)
                for half in _halves(pair, 2):
                    panels.append(self._zoom(half, pixel))
            rows.append((result.name, panels))
        title = f"Jacobian images, gamma1 = {self.gamma_jacobian:g}, one scale per method and pixel (paper Figure 7)"
        return _compose(path, self._title(title), headers, rows)

    def scatter(self, path: Path, scatter_files: dict[tuple[str, PixelOfInterest], Path]) -> Path:
        headers = [f"P{i + 1}" for i in range(len(self.pixels))]
        rows = []
        for result in self.results:
            panels = []
            for pixel in self.pixels:
                with Image.open(scatter_files[(result.name, pixel)]) as picture:
                    picture = picture.convert("RGB")
                    scale = SCATTER_PIXELS / max(picture.size)
                    panels.append(picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.Resampling.LANCZOS))
            rows.append((result.name, panels))
        title = "Guidance MRI (x) against guidance PET (y); green: the zoomed region (paper Figure 8)"
        return _compose(path, self._title(title), headers, rows)

    # Images per row, for the slice of a pixel ---------------------------------------------------------

    def _fused_of(self, result: MethodResult) -> RowImage:
        return lambda pixel: _grey(result.fused[pixel.slice])

    def _guidance_pair_of(self, result: MethodResult) -> RowImage:
        # Side by side so that one scale covers both modalities; the sheet splits them again.
        return lambda pixel: signed_rgb(np.concatenate(result.guidance(pixel.slice), axis=1), self.gamma_guidance)

    def _guidance_rgb_of(self, result: MethodResult) -> RowImage:
        def rgb(pixel: PixelOfInterest) -> np.ndarray:
            g_mri, g_pet = result.guidance(pixel.slice)
            return guidance_rgb(g_mri, g_pet, result.fused[pixel.slice], self.gamma_guidance)

        return rgb

    # Panels ---------------------------------------------------------------------------------------------

    def _region_sheet(self, path: Path, title: str, rows: list[tuple[str, RowImage]], parts: list[str]) -> Path:
        """Per pixel and part of the row image (side by side parts: e.g. guidance MRI | PET): whole, then zoom."""
        headers = []
        for index in range(len(self.pixels)):
            for part in parts:
                name = f"P{index + 1} {part}".rstrip()
                headers += [name, f"{name}, zoom"]
        panels_by_row = []
        for label, image_of in rows:
            panels = []
            for pixel in self.pixels:
                for image in _halves(image_of(pixel), len(parts)):
                    panels += [self._whole(image, pixel), self._zoom(image, pixel)]
            panels_by_row.append((label, panels))
        return _compose(path, self._title(title), headers, panels_by_row)

    def _box(self, shape: tuple[int, ...], pixel: PixelOfInterest) -> tuple[int, int, int, int, int, int]:
        """(top, left, bottom, right) of the neighbourhood and the pixel's (row, col), in display coordinates."""
        row, col = self.display.pixel(pixel.row, pixel.col, shape)
        mask = neighbourhood_mask(shape[:2], row, col, self.half_width)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1, row, col

    def _whole(self, image: np.ndarray, pixel: PixelOfInterest) -> Image.Image:
        shown = self.display.image(image)
        top, left, bottom, right, _, _ = self._box(shown.shape, pixel)
        return _enlarged(shown, (top, left, bottom, right))

    def _zoom(self, image: np.ndarray, pixel: PixelOfInterest) -> Image.Image:
        shown = self.display.image(image)
        top, left, bottom, right, row, col = self._box(shown.shape, pixel)
        return _enlarged(shown[top:bottom, left:right], (row - top, col - left, row - top + 1, col - left + 1))

    def _title(self, title: str) -> list[str]:
        lines = [title] + [f"P{i + 1}: {pixel.describe(self.volume)}" for i, pixel in enumerate(self.pixels)]
        if self.display.caption:
            lines.append(self.display.caption)
        return lines


def _grey(image: np.ndarray) -> np.ndarray:
    grey = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    return np.repeat(grey[..., None], 3, axis=2)


def _hot(image: np.ndarray) -> np.ndarray:
    return matplotlib.colormaps["hot"](np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0))[..., :3]


def _halves(image: np.ndarray, parts: int) -> list[np.ndarray]:
    width = image.shape[1] // parts
    return [image[:, index * width : (index + 1) * width] for index in range(parts)]


def _enlarged(image: np.ndarray, box: tuple[int, int, int, int]) -> Image.Image:
    """RGB image in [0, 1] enlarged by a whole factor (nearest neighbour), with a red outline around ``box``."""
    height, width = image.shape[:2]
    factor = max(1, PANEL_PIXELS // max(height, width))
    pixels = np.clip(np.round(np.asarray(image) * 255), 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels, "RGB").resize((width * factor, height * factor), Image.Resampling.NEAREST)
    top, left, bottom, right = box
    ImageDraw.Draw(picture).rectangle(
        (left * factor, top * factor, right * factor - 1, bottom * factor - 1), outline=RED, width=2 if factor >= 2 else 1
    )
    return picture


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return ImageFont.truetype(str(path), FONT_SIZE) if path.is_file() else ImageFont.load_default()


def _compose(path: Path, title_lines: list[str], headers: list[str], rows: list[tuple[str, list[Image.Image]]]) -> Path:
    """A grid: title lines on top, column headers, then one labelled row of panels per entry of ``rows``."""
    font = _font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_width(text: str) -> int:
        return int(measure.textlength(text, font=font))

    line = FONT_SIZE + 6
    columns = max(len(panels) for _, panels in rows)
    cell_width = max(max(panel.width for _, panels in rows for panel in panels), *(text_width(h) for h in headers)) + GAP
    cell_height = max(panel.height for _, panels in rows for panel in panels) + GAP
    label_width = max(text_width(label) for label, _ in rows) + 2 * GAP
    top = GAP + line * len(title_lines) + line
    width = max(label_width + columns * cell_width + GAP, max(text_width(text) for text in title_lines) + 2 * GAP)
    sheet = Image.new("RGB", (width, top + len(rows) * cell_height + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for index, text in enumerate(title_lines):
        draw.text((GAP, GAP + index * line), text, fill=TEXT, font=font)
    for column, header in enumerate(headers):
        draw.text((label_width + column * cell_width + (cell_width - text_width(header)) // 2, top - line), header, fill=TEXT, font=font)
    for row, (label, panels) in enumerate(rows):
        y = top + row * cell_height
        draw.text((GAP, y + (cell_height - FONT_SIZE) // 2), label, fill=TEXT, font=font)
        for column, panel in enumerate(panels):
            x = label_width + column * cell_width
            sheet.paste(panel, (x + (cell_width - panel.width) // 2, y + (cell_height - panel.height) // 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
