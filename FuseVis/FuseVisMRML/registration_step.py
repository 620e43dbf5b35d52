"""PET-to-MRI registration as a linear transform node on the PET, and the matrix to resample the PET with.

FuseVisLib's registration returns ``M`` mapping MRI points to PET points
(both in the volumes' own RAS coordinates). In MRML terms that is the PET
transform's *from parent* direction: the node made here has
``FromParent = M @ inverse(MRI to world)``, so the PET lands on the MRI
in every view, and the PET's parent transform is what resampling uses.
The work is split so a host can run the slow part off its main thread:
:func:`snapshot` reads the scene, :meth:`RegistrationJob.run` touches no
node, :func:`apply_result` writes the scene.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from slicer.util import vtkMatrixFromArray

from FuseVisLib.registration import (
    RegistrationProgress,
    RegistrationResult,
    RegistrationSettings,
    register_volumes,
)
from FuseVisLib.volume_io import Volume

from .input_checks import checked_pair, linear_transform_matrix

TRANSFORM_NAME = "FuseVis PET to MRI"


@dataclass
class RegistrationJob:
    """The two volumes to register, copied out of the scene: safe to run on any thread."""

    mri: Volume
    pet: Volume
    settings: RegistrationSettings = RegistrationSettings()

    def run(
        self,
        progress: Callable[[RegistrationProgress], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> RegistrationResult:
        """Rigid then affine Mattes-MI registration; raises RegistrationCancelled when ``should_cancel()``."""
        return register_volumes(self.mri, self.pet, self.settings, progress=progress, should_cancel=should_cancel)


def snapshot(mri_node, pet_node, settings: RegistrationSettings = RegistrationSettings()) -> RegistrationJob:
    """Check the pair and copy its voxels (FuseVisError for bad input; the scene is not touched)."""
    mri, pet = checked_pair(mri_node, pet_node)
    return RegistrationJob(mri, pet, settings)


def apply_result(scene, mri_node, pet_node, result: RegistrationResult, transform_node=None):
    """Put ``result`` into ``transform_node`` (a new one if None) and place the PET under it; returns the node."""
    mri_to_world = linear_transform_matrix(mri_node.GetParentTransformNode(), "MRI")
    from_parent = result.matrix @ np.linalg.inv(mri_to_world)
    if transform_node is None:
        transform_node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", scene.GenerateUniqueName(TRANSFORM_NAME))
    transform_node.SetMatrixTransformFromParent(vtkMatrixFromArray(from_parent))
    transform_node.SetAttribute("FuseVis.finalMetric", f"{result.final_metric:.6f}")
    pet_node.SetAndObserveTransformNodeID(transform_node.GetID())
    return transform_node


def pet_sampling_matrix(mri_node, pet_node) -> np.ndarray:
    """Matrix mapping MRI-node RAS points to PET-node RAS points, from both nodes' parent transforms."""
    mri_to_world = linear_transform_matrix(mri_node.GetParentTransformNode(), "MRI")
    pet_to_world = linear_transform_matrix(pet_node.GetParentTransformNode(), "PET")
    return np.linalg.inv(pet_to_world) @ mri_to_world
