"""The MRML logic on a real slicer-core scene: per-slice fusion, guidance, crosshair, display, save and reload.

Data: the demo at 3 mm, MRI cropped to a 3 x 40 x 36 block around the
middle (PET left whole: it is resampled onto the cropped grid). Methods: WeightedAveraging and a
FunFuseAn network with fixed random weights registered for the test, so
nothing depends on training having finished. The Logics share one
NetworkCache, so the saliency engine plans the test network once.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "FuseVis"))

slicer = pytest.importorskip("slicer")

from FuseVisLib import networks, register_method  # noqa: E402
from FuseVisLib.demo_data import build_demo  # noqa: E402
from FuseVisLib.intensity import robust_normalise  # noqa: E402
from FuseVisLib.registration import resample_to_reference  # noqa: E402
from FuseVisLib.registry import load_method  # noqa: E402
from FuseVisLib.saliency import gamma_correct, guidance_images, guidance_rgb, jacobian_images  # noqa: E402
from FuseVisLib.volume_fusion import axial_axis, fuse_slices  # noqa: E402
from FuseVisLib.volume_io import Volume, read_volume, write_nifti  # noqa: E402
from FuseVisMRML import FuseVisLogic, NetworkCache, parameter_node  # noqa: E402
from FuseVisMRML.colour_maps import TABLE_SIZE  # noqa: E402
from FuseVisMRML.parameters import OUTPUT_ROLES  # noqa: E402
from FuseVisMRML.scene_files import read_scene  # noqa: E402
from FuseVisMRML.volume_nodes import ijk_to_ras, node_array, volume_from_node  # noqa: E402

NETWORK = "FuseVisTestFunFuseAn"
SLICES = 3
NETWORKS = NetworkCache()


def crop(volume: Volume, shape_kji: tuple[int, int, int]) -> Volume:
    """The middle ``shape_kji`` block of ``volume``, in place in RAS (a small, fast test volume)."""
    start = [(size - want) // 2 for size, want in zip(volume.array.shape, shape_kji)]
    matrix = volume.ijk_to_ras.copy()
    matrix[:3, 3] += matrix[:3, :3] @ np.array(start[::-1], dtype=float)
    block = tuple(slice(first, first + want) for first, want in zip(start, shape_kji))
    return Volume(volume.array[block], matrix)


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    files = build_demo(folder / "full", resolution=3.0)
    cropped = write_nifti(crop(read_volume(files.mri), (SLICES, 40, 36)), folder / "mri_cropped.nii.gz")
    return cropped, files.pet


@pytest.fixture(scope="module", autouse=True)
def test_network():
    torch.manual_seed(0)
    register_method(NETWORK, networks.FunFuseAn().eval(), networks.FunFuseAn.receptive_radius["pet"], replace=True)


def as_8bit(rgb: np.ndarray) -> np.ndarray:
    return np.round(rgb * 255).astype(np.uint8)


def make_logic(demo_files, method: str, background: bool = False):
    scene = slicer.vtkMRMLScene()
    crosshair = slicer.vtkMRMLCrosshairNode()
    crosshair.SetCrosshairName("default")
    scene.AddNode(crosshair)
    logic = FuseVisLogic(scene, background=background, networks=NETWORKS)
    logic.load_inputs(*demo_files)
    logic.parameters.alreadyRegistered = True
    logic.parameters.method = method
    logic.prepare()
    logic.observe_crosshair(crosshair)
    return logic, crosshair


def axis_of(logic) -> int:
    return axial_axis(volume_from_node(logic.parameters.mriVolume, "MRI"))


def reference_inputs(logic) -> tuple[np.ndarray, np.ndarray, int]:
    """Normalised MRI and PET slices computed here, independently of the Logic."""
    params = logic.parameters
    mri = volume_from_node(params.mriVolume, "MRI")
    pet = resample_to_reference(volume_from_node(params.petVolume, "PET"), mri, np.eye(4))
    axis = axial_axis(mri)
    return (
        np.moveaxis(robust_normalise(mri.array), axis, 0),
        np.moveaxis(robust_normalise(pet.array), axis, 0),
        axis,
    )


@pytest.fixture(scope="module")
def finished(demo_files):
    """The network's every slice fused and with guidance, computed on the worker thread."""
    logic, crosshair = make_logic(demo_files, NETWORK, background=True)
    logic.run_to_completion(progress=False)
    yield logic, crosshair
    logic.close()


def test_work_starts_with_the_slice_in_view_then_its_neighbours(demo_files):
    logic, _ = make_logic(demo_files, "WeightedAveraging")
    logic.set_view_slice(1)
    # A generous budget lets each task finish within its step, so the order is visible step by step.
    first, second, third = (logic.step(budget_seconds=30) for _ in range(3))
    assert (first.kind, first.slices) == ("fuse", (1,))
    assert (second.kind, second.slices) == ("guidance", (1,))
    assert third.kind == "fuse" and sorted(third.slices) == [0, 2]
    assert logic.parameters.fusedSlices == "0-2" and logic.parameters.guidanceSlices == "1"
    logic.run_to_completion(progress=False)
    assert not logic.has_work() and logic.step().kind == "idle"


def test_background_work_leaves_the_cursor_served_first_and_can_be_cancelled(demo_files, finished):
    logic, crosshair = make_logic(demo_files, NETWORK, background=True)
    assert logic.step(budget_seconds=30).kind == "fuse"
    assert logic.step(budget_seconds=0).kind == "waiting", "the view's guidance runs on in the background"
    mri = volume_from_node(logic.parameters.mriVolume, "MRI")
    crosshair.SetCursorPositionRAS([float(v) for v in mri.ras_of_ijk(np.array([12, 14, 1], float))])
    assert logic.step(budget_seconds=0).kind == "cursor"
    logic.cancel()
    while "1" not in logic.parameters.guidanceSlices.split(","):
        logic.step(budget_seconds=1.0)
    guidance = np.moveaxis(node_array(logic.parameters.guidanceMriVolume), axis_of(logic), 0)[1]
    finished_guidance = np.moveaxis(node_array(finished[0].parameters.guidanceMriVolume), axis_of(logic), 0)[1]
    assert np.array_equal(guidance, finished_guidance)
    logic.close()


def test_outputs_have_the_mri_geometry(finished):
    logic, _ = finished
    params = logic.parameters
    mri = params.mriVolume
    for role in ("fusedVolume", "guidanceMriVolume", "guidancePetVolume", "guidanceRgbVolume", "petOnMriGrid"):
        node = getattr(params, role)
        assert node.GetImageData().GetDimensions() == mri.GetImageData().GetDimensions(), role
        assert np.allclose(node.GetSpacing(), mri.GetSpacing()) and np.allclose(node.GetOrigin(), mri.GetOrigin()), role
        assert np.allclose(ijk_to_ras(node), ijk_to_ras(mri)), role
    rgb = params.guidanceRgbVolume
    assert rgb.IsA("vtkMRMLVectorVolumeNode") and rgb.GetImageData().GetNumberOfScalarComponents() == 3


@pytest.mark.parametrize("method", ["WeightedAveraging", NETWORK])
def test_fused_slice_k_is_the_method_applied_to_slice_k(demo_files, method):
    logic, _ = make_logic(demo_files, method)
    while logic.parameters.fusedSlices != f"0-{SLICES - 1}":
        logic.step()
    mri_input, pet_input, axis = reference_inputs(logic)
    model = load_method(method)
    fused = np.moveaxis(node_array(logic.parameters.fusedVolume), axis, 0)
    for k in range(SLICES):
        expected = fuse_slices(model, mri_input[[k]], pet_input[[k]], progress=False)[0]
        assert np.allclose(fused[k], expected, atol=1e-5), f"slice {k}"
    assert fused.std() > 0.01


def test_guidance_volumes_and_rgb_are_the_saliency_engines(finished):
    logic, _ = finished
    params = logic.parameters
    mri_input, pet_input, axis = reference_inputs(logic)
    model = load_method(NETWORK)
    g_mri = np.moveaxis(node_array(params.guidanceMriVolume), axis, 0)
    g_pet = np.moveaxis(node_array(params.guidancePetVolume), axis, 0)
    rgb = np.moveaxis(node_array(params.guidanceRgbVolume), axis, 0)
    fused = np.moveaxis(node_array(params.fusedVolume), axis, 0)
    for k in (SLICES - 1,):
        expected_mri, expected_pet = guidance_images(model, mri_input[k], pet_input[k])
        assert np.allclose(g_mri[k], expected_mri, atol=1e-5) and np.allclose(g_pet[k], expected_pet, atol=1e-5)
        assert np.array_equal(rgb[k], as_8bit(guidance_rgb(g_mri[k], g_pet[k], fused[k], params.gamma2)))


def test_crosshair_moves_the_jacobian_slice_and_the_scatterplot(finished):
    logic, crosshair = finished
    params = logic.parameters
    mri_input, pet_input, axis = reference_inputs(logic)
    mri = volume_from_node(params.mriVolume, "MRI")
    model = load_method(NETWORK)
    for k, row, col in ((1, 30, 20), (2, 21, 13)):
        kji = [row, col]
        kji.insert(axis, k)
        crosshair.SetCursorPositionRAS([float(v) for v in mri.ras_of_ijk(np.array(kji[::-1], float))])
        assert logic.step().kind == "cursor"
        j_mri, j_pet = jacobian_images(model, mri_input[k], pet_input[k], row, col)
        for role, expected in (("jacobianMriVolume", j_mri), ("jacobianPetVolume", j_pet)):
            node = getattr(params, role)
            assert np.allclose(np.squeeze(node_array(node), axis), expected, atol=1e-6), role
            # One slice, placed exactly on axial slice k of the MRI.
            assert node.GetImageData().GetDimensions()[2 - axis] == 1
            placed = ijk_to_ras(node)
            assert np.allclose(placed[:3, 3], mri.ras_of_ijk(np.array([0, 0, 0]) + np.eye(3)[2 - axis] * k))
        readout = logic.readout()
        assert (readout.slice, readout.row, readout.col) == (k, row, col)
        assert readout.jacobian_mri == pytest.approx(float(j_mri[row, col]), abs=1e-6)

    chart = params.scatterChart
    assert chart.GetNumberOfPlotSeriesNodes() == 2
    neighbourhood_series = chart.GetNthPlotSeriesNode(1)
    assert neighbourhood_series.GetTableNode() is params.neighbourhoodTable
    assert np.allclose(neighbourhood_series.GetColor(), (0.0, 0.8, 0.0))
    g_mri = np.moveaxis(node_array(params.guidanceMriVolume), axis, 0)
    table = slicer.util.arrayFromTableColumn(params.scatterTable, "Guidance MRI")
    assert np.allclose(table, g_mri[2].ravel())
    half = params.neighbourhoodSize // 2
    window = g_mri[2, 21 - half : 21 + half + 1, 13 - half : 13 + half + 1]
    assert np.allclose(slicer.util.arrayFromTableColumn(params.neighbourhoodTable, "Guidance MRI"), window.ravel())


def test_stale_cursor_positions_are_skipped_not_queued(finished):
    logic, crosshair = finished
    mri = volume_from_node(logic.parameters.mriVolume, "MRI")
    skipped = logic.skipped_positions
    for col in range(10, 20):
        crosshair.SetCursorPositionRAS([float(v) for v in mri.ras_of_ijk(np.array([col, 25, 2], float))])
    assert logic.step().kind == "cursor"
    assert logic.skipped_positions - skipped == 9
    assert logic.readout().col == 19
    assert logic.step().kind == "idle"


def test_the_logic_times_the_jacobian_apart_from_the_whole_update(finished):
    logic, _ = finished
    started = time.perf_counter()
    assert logic.set_principal_pixel(1, 11, 13)
    whole = time.perf_counter() - started
    # What a host shows as the Jacobian's time is the Jacobian's alone: less than the whole update
    # (which also writes the layers and the scatterplot), and renewed for every new pixel.
    assert 0 < logic.last_jacobian_seconds < whole
    first = logic.last_jacobian_seconds
    assert logic.set_principal_pixel(1, 12, 13)
    assert logic.last_jacobian_seconds != first


def test_switching_method_keeps_the_pixel_and_each_methods_slices(finished):
    logic, _ = finished
    params = logic.parameters
    logic.set_principal_pixel(2, 30, 30)
    network_fused = np.array(node_array(params.fusedVolume))
    logic.set_method("WeightedAveraging")
    assert params.fusedSlices == "" and logic.has_work()
    assert logic.readout().method == "WeightedAveraging" and logic.readout().slice == 2
    logic.run_to_completion(progress=False)
    assert not np.allclose(node_array(params.fusedVolume), network_fused)
    params.method = NETWORK
    assert not logic.has_work(), "the network's slices are cached"
    assert np.array_equal(node_array(params.fusedVolume), network_fused)


def test_unknown_method_set_through_the_node_is_undone_and_reported(finished):
    logic, _ = finished
    before = logic.parameters.method
    logic.parameters.method = "NoSuchNet"
    assert logic.parameters.method == before
    assert "NoSuchNet" in logic.last_error


def test_gamma_rewrites_colour_tables_and_rgb_not_saliency_voxels(finished):
    logic, _ = finished
    params = logic.parameters
    jacobian = np.array(node_array(params.jacobianMriVolume))
    params.gamma1 = 0.5
    table = params.jacobianColors
    # Entry 3/4 up the table is windowed value 0.5; gamma 0.5 shows it as 0.707 on the positive ramp.
    entry = round(0.75 * (TABLE_SIZE - 1))
    colour = [0.0] * 4
    table.GetColor(entry, colour)
    expected = float(gamma_correct(np.array([[2 * entry / (TABLE_SIZE - 1) - 1, -1.0]]), 0.5)[0, 0])
    assert colour[0] == pytest.approx(1.0) and colour[1] == pytest.approx((expected - 0.4) / 0.4, abs=1e-3)
    assert np.array_equal(node_array(params.jacobianMriVolume), jacobian)
    params.gamma2 = 0.4
    _, _, axis = reference_inputs(logic)
    g_mri = np.moveaxis(node_array(params.guidanceMriVolume), axis, 0)
    g_pet = np.moveaxis(node_array(params.guidancePetVolume), axis, 0)
    fused = np.moveaxis(node_array(params.fusedVolume), axis, 0)
    rgb = np.moveaxis(node_array(params.guidanceRgbVolume), axis, 0)
    assert np.array_equal(rgb[2], as_8bit(guidance_rgb(g_mri[2], g_pet[2], fused[2], 0.4)))


def test_saved_scene_reloads_with_every_output_and_resumes(finished, tmp_path):
    logic, _ = finished
    params = logic.parameters
    logic.set_principal_pixel(1, 20, 20)
    saved = {role: np.array(node_array(getattr(params, role))) for role in OUTPUT_ROLES if getattr(params, role).IsA("vtkMRMLVolumeNode")}
    geometry = {role: ijk_to_ras(getattr(params, role)) for role in saved}
    values = params.values()
    bundle = logic.save_scene(tmp_path / "fusevis.mrb")

    scene = slicer.vtkMRMLScene()
    read_scene(scene, bundle)
    reloaded = FuseVisLogic(scene, parameter_node(scene))
    for role in OUTPUT_ROLES:
        assert getattr(reloaded.parameters, role) is not None, f"{role} missing after reload"
    for role, array in saved.items():
        node = getattr(reloaded.parameters, role)
        assert np.array_equal(node_array(node), array), role
        assert np.allclose(ijk_to_ras(node), geometry[role]), role
    assert reloaded.parameters.values() == values
    chart = reloaded.parameters.scatterChart
    assert chart.GetNumberOfPlotSeriesNodes() == 2
    assert reloaded.parameters.jacobianColors.GetNumberOfColors() == TABLE_SIZE
    shown_with = reloaded.parameters.guidanceMriVolume.GetDisplayNode().GetColorNodeID()
    assert shown_with == reloaded.parameters.guidanceColors.GetID()

    reloaded.prepare()
    assert not reloaded.has_work(), "the saved slices are taken up, not recomputed"
    assert np.array_equal(node_array(reloaded.parameters.fusedVolume), saved["fusedVolume"])
    assert reloaded.set_principal_pixel(2, 10, 10)


def test_saved_results_are_taken_up_despite_geometry_noise_and_recomputed_for_another_pet(demo_files, tmp_path):
    """A PET in large units (Bq/ml) resampled through a geometry that moved in its last bits, as a scene
    read back can, changes by far less than a different PET: the first takes the saved slices up."""
    mri_file, pet_file = demo_files
    pet = read_volume(pet_file)
    large = write_nifti(Volume(pet.array / pet.array.max() * 30000, pet.ijk_to_ras), tmp_path / "pet_bq.nii.gz")
    logic, _ = make_logic((mri_file, large), "WeightedAveraging")
    logic.run_to_completion(progress=False)
    bundle = logic.save_scene(tmp_path / "large.mrb")

    def reloaded_with_noise():
        scene = slicer.vtkMRMLScene()
        read_scene(scene, bundle)
        again = FuseVisLogic(scene, parameter_node(scene))
        node = again.parameters.mriVolume
        origin = np.array(node.GetOrigin())
        node.SetOrigin(*(origin + 1e-9))
        return again

    again = reloaded_with_noise()
    again.prepare()
    assert not again.has_work(), "the saved slices are taken up"

    again = reloaded_with_noise()
    pet_node = again.parameters.petVolume
    changed = np.array(node_array(pet_node))
    changed[changed.shape[0] // 2] *= 1.01
    slicer.util.updateVolumeFromArray(pet_node, changed)
    again.prepare()
    assert again.has_work() and again.parameters.fusedSlices == "", "another PET: recomputed"


def test_the_saved_pet_is_compared_without_whole_volume_copies():
    """Resuming compares the resampled PET with the saved one; for a 256^3 volume a float64 copy is 134 MB."""
    import tracemalloc

    from FuseVisMRML.logic import _same_pet_on_mri_grid
    from FuseVisMRML.volume_nodes import add_volume_node

    pet = Volume(np.random.default_rng(0).random((16, 64, 64), dtype=np.float32) * 30000, np.diag([2.0, 2.0, 3.0, 1.0]))
    scene = slicer.vtkMRMLScene()
    saved = add_volume_node(scene, "vtkMRMLScalarVolumeNode", "saved PET", pet.array, pet.ijk_to_ras)
    tracemalloc.start()
    try:
        same = _same_pet_on_mri_grid(saved, pet)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    volume_bytes = pet.array.nbytes
    assert same
    assert peak < volume_bytes / 4, f"{peak} bytes allocated to compare a {volume_bytes}-byte volume"
    changed = np.array(node_array(saved))
    changed[-1, -1, -1] += 30000 * 2e-6
    slicer.util.updateVolumeFromArray(saved, changed)
    assert not _same_pet_on_mri_grid(saved, pet), "a voxel beyond the tolerance in the last slice"


def test_a_failed_save_leaves_the_scene_as_it_was_and_a_relative_path_reads_back(demo_files, tmp_path, monkeypatch):
    from FuseVisLib.errors import FuseVisError

    logic, _ = make_logic(demo_files, "WeightedAveraging")
    logic.run_to_completion(progress=False)

    def scene_files_state() -> tuple:
        scene = logic.scene
        return scene.GetNodesByClass("vtkMRMLStorageNode").GetNumberOfItems(), scene.GetURL(), scene.GetRootDirectory()

    logic.scene.SetRootDirectory(str(tmp_path / "before"))
    logic.scene.SetURL(str(tmp_path / "before" / "scene.mrml"))
    before = scene_files_state()
    with pytest.raises(FuseVisError, match="could not be written"):
        logic.save_scene(Path("/proc/scene.mrb"))
    assert scene_files_state() == before
    with pytest.raises(FuseVisError, match="cannot make the folder /proc/fusevis-test"):
        logic.save_scene(Path("/proc/fusevis-test/scene.mrb"))
    assert scene_files_state() == before

    # A Ctrl-C during a long save arrives as the write returns: an exception instead of a result.
    write = logic.scene.WriteToMRB

    def interrupted(path):
        write(path)
        raise KeyboardInterrupt

    monkeypatch.setattr(logic.scene, "WriteToMRB", interrupted)
    with pytest.raises(KeyboardInterrupt):
        logic.save_scene(tmp_path / "interrupted.mrb")
    assert scene_files_state() == before
    monkeypatch.undo()

    logic.save_scene(tmp_path / "saved.mrb")
    monkeypatch.chdir(tmp_path)
    scene = slicer.vtkMRMLScene()
    read_scene(scene, "saved.mrb")
    assert parameter_node(scene) is not None and FuseVisLogic(scene, parameter_node(scene)).parameters.fusedVolume is not None
