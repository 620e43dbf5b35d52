"""The built-in demo pair: offline, deterministic, T2-like MRI and FDG-like PET with a glioma, known misalignment."""
from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from scipy import ndimage

from FuseVisLib.cli import main
from FuseVisLib.demo_data import (
    LABELS,
    build_demo,
    demo_slice_pair,
    misalignment_matrix,
    mni152_paths,
    simulate_demo,
)
from FuseVisLib.errors import FuseVisError
from FuseVisLib.registration import resample_to_reference
from FuseVisLib.transforms import rotation_angle_deg
from FuseVisLib.volume_io import read_volume


def _no_network(*args, **kwargs):
    raise AssertionError("the demo tried to open a network connection")


@pytest.fixture(scope="module")
def offline_demo(tmp_path_factory):
    """The misaligned demo written to files, built with every network connection refused."""
    out = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        files = build_demo(out, misalign=True)
    return files


@pytest.fixture(scope="module")
def aligned():
    """The aligned demo in memory, PET resampled onto the MRI grid."""
    demo = simulate_demo()
    return demo, resample_to_reference(demo.pet, demo.mri, np.eye(4)).array


def test_templates_are_the_files_nilearn_loads():
    import nilearn.datasets as datasets

    paths = mni152_paths()
    assert paths["t1"] == datasets.MNI152_FILE_PATH
    assert paths["gm"] == datasets.GM_MNI152_FILE_PATH
    assert paths["wm"] == datasets.WM_MNI152_FILE_PATH


def test_files_written_offline_with_true_transform(offline_demo):
    mri, pet = read_volume(offline_demo.mri), read_volume(offline_demo.pet)
    record = json.loads(offline_demo.true_transform.read_text())
    matrix = np.asarray(record["matrix"])
    assert matrix.shape == (4, 4)
    np.testing.assert_allclose(matrix, misalignment_matrix(), atol=1e-9)
    assert "MRI (fixed)" in record["direction"] and "PET (moving)" in record["direction"]
    assert 2.0 < record["rotation_deg"] < 10.0
    assert record["rotation_deg"] == pytest.approx(rotation_angle_deg(matrix), abs=1e-3)
    assert 2.0 < np.linalg.norm(record["translation_mm"]) < 15.0
    # MRI on the 2 mm template grid; PET on its own coarser, LAS-oriented grid.
    np.testing.assert_allclose(mri.spacing, [2, 2, 2])
    np.testing.assert_allclose(pet.spacing, [3, 3, 3])
    assert pet.direction_ras[0, 0] == pytest.approx(-1.0)
    assert mri.array.shape == (94, 116, 98)


def test_misaligned_pet_is_the_aligned_one_moved_by_the_true_matrix(offline_demo, aligned):
    demo, aligned_pet = aligned
    moved = read_volume(offline_demo.pet)
    matrix = np.asarray(json.loads(offline_demo.true_transform.read_text())["matrix"])
    head = demo.labels != LABELS["background"]
    restored = resample_to_reference(moved, demo.mri, matrix).array
    ignored = resample_to_reference(moved, demo.mri, np.eye(4)).array
    # Noise sits on the PET grid, so it lands elsewhere once the head moves: agreement is high, not exact.
    assert np.corrcoef(restored[head], aligned_pet[head])[0, 1] > 0.97
    assert np.corrcoef(ignored[head], aligned_pet[head])[0, 1] < 0.9
    assert np.abs(restored - aligned_pet)[head].mean() < 0.5 * np.abs(ignored - aligned_pet)[head].mean()


def test_mri_has_t2_contrast_and_a_bright_lesion(aligned):
    demo, _ = aligned
    median = {name: float(np.median(demo.mri.array[demo.labels == code])) for name, code in LABELS.items()}
    assert median["csf"] > median["grey_matter"] > 1.3 * median["white_matter"]
    assert median["skull"] < 0.5 * median["white_matter"]
    assert median["scalp"] > median["skull"]
    for part in ("necrotic_core", "enhancing_rim", "oedema"):
        assert median[part] > 1.7 * median["white_matter"], part
    assert median["background"] < 0.05 * median["csf"]
    assert np.all(demo.mri.array == np.round(demo.mri.array)), "MRI is integer-valued like scanner data"


def test_pet_has_fdg_contrast_dark_core_and_active_rim(aligned):
    demo, pet = aligned
    deep_white = ndimage.binary_erosion(demo.labels == LABELS["white_matter"], iterations=1)
    median = {name: float(np.median(pet[demo.labels == code])) for name, code in LABELS.items()}
    white = float(np.median(pet[deep_white]))
    # Grey matter takes up 4x white matter; 6 mm of blur over a 3 mm cortex brings the measured ratio down.
    assert median["grey_matter"] > 1.6 * white
    assert median["skull"] < 0.2 * median["grey_matter"] and median["scalp"] < 0.2 * median["grey_matter"]
    assert median["background"] < 0.02 * median["grey_matter"]
    assert median["necrotic_core"] < 0.5 * median["grey_matter"]
    assert median["enhancing_rim"] > 1.5 * median["necrotic_core"]
    centre = np.unravel_index(np.argmin(np.where(demo.labels == LABELS["necrotic_core"], pet, np.inf)), pet.shape)
    assert pet[centre] < 0.35 * median["grey_matter"]


def test_pet_noise_is_realistic(aligned):
    demo, _ = aligned
    pet = demo.pet.array
    # Noise on the PET's own grid: relative spread in a uniform deep white-matter region.
    mri_to_pet = resample_to_reference(demo.mri.with_array(demo.labels.astype(np.float32)), demo.pet, np.eye(4)).array
    white = ndimage.binary_erosion(np.abs(mri_to_pet - LABELS["white_matter"]) < 0.01, iterations=1)
    values = pet[white]
    assert values.size > 200
    assert 0.05 < values.std() / values.mean() < 0.4


def test_build_is_deterministic(aligned):
    demo, _ = aligned
    again = simulate_demo()
    assert np.array_equal(demo.mri.array, again.mri.array)
    assert np.array_equal(demo.pet.array, again.pet.array)


def test_coarser_resolution_scales_both_grids():
    demo = simulate_demo(resolution=3.0)
    np.testing.assert_allclose(demo.mri.spacing, [3, 3, 3])
    np.testing.assert_allclose(demo.pet.spacing, [4.5, 4.5, 4.5])
    assert demo.true_matrix is None


def test_resolution_out_of_range_is_refused():
    with pytest.raises(FuseVisError, match=r"--resolution 0\.5 mm is outside 1-4 mm"):
        simulate_demo(resolution=0.5)


def test_demo_slice_pair_shapes_and_range():
    mri, pet = demo_slice_pair(size=128)
    for image in (mri, pet):
        assert image.shape == (128, 128) and image.dtype == np.float32
        assert image.min() >= 0.0 and image.max() <= 1.0
        assert image.std() > 0.1
    # The head sits in the middle; the corners are air.
    assert mri[:8, :8].mean() < 0.05 and pet[:8, :8].mean() < 0.05


def test_cli_without_misalign_writes_no_transform(tmp_path, capsys):
    (tmp_path / "true_transform.json").write_text("{}")  # stale file from an earlier --misalign run
    assert main(["demo-data", "--out", str(tmp_path), "--resolution", "4", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["true_transform"] is None
    assert (tmp_path / "mri.nii.gz").is_file() and (tmp_path / "pet.nii.gz").is_file()
    assert not (tmp_path / "true_transform.json").exists()


def test_cli_keeps_a_users_own_volume_and_replaces_its_own_demo(tmp_path, capsys):
    import hashlib

    import nibabel as nib

    own = tmp_path / "mri.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.eye(4)), own)
    digest = hashlib.sha256(own.read_bytes()).hexdigest()
    assert main(["demo-data", "--out", str(tmp_path), "--resolution", "4"]) == 2
    error = capsys.readouterr().err
    assert "already holds mri.nii.gz, not written by a FuseVis demo" in error and "choose another --out" in error
    assert hashlib.sha256(own.read_bytes()).hexdigest() == digest and not (tmp_path / "pet.nii.gz").exists()
    assert main(["demo-data", "--out", str(tmp_path), "--resolution", "4", "--dicom"]) == 0  # writes mri/, pet/ beside it
    assert hashlib.sha256(own.read_bytes()).hexdigest() == digest and (tmp_path / "mri").is_dir()
    demo = tmp_path / "demo"
    assert main(["demo-data", "--out", str(demo), "--resolution", "4"]) == 0
    assert main(["demo-data", "--out", str(demo), "--resolution", "4", "--misalign"]) == 0  # its own files: replaced
    assert (demo / "true_transform.json").is_file()


def test_cli_output_folder_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert main(["demo-data", "--out", str(blocker / "sub"), "--resolution", "4"]) == 2
    error = capsys.readouterr().err
    assert f"cannot write {blocker / 'sub'}" in error and "choose another --out" in error


def test_cli_bad_resolution_is_a_clear_error(tmp_path, capsys):
    assert main(["demo-data", "--out", str(tmp_path), "--resolution", "9"]) == 2
    assert "outside" in capsys.readouterr().err


@pytest.mark.parametrize("misalign", [False, True], ids=["aligned", "misaligned"])
def test_dicom_demo_is_the_nifti_demo_as_one_study(tmp_path, capsys, misalign):
    import pydicom

    flags = ["--resolution", "4", "--json"] + (["--misalign"] if misalign else [])
    assert main(["demo-data", "--out", str(tmp_path / "nifti"), *flags]) == 0
    capsys.readouterr()
    assert main(["demo-data", "--out", str(tmp_path / "dicom"), "--dicom", *flags]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["mri"].endswith("mri") and written["pet"].endswith("pet")
    for name in ("mri", "pet"):
        nifti, dicom = read_volume(tmp_path / "nifti" / f"{name}.nii.gz"), read_volume(tmp_path / "dicom" / name)
        # The same voxels in the same place; the series may run its slices the other way.
        on_nifti_grid = resample_to_reference(dicom, nifti, np.eye(4)).array
        step = (nifti.array.max() - nifti.array.min()) / 65535  # 16-bit storage with one slope per series
        np.testing.assert_allclose(on_nifti_grid, nifti.array, atol=2 * step)
        assert abs(np.linalg.det(dicom.ijk_to_ras[:3, :3])) == pytest.approx(abs(np.linalg.det(nifti.ijk_to_ras[:3, :3])), rel=1e-5)
    mri = pydicom.dcmread(next((tmp_path / "dicom" / "mri").iterdir()))
    pet = pydicom.dcmread(next((tmp_path / "dicom" / "pet").iterdir()))
    assert (mri.Modality, pet.Modality, pet.Units, pet.CountsSource) == ("MR", "PT", "GML", "EMISSION")
    assert mri.StudyInstanceUID == pet.StudyInstanceUID and mri.SeriesInstanceUID != pet.SeriesInstanceUID
    # The moved PET is in a space of its own, as from another scanner.
    assert (mri.FrameOfReferenceUID != pet.FrameOfReferenceUID) == misalign
    # Written once: a second run refuses to mix two demos in one folder.
    assert main(["demo-data", "--out", str(tmp_path / "dicom"), "--dicom", "--resolution", "4"]) == 2
    assert "already holds files" in capsys.readouterr().err
