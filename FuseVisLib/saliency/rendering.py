"""Displaying saliency: gamma correction, guidance RGB, PNG renders and the zoomed neighbourhood view.

Gamma correction (paper 3.2.5) is applied to magnitudes with the sign kept:
the original tool raised raw gradients to the power gamma in an 8-bit range,
which silently clipped negative gradients. Here an image is divided by its
largest magnitude and mapped to sign(x) * |x|^gamma in [-1, 1]; renders show
magnitude as brightness, positive values orange and negative values blue.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from ..errors import FuseVisError
from .scatter import ScatterData

GAMMA_RANGE = (0.1, 2.0)
POSITIVE_COLOUR = np.array([1.0, 0.55, 0.0])
NEGATIVE_COLOUR = np.array([0.0, 0.55, 1.0])


def _image(name: str, image) -> np.ndarray:
    array = np.asarray(image, dtype=np.float64)
    if array.ndim != 2:
        raise FuseVisError(f"{name} must be a 2-D image, got shape {array.shape}; pass one slice")
    if not np.all(np.isfinite(array)):
        raise FuseVisError(f"{name} contains NaN or infinite values; replace them before rendering")
    return array


def check_gamma(gamma: float) -> float:
    low, high = GAMMA_RANGE
    if not isinstance(gamma, (int, float)) or isinstance(gamma, bool) or not low <= gamma <= high:
        raise FuseVisError(f"gamma must be a number between {low} and {high} (paper 3.2.5), got {gamma!r}")
    return float(gamma)


def gamma_correct(image, gamma: float) -> np.ndarray:
    """sign(x) * (|x| / max|x|)^gamma, in [-1, 1]; gamma in [0.1, 2.0] (below 1 brightens small gradients)."""
    gamma = check_gamma(gamma)
    array = _image("the image to gamma-correct", image)
    scale = float(np.abs(array).max())
    if scale == 0:
        return np.zeros_like(array)
    return np.sign(array) * (np.abs(array) / scale) ** gamma


def min_max(image) -> np.ndarray:
    """Rescaled so the minimum is 0 and the maximum 1 (all zeros for a constant image)."""
    array = _image("the image to normalise", image)
    low, high = float(array.min()), float(array.max())
    return np.zeros_like(array) if high <= low else (array - low) / (high - low)


def guidance_rgb(guidance_mri, guidance_pet, fused, gamma: float = 1.0) -> np.ndarray:
    """HxWx3 in [0, 1]: R = min-max normalised guidance MRI, G = guidance PET, B = fused image (paper 3.2.3).

    ``gamma`` (gamma2 of the paper) is applied to the normalised guidance
    channels; the fused image is clipped to [0, 1].
    """
    gamma = check_gamma(gamma)
    red, green = min_max(guidance_mri) ** gamma, min_max(guidance_pet) ** gamma
    blue = np.clip(_image("the fused image", fused), 0.0, 1.0)
    if not red.shape == green.shape == blue.shape:
        raise FuseVisError(f"guidance MRI {red.shape}, guidance PET {green.shape} and fused {blue.shape} must have one shape")
    return np.stack([red, green, blue], axis=-1)


def signed_rgb(image, gamma: float = 1.0) -> np.ndarray:
    """HxWx3 in [0, 1]: brightness = gamma-corrected magnitude, orange where positive, blue where negative."""
    corrected = gamma_correct(image, gamma)
    magnitude = np.abs(corrected)[..., None]
    colour = np.where(corrected[..., None] >= 0, POSITIVE_COLOUR, NEGATIVE_COLOUR)
    return magnitude * colour


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an HxW or HxWx3 image with values in [0, 1] as an 8-bit PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(np.round(np.asarray(image) * 255), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _save_figure(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)
    return path


def _window(shape: tuple[int, int], row: int, col: int, half_width: int) -> tuple[int, int, int, int]:
    top, left = max(0, row - half_width), max(0, col - half_width)
    return top, left, min(shape[0], row + half_width + 1), min(shape[1], col + half_width + 1)


def render_neighbourhood_view(
    path: str | Path,
    mri,
    pet,
    fused,
    jacobian_mri,
    jacobian_pet,
    pixel: tuple[int, int],
    half_width: int = 10,
    gamma: float = 0.5,
) -> Path:
    """A figure like the paper's Figure 1: inputs, fused image and Jacobian images, each beside a zoom of the
    neighbourhood of the principal pixel (red box on the full image, red square on the zoom)."""
    row, col = pixel
    panels = [
        ("MRI", _image("MRI", mri), "gray"),
        ("Jacobian MRI", signed_rgb(jacobian_mri, gamma), None),
        ("Fused", np.clip(_image("fused", fused), 0, 1), "gray"),
        ("PET", _image("PET", pet), "gray"),
        ("Jacobian PET", signed_rgb(jacobian_pet, gamma), None),
    ]
    shape = panels[0][1].shape[:2]
    top, left, bottom, right = _window(shape, row, col, half_width)
    figure = Figure(figsize=(4 * len(panels), 8))
    for index, (title, image, cmap) in enumerate(panels):
        full = figure.add_subplot(2, len(panels), index + 1)
        zoom = figure.add_subplot(2, len(panels), len(panels) + index + 1)
        full.imshow(image, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None, interpolation="nearest")
        full.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, edgecolor="red", linewidth=1.2))
        full.set_title(title)
        zoom.imshow(image[top:bottom, left:right], cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None, interpolation="nearest")
        zoom.add_patch(Rectangle((col - left - 0.5, row - top - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
        zoom.set_title(f"{title}, zoom around ({row}, {col})")
        for axes in (full, zoom):
            axes.set_xticks([])
            axes.set_yticks([])
    figure.suptitle(f"Jacobian images of principal pixel (row {row}, col {col}), gamma1 = {gamma:g}")
    figure.tight_layout()
    return _save_figure(figure, path)


def render_scatter(path: str | Path, data: ScatterData, title: str = "Guidance MRI vs guidance PET") -> Path:
    """The scatterplot: every pixel in black, the principal pixel's neighbourhood in green, the pixel in red."""
    figure = Figure(figsize=(6, 6))
    axes = figure.add_subplot(1, 1, 1)
    axes.scatter(data.mri, data.pet, s=1, c="black", linewidths=0, label="all pixels")
    if data.pixel is not None:
        near = data.neighbourhood
        axes.scatter(data.mri[near], data.pet[near], s=6, c="green", linewidths=0, label=f"within {data.half_width} px of {data.pixel}")
        flat = data.pixel[0] * data.shape[1] + data.pixel[1]
        axes.scatter(data.mri[flat], data.pet[flat], s=40, c="red", marker="x", label="principal pixel")
        axes.legend(loc="best")
    axes.set_xlabel("guidance MRI (dy/dx_MRI)")
    axes.set_ylabel("guidance PET (dy/dx_PET)")
    axes.set_title(title)
    figure.tight_layout()
    return _save_figure(figure, path)
