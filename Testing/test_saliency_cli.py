"""`fusevis saliency` and `fusevis bench` end to end through the command-line entry point."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from FuseVisLib.cli import main
from FuseVisLib.cli.bench import describe
from FuseVisLib.errors import FuseVisError
from FuseVisLib.registry import load_method
from FuseVisLib.saliency import guidance_images, jacobian_images
from FuseVisLib.saliency.bench_goals import judged


def _fusevis_here(capsys, *args) -> tuple[int, str, str]:
    """``fusevis ARGS`` through the console entry point, in this process (no start-up cost)."""
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def npy_pair(tmp_path, rng):
    mri, pet = rng.random((20, 26), dtype=np.float32), rng.random((20, 26), dtype=np.float32)
    np.save(tmp_path / "mri.npy", mri)
    np.save(tmp_path / "pet.npy", pet)
    return tmp_path / "mri.npy", tmp_path / "pet.npy", mri, pet


def test_saliency_writes_raw_images_and_renders(npy_pair, tmp_path, capsys):
    mri_file, pet_file, mri, pet = npy_pair
    out = tmp_path / "out"
    code, stdout, err = _fusevis_here(
        capsys, "saliency", "--mri", str(mri_file), "--pet", str(pet_file), "--method", "WeightedAveraging",
        "--pixel", "0,25", "--pixel", "10,12", "--out", str(out), "--json", "--no-progress",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["guidance_path"] == "lattice" and summary["radius"] == 0
    model = load_method("WeightedAveraging", "cpu")
    guidance = guidance_images(model, mri, pet)
    np.testing.assert_array_equal(np.load(out / "guidance_mri.npy"), guidance.mri)
    np.testing.assert_array_equal(np.load(out / "guidance_pet.npy"), guidance.pet)
    jacobian = jacobian_images(model, mri, pet, 10, 12)
    np.testing.assert_array_equal(np.load(out / "jacobian_r10_c12_pet.npy"), jacobian.pet)
    for name in ["guidance_rgb", "scatter", "jacobian_r0_c25_view", "jacobian_r10_c12_mri", "fused"]:
        with Image.open(summary["files"][name]) as image:
            assert image.format == "PNG"
    with Image.open(out / "guidance_rgb.png") as image:
        assert image.size == (26, 20) and image.mode == "RGB"


def test_saliency_reads_a_real_png_pair_with_colour_mapped_pet(aanlib_dir, tmp_path, capsys):
    name = sorted(p.name for p in (aanlib_dir / "MRI").iterdir())[0]
    out = tmp_path / "out"
    code, _, err = _fusevis_here(
        capsys, "saliency", "--mri", str(aanlib_dir / "MRI" / name), "--pet", str(aanlib_dir / "PET" / name),
        "--method", "WeightedAveraging", "--out", str(out), "--no-progress",
    )
    assert code == 0, err
    with Image.open(aanlib_dir / "PET" / name) as pet_png:
        assert pet_png.mode == "RGB"
        size = pet_png.size
    guidance = np.load(out / "guidance_pet.npy")
    assert guidance.shape == (size[1], size[0]) and np.isfinite(guidance).all()
    assert "warning" not in err  # a lookup-table rendering: its activity is exact


def test_saliency_warns_that_a_resized_pet_rendering_gives_approximate_activity(aanlib_dir, tmp_path, capsys):
    name = sorted(p.name for p in (aanlib_dir / "MRI").iterdir())[0]
    files = {}
    for modality in ("MRI", "PET"):
        files[modality] = tmp_path / f"{modality}.png"
        with Image.open(aanlib_dir / modality / name) as image:
            image.convert("RGB" if modality == "PET" else "L").resize((200, 200), Image.BILINEAR).save(files[modality])
    code, _, err = _fusevis_here(
        capsys, "saliency", "--mri", str(files["MRI"]), "--pet", str(files["PET"]), "--method", "WeightedAveraging",
        "--out", str(tmp_path / "out"), "--no-progress",
    )
    assert code == 0, err
    warning = next(line for line in err.splitlines() if "warning" in line)
    assert warning.startswith("fusevis saliency: warning: the colour-mapped PET holds") and "activity read from its blended colours is approximate" in warning


def test_saliency_reads_slices_saved_as_nifti(tmp_path, capsys, rng):
    import nibabel as nib

    # Rows are the slice's j axis, columns its i axis, as in a volume's axial slice; values min-max normalised.
    mri = rng.random((20, 26)).astype(np.float32)
    pet = rng.random((20, 26)).astype(np.float32)
    files = {}
    for name, image in (("mri", mri), ("pet", pet)):
        files[name] = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(image.T * 300 + 20, np.diag([0.9, 0.9, 3, 1])), files[name])
    out = tmp_path / "out"
    code, _, err = _fusevis_here(
        capsys, "saliency", "--mri", str(files["mri"]), "--pet", str(files["pet"]), "--method", "WeightedAveraging",
        "--pixel", "10,12", "--out", str(out), "--no-progress",
    )
    assert code == 0, err
    normalised = [(image - image.min()) / (image.max() - image.min()) for image in (mri, pet)]
    expected = jacobian_images(load_method("WeightedAveraging", "cpu"), *normalised, 10, 12)
    np.testing.assert_allclose(np.load(out / "jacobian_r10_c12_mri.npy"), expected.mri, atol=1e-6)

    volume = tmp_path / "volume.nii.gz"
    nib.save(nib.Nifti1Image(rng.random((26, 20, 3)).astype(np.float32), np.eye(4)), volume)
    code, _, err = _fusevis_here(capsys, "saliency", "--mri", str(volume), "--pet", str(files["pet"]), "--method", "WeightedAveraging", "--out", str(out))
    assert code == 2 and "is a volume of 26x20x3 voxels, 3 slices; a slice input is one 2-D image" in err and "Traceback" not in err


def test_a_nifti_slice_is_read_along_its_thin_axis_with_the_volume_checks(tmp_path, rng):
    import nibabel as nib

    from FuseVisLib.saliency.slice_files import read_slice

    image = rng.random((20, 26)).astype(np.float32)  # rows k, columns j of a sagittal slice one voxel thick in i
    sagittal = tmp_path / "sagittal.nii.gz"
    nib.save(nib.Nifti1Image(image.T[None] * 50 + 7, np.eye(4)), sagittal)
    np.testing.assert_allclose(read_slice(sagittal, "MRI"), (image - image.min()) / (image.max() - image.min()), atol=1e-6)

    image[3, 4] = np.nan
    broken = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(image.T[..., None], np.eye(4)), broken)
    with pytest.raises(FuseVisError, match=r"nan\.nii\.gz has 1 NaN voxel\(s\); replace them"):
        read_slice(broken, "PET")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--pixel", "20,3"], "lies outside the image of 20 rows and 26 columns"),
        # A leading minus sign would make argparse take the value for an option ("expected one argument").
        (["--pixel", "-1,3"], "pixel (row -1, col 3) lies outside the image of 20 rows and 26 columns"),
        (["--pixel", "3"], "--pixel takes ROW,COL"),
        (["--gamma1", "3"], "gamma must be a number between 0.1 and 2.0"),
    ],
)
def test_saliency_errors_are_one_clear_line(npy_pair, tmp_path, capsys, extra, message):
    mri_file, pet_file, _, _ = npy_pair
    code, _, err = _fusevis_here(
        capsys, "saliency", "--mri", str(mri_file), "--pet", str(pet_file), "--method", "WeightedAveraging", "--out", str(tmp_path / "o"), *extra
    )
    assert code == 2
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("blank", ["mri.npy", "pet.png"])
def test_saliency_refuses_a_blank_slice(npy_pair, tmp_path, capsys, blank):
    from PIL import Image

    mri_file, pet_file, _, _ = npy_pair
    path = tmp_path / f"blank_{blank}"
    if blank.endswith(".npy"):
        np.save(path, np.full((20, 26), 0.25, dtype=np.float32))
        mri_file = path
    else:
        Image.fromarray(np.zeros((20, 26), dtype=np.uint8)).save(path)
        pet_file = path
    code, _, err = _fusevis_here(capsys, "saliency", "--mri", str(mri_file), "--pet", str(pet_file), "--method", "WeightedAveraging", "--out", str(tmp_path / "o"))
    assert code == 2 and f"{path} is blank (every pixel is" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_saliency_refuses_an_output_folder_that_is_a_file_before_computing(npy_pair, tmp_path, capsys, monkeypatch):
    from FuseVisLib.saliency import session

    def no_guidance(*args, **kwargs):
        raise AssertionError("guidance computed although --out cannot be written")

    monkeypatch.setattr(session.SaliencySession, "guidance", no_guidance)
    mri_file, pet_file, _, _ = npy_pair
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code, _, err = _fusevis_here(capsys, "saliency", "--mri", str(mri_file), "--pet", str(pet_file), "--method", "WeightedAveraging", "--out", str(blocker))
    assert code == 2 and f"cannot write {blocker}: File exists; choose another --out" in err and "Traceback" not in err


def test_an_unreadable_input_is_not_blamed_on_the_output_folder(npy_pair, tmp_path, capsys, monkeypatch):
    from FuseVisLib.saliency import slice_files

    mri_file, pet_file, _, _ = npy_pair

    def unreadable(path, *args, **kwargs):
        # Running as root, permissions cannot make a real file unreadable here.
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(slice_files, "read_slice", unreadable)
    code, _, err = _fusevis_here(capsys, "saliency", "--mri", str(mri_file), "--pet", str(pet_file), "--method", "WeightedAveraging", "--out", str(tmp_path / "o"))
    assert code == 2 and f"cannot use {mri_file}: Permission denied" in err
    assert "--out" not in err and "Traceback" not in err


def test_saliency_refuses_a_volume_and_missing_weights(npy_pair, tmp_path, capsys, monkeypatch):
    mri_file, pet_file, mri, _ = npy_pair
    np.save(tmp_path / "volume.npy", np.stack([mri, mri]))
    code, _, err = _fusevis_here(
        capsys, "saliency", "--mri", str(tmp_path / "volume.npy"), "--pet", str(pet_file), "--method", "WeightedAveraging", "--out", str(tmp_path / "o")
    )
    assert code == 2 and "save one 2-D slice" in err and "Traceback" not in err
    from FuseVisLib.registry import get_method

    monkeypatch.setattr(get_method("FunFuseAn"), "weights_file", tmp_path / "no-models" / "FunFuseAn.safetensors")
    code, _, err = _fusevis_here(capsys, "saliency", "--mri", str(mri_file), "--pet", str(pet_file), "--method", "FunFuseAn", "--out", str(tmp_path / "o"))
    assert code == 2 and "weights file" in err and "missing" in err


def test_bench_prints_every_figure_from_one_run(tmp_path, capsys, monkeypatch):
    # The per-method process inherits the environment: no weights there, so the untrained network.
    monkeypatch.setenv("FUSEVIS_MODELS_DIR", str(tmp_path / "no-models"))
    code, out, err = _fusevis_here(
        capsys, "bench", "--json", "--size", "20", "--methods", "FunFuseAn",
        "--jacobian-pixels", "3", "--reference-pixels", "4", "--full-jacobian-pixels", "1",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["size"] == 20
    figures = report["methods"]["FunFuseAn"]
    assert figures["weights"] == "untrained" and figures["paths"] == {"jacobian": "cone", "guidance": "cone"}
    assert figures["probes"] == 144
    timings = {"jacobian_ms_median", "jacobian_session_ms_median", "jacobian_full_ms_median", "jacobian_retained_backward_ms_median"}
    assert set(report["jacobian_timings"]) == timings
    for key in [*timings, "guidance_s", "naive_guidance_s_estimate", "peak_rss_mb", "guidance_probe_cost"]:
        assert figures[key] > 0, key
    # Ours and autograd's float32 Jacobians both near the float64 network's; neither is zero by accident.
    assert 0 <= figures["max_abs_error_float64"]["ours"] <= 1e-6
    assert 0 < figures["max_abs_error_float64"]["autograd_float32"] <= 1e-6
    assert report["machine_speed_start"]["gflops"] > 0 and report["machine_speed_end"]["gflops"] > 0
    assert report["machine_speed_start"]["fill_gb_per_s"] > 0
    # The report rounds the estimate to 0.1 s and guidance to 1 ms; on a 20x20 image the estimate is about a
    # second, so the ratio of the rounded figures can stray further from the ratio the bench computed.
    naive, guidance = figures["naive_guidance_s_estimate"], figures["guidance_s"]
    assert (naive - 0.05) / (guidance + 0.0005) - 0.05 <= figures["guidance_speedup"] <= (naive + 0.05) / (guidance - 0.0005) + 0.05
    assert figures["max_abs_error"]["jacobian"] <= 1e-6 and figures["max_abs_error"]["guidance"] <= 1e-6
    # Goals are set for 256x256 on the CPU: at another size none are judged.
    assert figures["goals"] is None and report["goals_met"] == {"FunFuseAn": None}
    # The same figures read against the goals, as if measured at 256x256: one made to miss, one at its limit.
    figures = {**figures, "jacobian_ms_median": 3.01, "guidance_s": 20.0, "peak_rss_mb": 2999.0}
    goals = judged("FunFuseAn", figures, 256, "cpu")
    assert {figure: verdict["met"] for figure, verdict in goals.items()} == {
        "jacobian_ms_median": False, "guidance_s": True, "max_abs_error": True, "peak_rss_mb": True,
    }
    assert judged("FunFuseAn", figures, 256, "cuda") is None
    lines = describe("FunFuseAn", {**figures, "goals": goals})
    assert lines[0].startswith("FunFuseAn (untrained") and "receptive radius 11 px, 144 probes" in lines[0]
    assert "goal <= 3 ms: MISSED" in next(line for line in lines if "jacobian_images()" in line)
    assert "goal <= 20 s: met" in next(line for line in lines if "guidance images" in line)


def test_bench_goals_judge_the_larger_error_and_memory_strictly():
    figures = {"jacobian_ms_median": 7.0, "guidance_s": 81.0, "max_abs_error": {"jacobian": 2e-7, "guidance": 1.1e-6}, "peak_rss_mb": 3000.0}
    goals = judged("DeepPedestrian", figures, 256, "cpu")
    assert goals["jacobian_ms_median"]["met"] and not goals["guidance_s"]["met"]
    assert goals["max_abs_error"] == {"value": 1.1e-6, "relation": "<=", "goal": 1e-6, "met": False}
    assert goals["peak_rss_mb"]["relation"] == "<" and not goals["peak_rss_mb"]["met"]  # below 3 GB, not at it
    assert set(judged("WeightedAveraging", figures, 256, "cpu")) == {"max_abs_error", "peak_rss_mb"}  # no speed goals of its own
    assert judged("DeepPedestrian", figures, 128, "cpu") is None
