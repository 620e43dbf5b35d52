"""PET-to-MRI co-registration with SimpleITK, and resampling PET onto the MRI grid.

Rigid first (Euler angles and a shift, initialised by aligning the images'
centres of mass), then affine from there; both maximise Mattes mutual
information over a multi-resolution pyramid. The result is a 4x4 RAS matrix
in FuseVis' convention (see :mod:`transforms`): it maps MRI (fixed) points
to PET (moving) points, like the demo's ``true_transform.json``.

Choices, each measured on the demo pair (whose true motion is known):

* The pyramid is set in millimetres (rigid 8, 4, 2 mm; affine 2 mm) and
  each level samples a fixed number of voxels at random with a fixed seed,
  so cost barely depends on the input resolution and runs repeat exactly.
  Levels that shrink the image are smoothed by half their voxel size; the
  finest unshrunk level is not smoothed (smoothing biased the optimum).
* Mutual information is counted over the MRI's head only (:func:`head_mask`).
  Counted over the surrounding air it rewards shrinking one image into the
  other.
* Image gradients come from central differences at the sample points, not
  from precomputed gradient images, which made the affine stage climb away
  from the optimum on the PET's flipped (LAS) grid.
* The affine stage must earn its six extra degrees of freedom: its result
  is kept only if it raises mutual information over the whole head at full
  resolution compared with the rigid result. On a truly rigid motion the
  sampled affine optimum drifts by 0.5-3 % in scale (a partial-volume bias
  between sharp MRI and blurred PET), which the full-resolution check
  rejects; a real scale difference passes it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import SimpleITK as sitk

from .errors import FuseVisError
from .transforms import describe, ras_matrix_from_sitk, sitk_from_ras_matrix
from .volume_io import Volume, check_volume


@dataclass(frozen=True)
class RegistrationSettings:
    """Knobs of :func:`register_volumes`; the defaults register the demo in seconds on two cores."""

    rigid_levels_mm: tuple[float, ...] = (8.0, 4.0, 2.0)
    affine_levels_mm: tuple[float, ...] = (2.0,)
    samples_per_level: int = 30000
    histogram_bins: int = 32
    rigid_iterations: int = 100
    rigid_step: float = 1.0
    affine: bool = True
    affine_iterations: int = 50
    affine_step: float = 0.25
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
    """``matrix`` maps MRI (fixed) RAS points to PET (moving) RAS points, in mm.

    ``final_metric`` is Mattes mutual information of the returned transform
    over the MRI's head at full resolution (negative; lower is better).
    ``affine_accepted`` says whether the affine stage improved on the rigid
    result (None when it did not run).
    """

    matrix: np.ndarray
    final_metric: float
    iterations: int
    affine_accepted: bool | None

    @property
    def rotation_deg(self) -> float:
        return describe(self.matrix)["rotation_deg"]

    @property
    def translation_mm(self) -> list[float]:
        return describe(self.matrix)["translation_mm"]

    def summary(self) -> dict:
        """JSON-ready: matrix, direction, rotation_deg, rotation_axis, translation_mm, final_metric, iterations, affine_accepted."""
        record = describe(self.matrix)
        record.update({"final_metric": round(self.final_metric, 6), "iterations": self.iterations, "affine_accepted": self.affine_accepted})
        return record


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
            raise FuseVisError(
                f"the {role} volume is {'x'.join(map(str, volume.shape_ijk))} voxels; registration needs at least 4 in each direction"
            )
    fixed_image, moving_image = fixed.to_sitk(), moving.to_sitk()
    mask = head_mask(fixed_image)
    run = _StageRunner(fixed_image, moving_image, mask, settings, progress, should_cancel)
    rigid = sitk.CenteredTransformInitializer(fixed_image, moving_image, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS)
    iterations = run("rigid", rigid, settings.rigid_levels_mm, settings.rigid_step, settings.rigid_iterations)
    best: sitk.Transform = rigid
    best_metric = full_resolution_metric(fixed_image, moving_image, mask, rigid, settings.histogram_bins)
    affine_accepted = None
    if settings.affine:
        affine = sitk.AffineTransform(3)
        affine.SetCenter(rigid.GetCenter())
        affine.SetMatrix(rigid.GetMatrix())
        affine.SetTranslation(rigid.GetTranslation())
        iterations += run("affine", affine, settings.affine_levels_mm, settings.affine_step, settings.affine_iterations)
        affine_metric = full_resolution_metric(fixed_image, moving_image, mask, affine, settings.histogram_bins)
        affine_accepted = affine_metric < best_metric
        if affine_accepted:
            best, best_metric = affine, affine_metric
    return RegistrationResult(matrix=ras_matrix_from_sitk(best), final_metric=best_metric, iterations=iterations, affine_accepted=affine_accepted)


def head_mask(image: sitk.Image) -> sitk.Image:
    """The head in ``image``: Otsu foreground of the smoothed image, largest component, holes filled, 2 voxels added."""
    smooth = sitk.SmoothingRecursiveGaussian(image, 2.0 * min(image.GetSpacing()))
    foreground = sitk.OtsuThreshold(smooth, 0, 1)
    largest = sitk.RelabelComponent(sitk.ConnectedComponent(foreground), sortByObjectSize=True) == 1
    return sitk.BinaryDilate(sitk.BinaryFillhole(largest), [2, 2, 2])


def full_resolution_metric(fixed: sitk.Image, moving: sitk.Image, mask: sitk.Image, transform: sitk.Transform, bins: int) -> float:
    """Mattes mutual information of ``transform`` over every voxel of ``mask``, unsmoothed."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    method.SetMetricFixedMask(mask)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetInitialTransform(transform, inPlace=False)
    return float(method.MetricEvaluate(fixed, moving))


class _StageRunner:
    """Runs one registration stage (in place on its transform) with the shared metric, progress and cancellation."""

    def __init__(self, fixed: sitk.Image, moving: sitk.Image, fixed_mask: sitk.Image, settings: RegistrationSettings, progress, should_cancel):
        self.fixed, self.moving, self.fixed_mask, self.settings = fixed, moving, fixed_mask, settings
        self.progress, self.should_cancel = progress, should_cancel

    def __call__(self, stage: str, transform: sitk.Transform, levels_mm: tuple[float, ...], step: float, iterations: int) -> int:
        """Optimise ``transform``; returns the number of iterations run."""
        if self.should_cancel is not None and self.should_cancel():
            raise RegistrationCancelled(f"registration cancelled before the {stage} stage")
        finest = min(self.fixed.GetSpacing())
        shrink_factors = [max(1, int(round(mm / finest))) for mm in levels_mm]
        sigmas_mm = [0.5 * mm if factor > 1 else 0.0 for mm, factor in zip(levels_mm, shrink_factors)]
        voxels = float(np.prod(self.fixed.GetSize()))
        sampling = [float(min(1.0, self.settings.samples_per_level * factor**3 / voxels)) for factor in shrink_factors]
        method = sitk.ImageRegistrationMethod()
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=self.settings.histogram_bins)
        method.SetMetricFixedMask(self.fixed_mask)
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentagePerLevel(sampling, self.settings.seed)
        method.SetMetricUseFixedImageGradientFilter(False)
        method.SetMetricUseMovingImageGradientFilter(False)
        method.SetInterpolator(sitk.sitkLinear)
        method.SetOptimizerAsRegularStepGradientDescent(
            learningRate=step, minStep=0.01, numberOfIterations=iterations, relaxationFactor=0.6, gradientMagnitudeTolerance=1e-8
        )
        method.SetOptimizerScalesFromPhysicalShift()
        method.SetShrinkFactorsPerLevel(shrink_factors)
        method.SetSmoothingSigmasPerLevel(sigmas_mm)
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
                    self.progress(RegistrationProgress(stage, method.GetCurrentLevel(), len(levels_mm), method.GetOptimizerIteration(), method.GetMetricValue()))
            except BaseException as error:  # noqa: BLE001 - re-raised below, once the optimiser has stopped
                state["error"] = error
            if state["cancelled"] or state["error"] is not None:
                method.StopRegistration()

        method.AddCommand(sitk.sitkIterationEvent, on_iteration)
        try:
            method.Execute(self.fixed, self.moving)
        except RuntimeError as error:
            if state["error"] is not None:
                raise state["error"]
            reason = str(error).strip().splitlines()[-1]
            raise FuseVisError(
                f"the {stage} registration failed ({reason}); the volumes may not overlap: check that MRI and PET show "
                "the same head, or skip registration if they are already aligned"
            ) from None
        if state["error"] is not None:
            raise state["error"]
        if state["cancelled"]:
            raise RegistrationCancelled(f"registration cancelled during the {stage} stage")
        return state["count"]


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
