"""The whole FuseVis workflow on the demo, with checks: run by the module's Test class inside Slicer and by pytest.

Each check compares the Logic's MRML output with an independent
computation by FuseVisLib (registration against the demo's known
misalignment, fusion and Jacobians recomputed from the normalised inputs),
and raises AssertionError naming what differs.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from FuseVisLib.demo_data import build_demo
from FuseVisLib.intensity import robust_normalise
from FuseVisLib.registration import resample_to_reference
from FuseVisLib.registry import load_method
from FuseVisLib.saliency import jacobian_images
from FuseVisLib.transforms import rotation_angle_deg
from FuseVisLib.volume_fusion import axial_axis, axial_slices, fuse_slices
from FuseVisLib.volume_io import Volume

from .logic import FuseVisLogic
from .parameters import OUTPUT_ROLES, parameter_node
from .scene_files import read_scene
from .volume_nodes import ijk_to_ras, node_array, volume_from_node

REGISTRATION_TOLERANCE_MM = 1.0
REGISTRATION_TOLERANCE_DEG = 1.0


def registration_error(found: np.ndarray, true: np.ndarray, mri: Volume) -> tuple[float, float]:
    """(mm, degrees): the largest distance between where ``found`` and ``true`` map a corner of the MRI's
    field of view (for an affine map the worst point of the box is a corner), and the rotation between them."""
    last = np.asarray(mri.shape_ijk, dtype=float) - 1
    corners = np.array([[i, j, k] for i in (0, last[0]) for j in (0, last[1]) for k in (0, last[2])])
    points = np.c_[mri.ras_of_ijk(corners), np.ones(len(corners))]
    shift = float(np.linalg.norm((points @ found.T - points @ true.T)[:, :3], axis=1).max())
    return shift, rotation_angle_deg(np.linalg.inv(true) @ found)


def run_workflow(
    scene,
    work_dir: str | Path,
    method: str = "WeightedAveraging",
    misaligned: bool = True,
    resolution: float = 2.0,
    log: Callable[[str], None] = print,
) -> FuseVisLogic:
    """Demo -> load -> register (or 'already registered') -> fuse the slice in view -> crosshair -> save and reload."""
    work_dir = Path(work_dir)
    log("Building the demo pair")
    files = build_demo(work_dir / "demo", misalign=misaligned, resolution=resolution)
    logic = FuseVisLogic(scene)
    params = logic.parameters
    mri_node, pet_node = logic.load_inputs(files.mri, files.pet)
    mri = volume_from_node(mri_node, "MRI")
    if misaligned:
        log("Registering PET to MRI")
        transform = logic.register()
        found = _from_parent(transform)
        true = np.asarray(json.loads(Path(files.true_transform).read_text())["matrix"])
        shift, angle = registration_error(found, true, mri)
        assert shift <= REGISTRATION_TOLERANCE_MM and angle <= REGISTRATION_TOLERANCE_DEG, (
            f"registration is off by {shift:.2f} mm and {angle:.2f} degrees"
        )
        matrix = found
    else:
        params.alreadyRegistered = True
        assert logic.register() is None, "'already registered' must skip the registration"
        matrix = np.eye(4)

    log(f"Fusing with {method}, the slice in view first")
    params.method = method
    logic.prepare()
    view = params.viewSlice
    first = logic.step(budget_seconds=60)  # long enough for the task to end within the step
    assert first.kind == "fuse" and first.slices == (view,), f"the first step must fuse the slice in view, did {first}"
    axis = axial_axis(mri)
    pet_on_mri = resample_to_reference(volume_from_node(pet_node, "PET"), mri, matrix)
    mri_input = axial_slices(robust_normalise(mri.array), axis)
    pet_input = axial_slices(robust_normalise(pet_on_mri.array), axis)
    model = load_method(method)
    expected = fuse_slices(model, mri_input[[view]], pet_input[[view]], progress=False)[0]
    fused = axial_slices(node_array(params.fusedVolume), axis)[view]
    assert np.allclose(fused, expected, atol=1e-5), "the fused slice in view differs from the method applied to that slice"
    for role in ("fusedVolume", "guidanceMriVolume", "guidancePetVolume", "guidanceRgbVolume"):
        node = getattr(params, role)
        assert np.allclose(ijk_to_ras(node), mri.ijk_to_ras), f"{node.GetName()} does not have the MRI's geometry"

    log("Moving the crosshair")
    crosshair = _crosshair(scene)
    logic.observe_crosshair(crosshair)
    while logic.has_work() and not logic.parameters.guidanceSlices:
        logic.step(budget_seconds=1.0)
    rows, cols = mri_input.shape[1:]
    index = [rows // 2, cols // 2]
    index.insert(axis, view)
    ras = mri.ras_of_ijk(np.array(index[::-1], dtype=float))
    crosshair.SetCursorPositionRAS([float(v) for v in ras])
    report = logic.step()
    assert report.kind == "cursor", f"a cursor move must be served first, got {report}"
    j_mri, j_pet = jacobian_images(model, mri_input[view], pet_input[view], rows // 2, cols // 2)
    shown = node_array(params.jacobianMriVolume)
    assert np.allclose(np.squeeze(shown, axis), j_mri, atol=1e-6), "the Jacobian MRI node differs from jacobian_images"
    assert np.allclose(np.squeeze(node_array(params.jacobianPetVolume), axis), j_pet, atol=1e-6), "the Jacobian PET node differs"
    assert params.scatterChart.GetNumberOfPlotSeriesNodes() == 2, "the scatterplot needs its two series"

    log("Saving and reloading the scene")
    bundle = logic.save_scene(work_dir / "fusevis.mrb")
    before = {role: np.array(node_array(getattr(params, role))) for role in OUTPUT_ROLES if getattr(params, role) is not None and getattr(params, role).IsA("vtkMRMLVolumeNode")}
    logic.close()
    read_scene(scene, bundle)
    reloaded = FuseVisLogic(scene, parameter_node(scene))
    for role, array in before.items():
        node = getattr(reloaded.parameters, role)
        assert node is not None and np.array_equal(node_array(node), array), f"{role} was not kept by the saved scene"
    log("FuseVis workflow passed")
    return reloaded


def _from_parent(transform_node) -> np.ndarray:
    from slicer.util import arrayFromVTKMatrix
    import vtk

    matrix = vtk.vtkMatrix4x4()
    transform_node.GetMatrixTransformFromParent(matrix)
    return arrayFromVTKMatrix(matrix)


def _crosshair(scene):
    node = scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
    if node is None:
        import slicer

        node = slicer.vtkMRMLCrosshairNode()
        node.SetCrosshairName("default")
        scene.AddNode(node)
    return node
