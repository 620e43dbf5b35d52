"""Loading a pair into the viewer's Logic is all or nothing (issue 5), on a real MRML scene.

Each bad input (not an image, a missing file, a PET of another patient
that does not cover the MRI, a cancelled registration) must leave the
pair on display exactly as it was: the same nodes, the same results, the
Logic still prepared and answering for pixels. A good pair replaces the
old one and removes its input nodes.
"""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

pytest.importorskip("slicer")
from slicer import vtkMRMLScene  # noqa: E402
from slicer.util import arrayFromVolume  # noqa: E402

from FuseVisLib.demo_data import build_demo  # noqa: E402
from FuseVisLib.errors import FuseVisError  # noqa: E402
from FuseVisLib.volume_io import Volume, read_volume, write_nifti  # noqa: E402
from FuseVisMRML import FuseVisLogic  # noqa: E402
from FuseVisViewer.pair_loading import LoadCancelled, load_pair  # noqa: E402

DEMO_RESOLUTION = 4.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo(tmp_path_factory.mktemp("demo"), resolution=DEMO_RESOLUTION)


def load(logic, mri, pet, already_registered=True, cancel=None):
    messages = []
    asyncio.run(load_pair(logic, mri, pet, already_registered, cancel or threading.Event(), messages.append))
    return messages


def snapshot(logic) -> dict:
    params = logic.parameters
    scene = logic.scene
    return {
        "inputs": (params.mriVolume.GetID(), params.petVolume.GetID()),
        "nodes": sorted(scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())),
        "fused": arrayFromVolume(params.fusedVolume).copy(),
        "pet_on_mri": arrayFromVolume(params.petOnMriGrid).copy(),
    }


@pytest.fixture()
def loaded(demo):
    logic = FuseVisLogic(vtkMRMLScene(), background=False)
    messages = load(logic, demo.mri, demo.pet)
    assert logic.prepared and any("Reading" in m for m in messages)
    logic.run_to_completion(progress=False)
    yield logic
    logic.close()


def far_away_pet(path, mri_path):
    """Another patient's PET: another shape, its field of view 400 mm from the MRI's."""
    mri = read_volume(mri_path)
    matrix = np.diag([4.0, 4.0, 4.0, 1.0])
    matrix[:3, 3] = mri.ijk_to_ras[:3, 3] + 400.0
    return write_nifti(Volume(np.random.default_rng(0).random((12, 30, 25)) + 0.5, matrix), path)


def assert_unchanged(logic, before: dict) -> None:
    after = snapshot(logic)
    assert after["inputs"] == before["inputs"]
    assert after["nodes"] == before["nodes"]  # no node left behind, none lost
    np.testing.assert_array_equal(after["fused"], before["fused"])
    np.testing.assert_array_equal(after["pet_on_mri"], before["pet_on_mri"])
    assert logic.prepared
    slices, rows, cols = after["fused"].shape
    pixel = (slices // 2, rows // 2, cols // 2)
    logic.set_principal_pixel(*pixel)
    readout = logic.readout()
    assert (readout.slice, readout.row, readout.col) == pixel
    assert readout.fused == pytest.approx(float(after["fused"][pixel]))


def test_bad_pairs_leave_the_loaded_pair_as_it_was(loaded, demo, tmp_path):
    before = snapshot(loaded)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image\n")
    cases = {
        "neither a NIfTI file": (notes, demo.pet),
        "does not exist": (tmp_path / "missing.nii.gz", demo.pet),
        "does not overlap the MRI": (demo.mri, far_away_pet(tmp_path / "other.nii.gz", demo.mri)),
        "same file": (demo.pet, demo.pet),
    }
    for expected, (mri, pet) in cases.items():
        with pytest.raises(FuseVisError, match=expected):
            load(loaded, mri, pet)
        assert_unchanged(loaded, before)


def test_cancelled_registration_leaves_the_loaded_pair(loaded, demo):
    before = snapshot(loaded)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(LoadCancelled):
        load(loaded, demo.mri, demo.pet, already_registered=False, cancel=cancel)
    assert_unchanged(loaded, before)


def test_a_good_pair_replaces_the_old_one(loaded, demo, tmp_path):
    old_mri, old_pet = loaded.parameters.mriVolume.GetID(), loaded.parameters.petVolume.GetID()
    copy = build_demo(tmp_path / "again", resolution=DEMO_RESOLUTION)
    load(loaded, copy.mri, copy.pet)
    params = loaded.parameters
    assert params.mriVolume.GetID() not in (old_mri, old_pet)
    assert loaded.scene.GetNodeByID(old_mri) is None and loaded.scene.GetNodeByID(old_pet) is None
    assert loaded.prepared
    np.testing.assert_array_equal(arrayFromVolume(params.mriVolume), read_volume(copy.mri).array)
