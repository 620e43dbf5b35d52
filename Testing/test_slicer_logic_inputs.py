"""Loading inputs into a real slicer-core scene, and bad input: a clear error, the scene unchanged.

"Unchanged" is checked strictly: the same nodes, none of them modified
(every node's modification time is compared before and after).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "FuseVis"))

slicer = pytest.importorskip("slicer")

from FuseVisLib.demo_data import build_demo  # noqa: E402
from FuseVisLib.errors import FuseVisError  # noqa: E402
from FuseVisLib.volume_io import Volume, read_volume, write_dicom_series, write_nifti  # noqa: E402
from FuseVisMRML import FuseVisLogic  # noqa: E402
from FuseVisMRML.volume_nodes import add_volume_node, ijk_to_ras, node_array, volume_from_node  # noqa: E402


def scene_state(scene) -> list[tuple[str, int]]:
    """Every node's ID and modification time: equal lists mean no node was added, removed or changed."""
    return [(scene.GetNthNode(i).GetID(), scene.GetNthNode(i).GetMTime()) for i in range(scene.GetNumberOfNodes())]


def small_block(volume: Volume, shape_kji=(6, 30, 28)) -> Volume:
    start = [(size - want) // 2 for size, want in zip(volume.array.shape, shape_kji)]
    matrix = volume.ijk_to_ras.copy()
    matrix[:3, 3] += matrix[:3, :3] @ np.array(start[::-1], dtype=float)
    return Volume(volume.array[tuple(slice(a, a + n) for a, n in zip(start, shape_kji))], matrix)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    files = build_demo(folder / "demo", resolution=3.0)
    mri = small_block(read_volume(files.mri))
    return {"folder": folder, "mri": mri, "mri_file": write_nifti(mri, folder / "mri.nii.gz"), "pet_file": files.pet}


@pytest.fixture()
def logic():
    scene = slicer.vtkMRMLScene()
    return FuseVisLogic(scene)


def expect_refusal(logic, action, *message_parts: str) -> str:
    before = scene_state(logic.scene)
    with pytest.raises(FuseVisError) as caught:
        action()
    assert scene_state(logic.scene) == before, "the scene changed although the input was refused"
    message = str(caught.value)
    for part in message_parts:
        assert part in message, f"{part!r} not in: {message}"
    return message


def test_nifti_and_dicom_of_one_volume_load_to_the_same_array_and_geometry(demo, logic, tmp_path):
    dicom_folder = tmp_path / "mri_dicom"
    write_dicom_series(demo["mri"], dicom_folder, modality="MR")
    nifti_node, dicom_node = logic.load_inputs(demo["mri_file"], dicom_folder)
    nifti, dicom = node_array(nifti_node), node_array(dicom_node)
    assert nifti.shape == dicom.shape == demo["mri"].array.shape
    # DICOM stores 16-bit integers with a rescale slope: equal to within half a step.
    step = (demo["mri"].array.max() - demo["mri"].array.min()) / 65535
    assert np.abs(nifti - dicom).max() <= step
    assert np.allclose(ijk_to_ras(nifti_node), ijk_to_ras(dicom_node), atol=1e-4)
    assert np.allclose(ijk_to_ras(nifti_node), demo["mri"].ijk_to_ras, atol=1e-5)
    assert logic.parameters.mriVolume is nifti_node and logic.parameters.petVolume is dicom_node


def test_same_node_as_mri_and_pet_is_refused(demo, logic):
    mri, _ = logic.load_inputs(demo["mri_file"], demo["pet_file"])
    expect_refusal(logic, lambda: logic.set_inputs(mri, mri), "same volume", "as MRI and as PET")
    logic.parameters.petVolume = mri
    expect_refusal(logic, logic.prepare, "same volume")
    expect_refusal(logic, lambda: logic.load_inputs(demo["mri_file"], demo["mri_file"]), "same file")


def test_four_d_pet_is_refused(demo, logic, tmp_path):
    frames = np.stack([demo["mri"].array * (1 + 0.1 * t) for t in range(3)])  # (t, k, j, i)
    image = sitk.JoinSeries([sitk.GetImageFromArray(frame) for frame in frames])  # a 4-D scalar image
    sitk.WriteImage(image, str(tmp_path / "dynamic_pet.nii.gz"))
    expect_refusal(logic, lambda: logic.load_inputs(demo["mri_file"], tmp_path / "dynamic_pet.nii.gz"), "4-D", "3 frames")
    mri, _ = logic.load_inputs(demo["mri_file"], demo["pet_file"])
    vector = add_volume_node(logic.scene, "vtkMRMLVectorVolumeNode", "dynamic", np.moveaxis(frames, 0, -1), demo["mri"].ijk_to_ras)
    expect_refusal(logic, lambda: logic.set_inputs(mri, vector), "3 values per voxel")


def test_empty_volumes_are_refused(demo, logic):
    mri, _ = logic.load_inputs(demo["mri_file"], demo["pet_file"])
    no_image = logic.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "nothing")
    expect_refusal(logic, lambda: logic.set_inputs(mri, no_image), "holds no image data")
    import vtk

    empty = logic.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    empty.SetAndObserveImageData(vtk.vtkImageData())
    expect_refusal(logic, lambda: logic.set_inputs(mri, empty), "is empty")


def test_nans_are_refused(demo, logic):
    mri, pet = logic.load_inputs(demo["mri_file"], demo["pet_file"])
    spoiled = demo["mri"].array.copy()
    spoiled[2, 10, 10] = np.nan
    nan_node = add_volume_node(logic.scene, "vtkMRMLScalarVolumeNode", "nan", spoiled, demo["mri"].ijk_to_ras)
    expect_refusal(logic, lambda: logic.set_inputs(mri, nan_node), "1 NaN voxel")
    logic.parameters.mriVolume = nan_node
    logic.parameters.alreadyRegistered = True
    expect_refusal(logic, logic.prepare, "NaN")


def test_dicom_folder_missing_a_slice_is_refused(demo, logic, tmp_path):
    folder = tmp_path / "gappy"
    files = write_dicom_series(demo["mri"], folder, modality="MR")
    files[3].unlink()
    expect_refusal(logic, lambda: logic.load_inputs(demo["mri_file"], folder), "a slice is missing")


def test_volume_too_large_for_memory_at_the_batch_is_refused(demo, logic):
    logic.load_inputs(demo["mri_file"], demo["pet_file"])
    params = logic.parameters
    params.alreadyRegistered = True
    params.batchSize = 64
    params.memoryLimitGB = 0.0005  # 500 kB: the volumes fit, a batch of 64 slices does not
    message = expect_refusal(logic, logic.prepare, "batches of 64 slices", "GB", "use a batch of at most")
    assert "WeightedAveraging" in message
    params.memoryLimitGB = 0.00001  # not even the volumes
    expect_refusal(logic, logic.prepare, "crop or downsample")
    params.memoryLimitGB = 0.0
    logic.prepare()
    assert logic.step().kind == "fuse"


def test_fusevis_results_and_label_maps_are_refused_as_inputs(demo, logic):
    mri, pet = logic.load_inputs(demo["mri_file"], demo["pet_file"])
    logic.parameters.alreadyRegistered = True
    logic.prepare()
    params = logic.parameters
    for output in (params.fusedVolume, params.petOnMriGrid, params.jacobianMriVolume):
        expect_refusal(logic, lambda: logic.set_inputs(mri, output), "is one of FuseVis's own results", "choose the original PET volume")
    expect_refusal(logic, lambda: logic.set_inputs(params.guidanceMriVolume, pet), "choose the original MRI volume as MRI")
    fused_before = np.array(node_array(params.fusedVolume))
    params.petVolume = params.fusedVolume  # as a GUI selector would set it
    expect_refusal(logic, logic.prepare, "is one of FuseVis's own results")
    expect_refusal(logic, logic.register, "is one of FuseVis's own results")  # already registered: only checked
    expect_refusal(logic, logic.registration_job, "is one of FuseVis's own results")
    np.testing.assert_array_equal(node_array(params.fusedVolume), fused_before)
    labels = add_volume_node(logic.scene, "vtkMRMLLabelMapVolumeNode", "segmentation", (demo["mri"].array > 0.5).astype(np.float32), demo["mri"].ijk_to_ras)
    expect_refusal(logic, lambda: logic.set_inputs(mri, labels), "'segmentation' is a label map", "choose the PET image volume")
    expect_refusal(logic, lambda: volume_from_node(labels, "MRI"), "is a label map", "choose the MRI image volume")


def test_a_slab_too_thin_in_the_axial_plane_is_refused(demo, logic):
    mri, _ = logic.load_inputs(demo["mri_file"], demo["pet_file"])
    # Three sagittal slices: i runs along R, so every axial slice is 3 pixels wide.
    slab = demo["mri"].array[:, :, 10:13]
    node = add_volume_node(logic.scene, "vtkMRMLScalarVolumeNode", "sagittal slab", slab, demo["mri"].ijk_to_ras)
    _, pet = logic.load_inputs(demo["mri_file"], demo["pet_file"])
    expect_refusal(logic, lambda: logic.set_inputs(node, pet), "axial slices are 3x30 pixels", "at least 8 on each side")
    # One axial slice is a legitimate (if small) volume.
    one = add_volume_node(logic.scene, "vtkMRMLScalarVolumeNode", "one slice", demo["mri"].array[2:3], demo["mri"].ijk_to_ras)
    logic.set_inputs(one, pet)


def test_slice_views_turn_to_an_oblique_mri_s_own_slices(demo, logic):
    from FuseVisMRML.view_alignment import align_with_volume

    tilt, turn = np.deg2rad(20), np.deg2rad(10)
    about_r = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    about_s = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
    matrix = np.eye(4)
    matrix[:3, :3] = about_r @ about_s @ np.diag([3.0, 3.0, 3.0])
    oblique = add_volume_node(logic.scene, "vtkMRMLScalarVolumeNode", "oblique MRI", demo["mri"].array, matrix)
    view = slicer.vtkMRMLSliceNode()
    view.SetLayoutName("Red")
    logic.scene.AddNode(view)
    view.SetOrientation("Axial")
    before = np.array([view.GetSliceToRAS().GetElement(row, 2) for row in range(3)])
    assert abs(before @ (matrix[:3, 2] / 3)) < 0.95, "an axial view cuts the oblique slices at an angle"

    align_with_volume([view], oblique)

    normal = np.array([view.GetSliceToRAS().GetElement(row, 2) for row in range(3)])
    assert abs(normal @ (matrix[:3, 2] / 3)) == pytest.approx(1.0, abs=1e-9)  # along the MRI's k axis: one of its slices
