"""Loading one case as two stacks of axial slices in [0, 1], the PET on the MRI's grid.

2-D images are read as ``fusevis saliency`` reads them (PET colour maps
inverted, min-max normalised) and must already be co-registered slices of
one size. Volumes (NIfTI, DICOM) are read with their geometry; the PET is
optionally registered to the MRI (rigid then affine), always resampled onto
the MRI's grid, and both are normalised robustly (percentiles 0.5 and 99.5).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ..errors import FuseVisError
from ..intensity import robust_normalise
from ..registration import RegistrationResult, register_volumes, resample_to_reference
from ..saliency.slice_files import read_slice
from ..volume_fusion import axial_axis, axial_slices
from ..volume_io import Volume, read_volume
from .cases import CaseInput, is_volume_path
from .stage_clock import StageClock

# SSIM (the partial losses of equation 4) needs an 11-pixel window.
MIN_SIDE = 16


@dataclass
class LoadedCase:
    """``mri`` and ``pet``: (slices, rows, cols) float32 in [0, 1]; one slice for a 2-D image.

    ``geometry`` (volumes only) is the MRI volume, normalised; ``axis`` its
    array axis across the axial slices.
    """

    mri: np.ndarray
    pet: np.ndarray
    geometry: Volume | None = None
    axis: int | None = None
    registration: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def is_volume(self) -> bool:
        return self.geometry is not None

    def slab(self, stack: np.ndarray, first: int) -> Volume:
        """``stack`` (slices, rows, cols) placed as axial slices ``first``.. of the MRI's grid, geometry included."""
        return Volume(self.volume_order(np.asarray(stack, dtype=np.float32)), self.slab_matrix(first))

    def volume_order(self, stack: np.ndarray) -> np.ndarray:
        """A stack of axial slices (slices, rows, cols[, channels]) as the volume's ``[k, j, i(, channels)]`` array."""
        if self.axis is None:
            raise FuseVisError("slices become a volume only for volume input")
        return np.moveaxis(stack, 0, self.axis)

    def slab_matrix(self, first: int) -> np.ndarray:
        """Voxel-to-RAS matrix of the slab whose first slice is axial slice ``first`` of the MRI."""
        if self.geometry is None or self.axis is None:
            raise FuseVisError("a slab of slices exists for volume input only")
        offset = np.zeros(4)
        offset[2 - self.axis] = first  # array axis a is ijk axis 2 - a
        offset[3] = 1.0
        matrix = self.geometry.ijk_to_ras.copy()
        matrix[:, 3] = self.geometry.ijk_to_ras @ offset
        return matrix


def load_case(case: CaseInput, register: bool, clock: StageClock, progress: bool = False) -> LoadedCase:
    """The case's two stacks; FuseVisError for anything that makes the case unusable."""
    if case.problem:
        raise FuseVisError(case.problem)
    if case.mri is None or case.pet is None:
        raise FuseVisError(f"case {case.name} needs both an MRI and a PET input")
    volumes = (is_volume_path(case.mri), is_volume_path(case.pet))
    if volumes[0] != volumes[1]:
        kinds = ["a volume" if volume else "a 2-D image" for volume in volumes]
        raise FuseVisError(f"the MRI ({case.mri.name}) is {kinds[0]} but the PET ({case.pet.name}) is {kinds[1]}; give two volumes or two images")
    loaded = _load_volumes(case, register, clock, progress) if volumes[0] else _load_images(case, register, clock)
    height, width = loaded.mri.shape[1:]
    if min(height, width) < MIN_SIDE:
        raise FuseVisError(f"the slices are {width}x{height} pixels; the analysis needs at least {MIN_SIDE}x{MIN_SIDE} (SSIM window)")
    return loaded


def _load_images(case: CaseInput, register: bool, clock: StageClock) -> LoadedCase:
    with clock.stage("load"):
        mri, pet = read_slice(case.mri, "MRI"), read_slice(case.pet, "PET")
    if mri.shape != pet.shape:
        raise FuseVisError(
            f"the MRI is {mri.shape[1]}x{mri.shape[0]} pixels but the PET is {pet.shape[1]}x{pet.shape[0]}; 2-D pairs must be "
            "co-registered slices of one size (resample one onto the other; --register works on volumes)"
        )
    notes = ["--register ignored: 2-D images are taken as co-registered"] if register else []
    return LoadedCase(mri[None], pet[None], notes=notes)


def _load_volumes(case: CaseInput, register: bool, clock: StageClock, progress: bool) -> LoadedCase:
    with clock.stage("load"):
        mri, pet = read_volume(case.mri), read_volume(case.pet)
    with clock.stage("register"):
        matrix, registration = np.eye(4), None
        if register:
            result = _register(mri, pet, progress)
            matrix, registration = result.matrix, result.summary()
        pet_on_mri = resample_to_reference(pet, mri, matrix)
    if float(pet_on_mri.array.max()) <= float(pet_on_mri.array.min()):
        raise FuseVisError(
            f"the PET ({case.pet.name}) does not overlap the MRI ({case.mri.name}) in scanner coordinates; "
            "pass --register, or check that both files show the same patient"
        )
    with clock.stage("load"):
        mri = mri.with_array(robust_normalise(mri.array))
        pet_array = robust_normalise(pet_on_mri.array)
    axis = axial_axis(mri)
    return LoadedCase(
        np.ascontiguousarray(axial_slices(mri.array, axis)),
        np.ascontiguousarray(axial_slices(pet_array, axis)),
        geometry=mri,
        axis=axis,
        registration=registration,
    )


def _register(mri: Volume, pet: Volume, progress: bool) -> RegistrationResult:
    bar = tqdm(desc="registering", unit="it", leave=False, disable=not progress)

    def show(step) -> None:
        bar.set_postfix_str(f"{step.stage} level {step.level + 1}/{step.levels}")
        bar.update(1)

    try:
        return register_volumes(mri, pet, progress=show)
    finally:
        bar.close()
