"""Co-registration through the MRML logic: the demo's known misalignment is recovered on a real scene."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "FuseVis"))

slicer = pytest.importorskip("slicer")

from FuseVisLib.demo_data import build_demo  # noqa: E402
from FuseVisLib.registration import RegistrationCancelled  # noqa: E402
from FuseVisMRML import FuseVisLogic  # noqa: E402
from FuseVisMRML.self_test import REGISTRATION_TOLERANCE_DEG, REGISTRATION_TOLERANCE_MM, registration_error  # noqa: E402
from FuseVisMRML.volume_nodes import volume_from_node  # noqa: E402


def scene_state(scene) -> list[tuple[str, int]]:
    return [(scene.GetNthNode(i).GetID(), scene.GetNthNode(i).GetMTime()) for i in range(scene.GetNumberOfNodes())]


def matrix_of(transform_node, direction: str) -> np.ndarray:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    getattr(transform_node, f"GetMatrixTransform{direction}")(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


@pytest.fixture(scope="module")
def misaligned_demo(tmp_path_factory):
    return build_demo(tmp_path_factory.mktemp("registration"), misalign=True)


@pytest.mark.slow
def test_registration_recovers_the_demo_misalignment(misaligned_demo):
    logic = FuseVisLogic(slicer.vtkMRMLScene())
    mri_node, pet_node = logic.load_inputs(misaligned_demo.mri, misaligned_demo.pet)
    seen = []
    transform = logic.register(progress=seen.append)
    assert seen and {report.stage for report in seen} == {"rigid", "affine"}
    assert pet_node.GetParentTransformNode() is transform is logic.parameters.registrationTransform
    assert mri_node.GetParentTransformNode() is None

    true = np.asarray(json.loads(Path(misaligned_demo.true_transform).read_text())["matrix"])
    found = matrix_of(transform, "FromParent")
    shift_mm, angle_deg = registration_error(found, true, volume_from_node(mri_node, "MRI"))
    assert shift_mm <= REGISTRATION_TOLERANCE_MM, f"a corner of the MRI field of view is misplaced by {shift_mm:.2f} mm"
    assert angle_deg <= REGISTRATION_TOLERANCE_DEG, f"rotation off by {angle_deg:.2f} degrees"
    # The PET lands on the MRI: MRI points map through the PET's to-world inverse to the true PET points.
    assert np.allclose(np.linalg.inv(matrix_of(transform, "ToWorld")), found)


def test_already_registered_skips_registration_and_cancel_changes_nothing(misaligned_demo):
    logic = FuseVisLogic(slicer.vtkMRMLScene())
    _, pet_node = logic.load_inputs(misaligned_demo.mri, misaligned_demo.pet)
    before = scene_state(logic.scene)
    with pytest.raises(RegistrationCancelled):
        logic.register(should_cancel=lambda: True)
    assert scene_state(logic.scene) == before
    logic.parameters.alreadyRegistered = True
    before = scene_state(logic.scene)
    assert logic.register() is None
    assert scene_state(logic.scene) == before and pet_node.GetParentTransformNode() is None
