"""The principal-pixel readout as page rows: every value shown rounded, with its exact value as a tooltip.

Besides the Logic's :class:`~FuseVisMRML.PixelReadout` it reports the
Jacobian layers as they are in the scene: the total influence of each
input on the principal pixel (the sum of the absolute Jacobian over the
slice) and the MRI's share of it, which says at a glance which modality
drives the fused pixel (paper 3.2.1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from slicer.util import arrayFromVolume

from FuseVisMRML import PixelReadout


@dataclass(frozen=True)
class JacobianTotals:
    """Sum of |Jacobian| over the slice for MRI and PET, read from the Jacobian layer nodes."""

    mri: float
    pet: float

    @property
    def mri_share(self) -> float | None:
        total = self.mri + self.pet
        return self.mri / total if total > 0 else None


def jacobian_totals(parameters) -> JacobianTotals:
    return JacobianTotals(
        float(np.abs(arrayFromVolume(parameters.jacobianMriVolume)).sum()),
        float(np.abs(arrayFromVolume(parameters.jacobianPetVolume)).sum()),
    )


def readout_rows(readout: PixelReadout, totals: JacobianTotals) -> list[dict]:
    """Rows ``{key, label, text, exact}`` for the readout table (``exact``: full precision, or "")."""
    rows = [
        _row("position", "Pixel (slice, row, col)", f"{readout.slice}, {readout.row}, {readout.col}"),
        _row("ijk", "Voxel IJK", ", ".join(map(str, readout.ijk))),
        _row("ras", "RAS (mm)", ", ".join(f"{v:.1f}" for v in readout.ras)),
        _row("method", "Method", readout.method),
        _number("mri_value", "MRI value", readout.mri_value),
        _number("pet_value", "PET value", readout.pet_value),
        _number("mri_input", "MRI input (normalised)", readout.mri_input),
        _number("pet_input", "PET input (normalised)", readout.pet_input),
        _number("fused", "Fused value", readout.fused, missing="being computed"),
        _number("jacobian_mri", "Jacobian MRI at the pixel", readout.jacobian_mri),
        _number("jacobian_pet", "Jacobian PET at the pixel", readout.jacobian_pet),
        _number("jacobian_mri_total", "Σ|Jacobian MRI|", totals.mri),
        _number("jacobian_pet_total", "Σ|Jacobian PET|", totals.pet),
        _number("mri_share", "MRI share of influence", totals.mri_share, missing="none"),
        _number("guidance_mri", "Guidance MRI", readout.guidance_mri, missing="being computed"),
        _number("guidance_pet", "Guidance PET", readout.guidance_pet, missing="being computed"),
    ]
    first_row, last_row, first_col, last_col = readout.neighbourhood
    rows.append(_row("neighbourhood", "Neighbourhood rows, cols", f"{first_row}-{last_row}, {first_col}-{last_col}"))
    return rows


def _row(key: str, label: str, text: str, exact: str = "") -> dict:
    return {"key": key, "label": label, "text": text, "exact": exact}


def _number(key: str, label: str, value: float | None, missing: str = "") -> dict:
    if value is None:
        return _row(key, label, missing)
    return _row(key, label, f"{value:.4g}", repr(float(value)))
