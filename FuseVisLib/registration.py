"""PET-to-MRI co-registration with SimpleITK, and resampling PET onto the MRI grid.

Rigid first (Euler angles and a shift, initialised by aligning the images'
centres of mass), then affine from there; both maximise Mattes mutual
information, the standard metric across modalities, over a multi-resolution
pyramid. The pyramid is set in millimetres (coarsest level about 8 mm,
finest 2 mm or the fixed voxel size if coarser) and each level samples a
fixed number of voxels at random (fixed seed), so the cost barely depends
on the input resolution. The result is a 4x4 RAS matrix in FuseVis'
convention (see :mod:`transforms`): it maps MRI (fixed) points to PET
(moving) points, like the demo's ``true_transform.json``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import SimpleITK as sitk

from .errors import FuseVisError
from .transforms import describe, ras_matrix_from_sitk, sitk_from_ras_matrix
from .volume_io import Volume, check_volume


@dataclass(frozen=True)
class RegistrationSettings:
    """Knobs of :func:`register_volumes`; the defaults register the demo in well under a minute on two cores."""

    rigid_levels_mm: tuple[float, ...] = (8.0, 4.0, 2.0)
    affine_levels_mm: tuple[float, ...] = (4.0, 2.0)
    samples_per_level: int = 30000
    histogram_bins: int = 32
    rigid_iterations: int = 100
    rigid_step: float = 2.0
    affine: bool = True
    affine_iterations: int = 60
    affine_step: float = 0.5
    seed: int = 7


@dataclass(frozen=True)
class RegistrationProgress:
    """One optimiser iteration: ``stage`` is "rigid" or "affine", ``level`` counts from 0 (coarsest)."""

    stage: str
    level: int
    levels: int
    iteration: int
    metric: float


@dataclass
class RegistrationResult:
    """``matrix`` maps MRI (fixed) RAS points to PET (moving) RAS points, in mm."""

    matrix: np.ndarray
    final_metric: float
    iterations: int
    stages: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-ready: matrix, direction, rotation_deg (angle), rotation_axis, translation_mm, final_metric."""
        record = describe(self.matrix)
        record.update({"final_metric": round(self.final_metric, 6), "iterations": self.iterations, "stages": self.stages})
        return record

    @property
    def rotation_deg(self) -> float:
        return describe(self.matrix)["rotation_deg"]

    @property
    def translation_mm(self) -> list[float]:
        return describe(self.matrix)["translation_mm"]


class RegistrationCancelled(Exception):
    """Raised by :func:`register_volumes` when ``should_cancel`` returned True; nothing was produced."""


def register_volumes(
    fixed: Volume,
    moving: Volume,
    settings: RegistrationSettings = RegistrationSettings(),
    progress: Callable[[RegistrationProgress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RegistrationResult:
    """Register ``moving`` (PET) to ``fixed`` (MRI): rigid, then affine unless ``settings.affine`` is False.

    ``progress`` is called on every optimiser iteration; ``should_cancel`` is
    checked there too, and once it returns True the optimiser stops and
    :class:`RegistrationCancelled` is raised. An exception raised by
    ``progress`` also stops the registration and propagates.
    """
    check_volume(fixed, "the fixed (MRI) volume")
    check_volume(moving, "the moving (PET) volume")
    for volume, role in ((fixed, "fixed (MRI)"), (moving, "moving (PET)")):
        if min(volume.shape_ijk) < 4:
            raise FuseVisError(f"the {role} volume is {'x'.join(map(str, volume.shape_ijk))} voxels; registration needs at least 4 slices in each direction")
    fixed_image, moving_image = fixed.to_sitk(), moving.to_sitk()
    rigid = sitk.CenteredTransformInitializer(
        fixed_image, moving_image, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    run = _StageRunner(fixed_image, moving_image, settings, progress, should_cancel)
    rigid, metric, iterations = run("rigid", rigid, settings.rigid_levels_mm, settings.rigid_step, settings.rigid_iterations)
    stages = ["rigid"]
    transform: sitk.Transform = rigid
    if settings.affine:
        affine = sitk.AffineTransform(3)
        affine.SetCenter(rigid.GetCenter())
        affine.SetMatrix(rigid.GetMatrix())
        affine.SetTranslation(rigid.GetTranslation())
        transform, metric, more = run("affine", affine, settings.affine_levels_mm, settings.affine_step, settings.affine_iterations)
        iterations += more
        stages.append("affine")
    return RegistrationResult(matrix=ras_matrix_from_sitk(transform), final_metric=metric, iterations=iterations, stages=stages)


class _StageRunner:
    """Runs one registration stage with the shared metric, progress and cancellation."""

    def __init__(self, fixed: sitk.Image, moving: sitk.Image, settings: RegistrationSettings, progress, should_cancel):
        self.fixed, self.moving, self.settings = fixed, moving, settings
        self.progress, self.should_cancel = progress, should_cancel

    def __call__(
        self, stage: str, transform: sitk.Transform, levels_mm: tuple[float, ...], step: float, iterations: int
    ) -> tuple[sitk.Transform, float, int]:
        finest_fixed = min(self.fixed.GetSpacing())
        shrink_factors = [max(1, int(round(mm / finest_fixed))) for mm in levels_mm]
        voxels = float(np.prod(self.fixed.GetSize()))
        # A fixed number of random samples per level keeps the cost independent of the input resolution.
        sampling = [float(min(1.0, self.settings.samples_per_level * f**3 / voxels)) for f in shrink_factors]
        method = sitk.ImageRegistrationMethod()
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=self.settings.histogram_bins)
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentagePerLevel(sampling, self.settings.seed)
        method.SetInterpolator(sitk.sitkLinear)
        method.SetOptimizerAsRegularStepGradientDescent(
            learningRate=step, minStep=0.01, numberOfIterations=iterations, relaxationFactor=0.6, gradientMagnitudeTolerance=1e-8
        )
        method.SetOptimizerScalesFromPhysicalShift()
        method.SetShrinkFactorsPerLevel(shrink_factors)
        method.SetSmoothingSigmasPerLevel([0.5 * mm for mm in levels_mm])
        method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
        method.SetInitialTransform(transform, inPlace=True)
        state = {"count": 0, "cancelled": False, "error": None}

        def on_iteration() -> None:
            # Exceptions cannot cross SimpleITK's C++ boundary cleanly: keep them, stop, re-raise after.
            if state["cancelled"] or state["error"] is not None:
                method.StopRegistration()  # stops the current level only, so repeat at every later level
                return
            state["count"] += 1
            try:
                if self.should_cancel is not None and self.should_cancel():
                    state["cancelled"] = True
                elif self.progress is not None:
                    level = method.GetCurrentLevel()
                    self.progress(RegistrationProgress(stage, level, len(levels_mm), method.GetOptimizerIteration(), method.GetMetricValue()))
            except BaseException as error:  # noqa: BLE001 - re-raised below, after the optimiser stopped
                state["error"] = error
            if state["cancelled"] or state["error"] is not None:
                method.StopRegistration()

        method.AddCommand(sitk.sitkIterationEvent, on_iteration)
        if self.should_cancel is not None and self.should_cancel():
            raise RegistrationCancelled(f"registration cancelled before the {stage} stage")
        try:
            method.Execute(self.fixed, self.moving)
        except RuntimeError as error:
            raise FuseVisError(
                f"the {stage} registration failed ({str(error).strip().splitlines()[-1]}); the volumes may not overlap: "
                "check that MRI and PET show the same head, or pass them as already registered"
            ) from None
        if state["error"] is not None:
            raise state["error"]
        if state["cancelled"]:
            raise RegistrationCancelled(f"registration cancelled during the {stage} stage")
        return transform, float(method.GetMetricValue()), state["count"]


def resample_to_reference(moving: Volume, reference: Volume, matrix: np.ndarray, default_value: float = 0.0) -> Volume:
    """``moving`` sampled (trilinear) on ``reference``'s grid; ``matrix`` maps reference RAS points to moving RAS points.

    Pass the identity for volumes already in one space, or a
    :class:`RegistrationResult`'s ``matrix``. Voxels outside ``moving`` get
    ``default_value``.
    """
    resampled = sitk.Resample(
        moving.to_sitk(), reference.to_sitk(), sitk_from_ras_matrix(matrix), sitk.sitkLinear, float(default_value), sitk.sitkFloat32
    )
    return Volume.from_sitk(resampled)
