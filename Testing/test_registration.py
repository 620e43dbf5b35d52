"""PET-to-MRI registration recovers the demo's known motion; transforms keep one RAS convention throughout."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from FuseVisLib.cli import main
from FuseVisLib.demo_data import LABELS, build_demo, simulate_demo
from FuseVisLib.errors import FuseVisError
from FuseVisLib.registration import RegistrationCancelled, RegistrationSettings, register_volumes, resample_to_reference
from FuseVisLib.transforms import read_transform_file, rotation_angle_deg, sitk_from_ras_matrix, write_transform_file
from FuseVisLib.volume_io import Volume


@pytest.fixture(scope="module")
def misaligned(tmp_path_factory):
    files = build_demo(tmp_path_factory.mktemp("demo"), misalign=True)
    return files, simulate_demo(misalign=True)


def _brain_points(demo) -> np.ndarray:
    """RAS of every 20th voxel inside the brain (tissue and lesion labels)."""
    inside = (demo.labels >= LABELS["csf"]) & (demo.labels <= LABELS["oedema"])
    k, j, i = np.nonzero(inside)
    return demo.mri.ras_of_ijk(np.stack([i, j, k], axis=1)[::20])


def _errors(found: np.ndarray, true: np.ndarray, points: np.ndarray) -> tuple[float, float]:
    """Largest distance (mm) between where the two matrices send the points, and their rotation difference (deg)."""
    homogeneous = np.c_[points, np.ones(len(points))]
    distance = np.linalg.norm(homogeneous @ found.T - homogeneous @ true.T, axis=1)
    return float(distance.max()), rotation_angle_deg(np.linalg.inv(true) @ found)


def test_registration_recovers_the_true_misalignment(misaligned):
    _, demo = misaligned
    steps = []
    started = time.perf_counter()
    result = register_volumes(demo.mri, demo.pet, progress=steps.append)
    elapsed = time.perf_counter() - started
    points = _brain_points(demo)
    start_error, _ = _errors(np.eye(4), demo.true_matrix, points)
    error_mm, error_deg = _errors(result.matrix, demo.true_matrix, points)
    assert start_error > 8.0, "the demo must start visibly misaligned"
    assert error_mm < 1.0 and error_deg < 1.0, f"{error_mm:.2f} mm, {error_deg:.2f} deg after {elapsed:.1f} s"
    assert result.rotation_deg == pytest.approx(rotation_angle_deg(demo.true_matrix), abs=1.0)
    assert result.final_metric < -0.3
    assert {step.stage for step in steps} == {"rigid", "affine"}
    assert [step.level for step in steps if step.stage == "rigid"][-1] == 2
    assert result.iterations == len(steps)


def test_cli_register_prints_the_transform_and_writes_tfm(misaligned, tmp_path, capsys):
    files, demo = misaligned
    out = tmp_path / "pet_to_mri.tfm"
    code = main(["register", "--fixed", str(files.mri), "--moving", str(files.pet), "--out", str(out), "--json", "--rigid-only"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert {"matrix", "rotation_deg", "translation_mm", "final_metric"} <= printed.keys()
    true_record = json.loads(files.true_transform.read_text())
    assert printed["direction"] == true_record["direction"]
    error_mm, error_deg = _errors(np.asarray(printed["matrix"]), np.asarray(true_record["matrix"]), _brain_points(demo))
    assert error_mm < 1.0 and error_deg < 1.0
    np.testing.assert_allclose(read_transform_file(out), printed["matrix"], atol=1e-9)
    assert printed["affine_accepted"] is None


def test_affine_stage_is_kept_for_a_real_scale_difference(misaligned):
    _, demo = misaligned
    # A PET whose voxel size is 4 % off (a calibration error) needs scaling that a rigid transform cannot give.
    centre = demo.pet.centre_ras()
    scale = np.eye(4)
    scale[:3, :3] *= 0.96
    scale[:3, 3] = centre - 0.96 * centre
    pet = Volume(demo.pet.array, scale @ demo.pet.ijk_to_ras)
    true = scale @ demo.true_matrix
    result = register_volumes(demo.mri, pet)
    assert result.affine_accepted is True
    error_mm, _ = _errors(result.matrix, true, _brain_points(demo))
    assert error_mm < 1.5
    singular_values = np.linalg.svd(result.matrix[:3, :3], compute_uv=False)
    assert np.all(np.abs(singular_values - 0.96) < 0.015)


def test_cancel_stops_the_optimiser(misaligned):
    _, demo = misaligned
    steps = []
    with pytest.raises(RegistrationCancelled):
        register_volumes(demo.mri, demo.pet, progress=steps.append, should_cancel=lambda: len(steps) >= 3)
    assert len(steps) == 3


def test_an_error_in_the_progress_callback_stops_and_propagates(misaligned):
    _, demo = misaligned

    def broken(step):
        raise ValueError("display went away")

    with pytest.raises(ValueError, match="display went away"):
        register_volumes(demo.mri, demo.pet, RegistrationSettings(affine=False), progress=broken)


def test_resample_with_identity_and_with_a_one_voxel_shift(rng):
    volume = Volume.from_geometry(rng.random((6, 7, 8), dtype=np.float32), (2.0, 2.0, 2.0), (-5.0, 3.0, 1.0))
    same = resample_to_reference(volume, volume, np.eye(4))
    np.testing.assert_allclose(same.array, volume.array, atol=1e-6)
    np.testing.assert_allclose(same.ijk_to_ras, volume.ijk_to_ras)
    shift = np.eye(4)
    shift[0, 3] = 2.0  # reference point x is read from moving point x + 2 mm: one voxel along i (+R)
    shifted = resample_to_reference(volume, volume, shift)
    np.testing.assert_allclose(shifted.array[:, :, :-1], volume.array[:, :, 1:], atol=1e-6)
    assert np.all(shifted.array[:, :, -1] == 0.0)


def test_resample_puts_pet_on_the_mri_grid(misaligned):
    _, demo = misaligned
    resampled = resample_to_reference(demo.pet, demo.mri, demo.true_matrix)
    assert resampled.array.shape == demo.mri.array.shape
    np.testing.assert_allclose(resampled.ijk_to_ras, demo.mri.ijk_to_ras)


def test_transform_file_round_trip_and_lps_convention(tmp_path):
    angle = np.radians(7)
    matrix = np.array([[np.cos(angle), -np.sin(angle), 0, 4.0], [np.sin(angle), np.cos(angle), 0, -3.0], [0, 0, 1.02, 5.0], [0, 0, 0, 1]])
    path = write_transform_file(matrix, tmp_path / "t.tfm")
    np.testing.assert_allclose(read_transform_file(path), matrix, atol=1e-12)
    transform = sitk_from_ras_matrix(matrix)
    for ras in [(10.0, -20.0, 30.0), (0.0, 0.0, 0.0), (-50.0, 60.0, -7.0)]:
        expected = matrix @ np.array([*ras, 1.0])
        lps = transform.TransformPoint((-ras[0], -ras[1], ras[2]))
        np.testing.assert_allclose(lps, [-expected[0], -expected[1], expected[2]], atol=1e-9)


def test_bad_registration_input(misaligned, tmp_path, capsys):
    files, demo = misaligned
    thin = Volume.from_geometry(np.random.default_rng(0).random((2, 30, 30), dtype=np.float32), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    with pytest.raises(FuseVisError, match="at least 4"):
        register_volumes(demo.mri, thin)
    with_nan = demo.pet.with_array(demo.pet.array.copy())
    with_nan.array[10, 10, 10] = np.nan
    with pytest.raises(FuseVisError, match="NaN"):
        register_volumes(demo.mri, with_nan)
    assert main(["register", "--fixed", str(files.mri), "--moving", str(tmp_path / "absent.nii.gz"), "--out", str(tmp_path / "t.tfm")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["register", "--fixed", str(files.mri), "--moving", str(files.pet), "--out", str(tmp_path / "t.json")]) == 2
    assert ".tfm" in capsys.readouterr().err
    with pytest.raises(FuseVisError, match="does not exist"):
        read_transform_file(tmp_path / "absent.tfm")
