"""Fusing volumes one axial slice at a time, batched, on CUDA where present.

The networks are 2-D, so a volume is fused as a stack of axial slices: the
slices across the array axis whose direction is closest to Superior.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from .errors import FuseVisError
from .volume_io import Volume


def axial_axis(volume: Volume) -> int:
    """Index of the ``array[k, j, i]`` axis that runs most nearly along Superior."""
    superior_share = np.abs(volume.direction_ras[2, :])  # S component of the i, j, k directions
    ijk_axis = int(np.argmax(superior_share))
    return 2 - ijk_axis


def axial_slices(array: np.ndarray, axis: int) -> np.ndarray:
    """The volume as (slices, rows, cols) with slices along ``axis`` (a view, no copy)."""
    return np.moveaxis(array, axis, 0)


def fuse_slices(
    model: torch.nn.Module,
    mri_slices: np.ndarray,
    pet_slices: np.ndarray,
    batch_size: int = 8,
    progress: bool = True,
    should_cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Fused (slices, rows, cols) float32 from two stacks of 2-D images in [0, 1]."""
    if mri_slices.shape != pet_slices.shape:
        raise FuseVisError(f"MRI slices {mri_slices.shape} and PET slices {pet_slices.shape} differ; resample the PET onto the MRI grid first")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    fused = np.empty(mri_slices.shape, dtype=np.float32)
    batches = range(0, len(mri_slices), batch_size)
    with torch.no_grad():
        for first in tqdm(batches, desc="fusing slices", disable=not progress, leave=False):
            if should_cancel is not None and should_cancel():
                raise KeyboardInterrupt("fusion cancelled")
            last = min(first + batch_size, len(mri_slices))
            mri = torch.from_numpy(np.ascontiguousarray(mri_slices[first:last], dtype=np.float32))[:, None].to(device)
            pet = torch.from_numpy(np.ascontiguousarray(pet_slices[first:last], dtype=np.float32))[:, None].to(device)
            fused[first:last] = model(mri, pet)[:, 0].cpu().numpy()
    return fused


def fuse_volume(model: torch.nn.Module, mri: Volume, pet_on_mri_grid: Volume, batch_size: int = 8, progress: bool = True) -> Volume:
    """Fused volume with the MRI's geometry; inputs must already be normalised to [0, 1]."""
    axis = axial_axis(mri)
    fused = fuse_slices(model, axial_slices(mri.array, axis), axial_slices(pet_on_mri_grid.array, axis), batch_size, progress)
    return mri.with_array(np.moveaxis(fused, 0, axis))
