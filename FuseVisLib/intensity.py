"""Robust intensity normalisation: percentiles, not min and max, set the [0, 1] range.

MRI and PET volumes carry outliers that min-max scaling would let dominate:
a few hot voxels (vessels, bladder-like hot spots, reconstruction spikes) or
a bright fat/CSF tail. Mapping the ``low_pct`` percentile to 0 and the
``high_pct`` percentile to 1, and clipping beyond, keeps the contrast of the
tissue that matters. Percentiles are taken over all voxels, background
included, so background maps to 0; the defaults (0.5 and 99.5) clip the
brightest 0.5 % of a head volume, roughly the top of CSF on T2 MRI and the
hottest cortex or lesion rim on FDG-PET.
"""
from __future__ import annotations

import numpy as np

from .errors import FuseVisError

DEFAULT_LOW_PERCENTILE = 0.5
DEFAULT_HIGH_PERCENTILE = 99.5


def robust_normalise(
    array: np.ndarray,
    low_pct: float = DEFAULT_LOW_PERCENTILE,
    high_pct: float = DEFAULT_HIGH_PERCENTILE,
) -> np.ndarray:
    """``array`` mapped linearly so its ``low_pct`` percentile is 0 and ``high_pct`` is 1, clipped to [0, 1].

    Returns float32 of the same shape. Raises FuseVisError when the
    percentiles are out of order or out of range, when the array has no
    finite voxel, or when both percentiles are equal (no contrast to keep).
    NaNs are ignored when computing the percentiles and come out as 0.
    """
    if not 0.0 <= low_pct < high_pct <= 100.0:
        raise FuseVisError(f"percentiles must satisfy 0 <= low < high <= 100, got low={low_pct}, high={high_pct}")
    values = np.asarray(array, dtype=np.float32)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise FuseVisError("the image has no finite voxels to normalise; check the input volume")
    low, high = np.percentile(finite, [low_pct, high_pct])
    if high <= low:
        raise FuseVisError(
            f"the image is flat between its {low_pct} and {high_pct} percentiles (both {low:g}); "
            "it has too little contrast to normalise: check the volume, or widen the percentiles"
        )
    scaled = (values - np.float32(low)) / np.float32(high - low)
    return np.nan_to_num(np.clip(scaled, 0.0, 1.0), nan=0.0).astype(np.float32, copy=False)
