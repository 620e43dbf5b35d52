"""Checking and converting the images and pixel coordinates handed to the saliency engine."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import FuseVisError
from .model_mode import model_tensors

# Rounding in a caller's own normalisation may overshoot [0, 1] by a few ulps.
RANGE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class ImagePair:
    """MRI and PET as float [1,1,H,W] tensors on the model's device."""

    mri: torch.Tensor
    pet: torch.Tensor

    @property
    def height(self) -> int:
        return self.mri.shape[-2]

    @property
    def width(self) -> int:
        return self.mri.shape[-1]


def model_device_and_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where and in which precision the model computes (CPU float32 for a model without tensors)."""
    tensor = next((t for t in model_tensors(model) if t.is_floating_point()), None)
    return (tensor.device, tensor.dtype) if tensor is not None else (torch.device("cpu"), torch.float32)


def _as_image(name: str, image, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        tensor = image.detach()
    elif isinstance(image, np.ndarray):
        if not (np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.integer) or image.dtype == bool):
            raise FuseVisError(f"the {name} image has data type {image.dtype}; pass a numeric 2-D array")
        tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    else:
        raise FuseVisError(f"the {name} image is a {type(image).__name__}; pass a 2-D numpy array or a [1,1,H,W] tensor")
    if tensor.dim() == 4 and tensor.shape[:2] == (1, 1):
        pass
    elif tensor.dim() == 2:
        tensor = tensor[None, None]
    else:
        raise FuseVisError(
            f"the {name} image has shape {tuple(tensor.shape)}; pass one 2-D slice (H, W) or a [1,1,H,W] tensor "
            "(take a single slice of a volume, and convert colour images to one channel first)"
        )
    if tensor.shape[-2] < 1 or tensor.shape[-1] < 1:
        raise FuseVisError(f"the {name} image is empty ({tuple(tensor.shape)}); pass an image with at least one pixel")
    if not tensor.is_floating_point():
        tensor = tensor.float()
    low, high = (float(v) for v in torch.aminmax(tensor))
    if not (math.isfinite(low) and math.isfinite(high)):  # a NaN anywhere makes the extremes NaN
        raise FuseVisError(f"the {name} image contains NaN or infinite values; replace them (e.g. numpy.nan_to_num) before computing saliency")
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise FuseVisError(
            f"the {name} image ranges over [{low:g}, {high:g}] but the fusion networks expect [0, 1]; "
            "min-max normalise it first (FuseVisLib.pair_folder.min_max_normalise)"
        )
    return tensor.to(device=device, dtype=dtype).contiguous()


def prepare_images(model: nn.Module, mri, pet) -> ImagePair:
    """Validate a pair of 2-D images (arrays or [1,1,H,W] tensors) and move them to the model's device."""
    device, dtype = model_device_and_dtype(model)
    mri_tensor = _as_image("MRI", mri, device, dtype)
    pet_tensor = _as_image("PET", pet, device, dtype)
    if mri_tensor.shape != pet_tensor.shape:
        raise FuseVisError(
            f"the MRI is {mri_tensor.shape[-1]}x{mri_tensor.shape[-2]} pixels but the PET is "
            f"{pet_tensor.shape[-1]}x{pet_tensor.shape[-2]}; resample one onto the other's grid first"
        )
    return ImagePair(mri_tensor, pet_tensor)


def check_pixel(row, col, height: int, width: int) -> tuple[int, int]:
    """The pixel as two ints, or a clear error if it is not inside an HxW image."""
    for name, value in (("row", row), ("col", col)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise FuseVisError(f"pixel {name} must be an integer, got {value!r}")
    row, col = int(row), int(col)
    if not (0 <= row < height and 0 <= col < width):
        raise FuseVisError(
            f"pixel (row {row}, col {col}) lies outside the image of {height} rows and {width} columns; "
            f"choose 0 <= row < {height} and 0 <= col < {width}"
        )
    return row, col
