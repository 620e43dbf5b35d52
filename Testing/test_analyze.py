"""fusevis analyze: a folder of cases to files, figure sheets, summary.json and report.html (issue 6).

The trained networks may be absent, so the runs compare weighted averaging
with a small convolutional network registered here; its Jacobian and
guidance images go through the same saliency engine as the paper's networks.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from FuseVisLib import FuseVisError, load_method, register_method, registry
from FuseVisLib.analysis import find_pixels_of_interest, select_methods
from FuseVisLib.analysis.pixels_of_interest import brain_mask
from FuseVisLib.analysis.report_html import number
from FuseVisLib.cli import main
from FuseVisLib.fusion_loss import partial_losses
from FuseVisLib.saliency import jacobian_images
from viewer_network import ViewerTestNet

SMALL_NET = "AnalyzeTestNet"
METHODS = ["WeightedAveraging", SMALL_NET]
SHEETS = ("fused", "guidance", "guidance_rgb", "jacobians", "scatter")


# The small seeded network the viewer tests use (receptive radius 2).
SmallFusionNet = ViewerTestNet


@pytest.fixture(autouse=True)
def small_net(monkeypatch):
    """The small network in a registry copy, so other tests never see it."""
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    register_method(SMALL_NET, SmallFusionNet, 2)


def synthetic_head(size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MRI and PET of a round head: scalp bright on MRI and dark on PET, a lesion (bright MRI, dark PET core
    at row 26, col 38), a hot spot that is dark on MRI (row 40, col 22), cortex bright on PET."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    radius = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2)
    mri, pet = np.zeros((size, size), np.float32), np.zeros((size, size), np.float32)
    brain = radius < 25
    for region, mri_value, pet_value in (
        ((radius >= 28) & (radius < 31), 0.8, 0.05),  # scalp fat
        ((radius >= 25) & (radius < 28), 0.05, 0.03),  # skull
        (brain, 0.4, 0.3),  # white matter
        (brain & (radius >= 21), 0.55, 1.0),  # cortex
        (np.hypot(yy - 26, xx - 38) < 6, 0.95, 0.7),  # lesion: rim
        (np.hypot(yy - 40, xx - 22) < 3, 0.2, 1.0),  # hot spot
    ):
        mri[region], pet[region] = mri_value, pet_value
    pet[np.hypot(yy - 26, xx - 38) < 3] = 0.02  # necrotic core
    noisy = [np.clip(image + 0.02 * rng.standard_normal(image.shape), 0, 1) for image in (mri, pet)]
    return noisy[0].astype(np.float32), noisy[1].astype(np.float32)


def _save_grey(image: np.ndarray, path: Path) -> np.ndarray:
    """Write an 8-bit PNG; returns what a reader gets back after min-max normalisation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.round(image * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    values = pixels.astype(np.float32)
    return (values - values.min()) / (values.max() - values.min())


def _analyze(*args: str) -> int:
    return main(["analyze", *args, "--no-progress"])


def test_pixels_of_interest_land_in_the_lesion_core_and_the_hot_spot_not_the_scalp():
    mri, pet = synthetic_head()
    mask = brain_mask(mri, pet)
    yy, xx = np.mgrid[0:64, 0:64]
    radius = np.hypot(yy - 31.5, xx - 31.5)
    assert not mask[radius >= 25].any()  # skull and scalp (bright on MRI, dark on PET) are outside
    assert mask[(radius < 20)].mean() > 0.99
    dark, bright = find_pixels_of_interest(mri[None], pet[None], [0])
    assert np.hypot(dark.row - 26, dark.col - 38) <= 2 and dark.label == "dark PET, bright MRI"
    assert np.hypot(bright.row - 40, bright.col - 22) <= 2 and bright.label == "bright PET, dark MRI"
    with pytest.raises(FuseVisError, match="--pixel"):
        find_pixels_of_interest(mri[None], np.zeros_like(pet)[None], [0])


def test_two_case_folder_one_good_one_broken(tmp_path):
    cases, out = tmp_path / "cases", tmp_path / "out"
    mri, pet = synthetic_head()
    mri_read = _save_grey(mri, cases / "good" / "mri.png")
    pet_read = _save_grey(pet, cases / "good" / "pet.png")
    _save_grey(mri, cases / "broken" / "patient_MRI.png")  # no PET

    assert _analyze("--cases", str(cases), "--out", str(out), "--methods", *METHODS) == 1

    run = json.loads((out / "summary.json").read_text())
    status = {entry["case"]: entry for entry in run["cases"]}
    assert status["good"]["status"] == "done" and status["broken"]["status"] == "failed"
    assert "has no PET input" in status["broken"]["reason"] and status["broken"]["stage"] == "load"
    assert json.loads((out / "broken" / "summary.json").read_text())["status"] == "failed"
    assert not (out / "broken" / "report.html").exists()
    index = (out / "index.html").read_text()
    assert 'href="good/report.html"' in index and "has no PET input" in index

    good = out / "good"
    summary = json.loads((good / "summary.json").read_text())
    assert [p["label"] for p in summary["pixels"]] == ["dark PET, bright MRI", "bright PET, dark MRI"]
    assert set(summary["methods"]) == set(METHODS) and summary["skipped_methods"] == {}
    for stage in ("load", "register", "fuse", "guidance", "jacobians"):
        assert summary["timing_s"][stage] >= 0
    assert summary["timing_s"]["guidance"] > 0
    for name in SHEETS:
        with Image.open(good / summary["files"]["figures"][name]) as sheet:
            assert sheet.width > 300 and sheet.height > 200
    assert (good / ".analysis-complete.json").is_file()

    for name in METHODS:
        record = summary["methods"][name]
        folder = good / "methods" / name
        for file in ("fused.png", "fused.npy", "guidance_mri.png", "guidance_pet.png", "guidance_rgb.png", "guidance_mri.npy"):
            assert (folder / file).is_file(), (name, file)
        model = load_method(name)
        fused = np.load(folder / "fused.npy")
        with torch.no_grad():
            expected = model(torch.from_numpy(mri_read)[None, None], torch.from_numpy(pet_read)[None, None])
        assert np.allclose(fused, expected[0, 0].numpy(), atol=1e-6)
        losses = partial_losses(expected, torch.from_numpy(mri_read)[None, None], torch.from_numpy(pet_read)[None, None])
        for key, value in losses.items():
            assert record["partial_losses"][key] == pytest.approx(float(value), abs=1e-6)
        assert record["ssim"]["mri"] == pytest.approx(1 - float(losses["ssim_loss_mri"]), abs=1e-6)
        for pixel, readout in zip(summary["pixels"], record["pixels"]):
            row, col = pixel["row"], pixel["col"]
            j_mri, j_pet = jacobian_images(model, mri_read, pet_read, row, col)
            assert readout["value"]["mri"] == pytest.approx(float(j_mri[row, col]), abs=1e-6)
            assert readout["value"]["pet"] == pytest.approx(float(j_pet[row, col]), abs=1e-6)
            assert np.allclose(np.load(folder / f"jacobian_{pixel['tag']}_pet.npy"), j_pet, atol=1e-6)
            near = np.zeros(j_mri.shape, bool)
            near[max(0, row - 10) : row + 11, max(0, col - 10) : col + 11] = True
            mass = {m: np.abs(j)[near].sum() for m, j in (("mri", j_mri), ("pet", j_pet))}
            assert readout["pet_share"] == pytest.approx(mass["pet"] / (mass["mri"] + mass["pet"]), rel=1e-5)
            assert readout["neighbourhood_share"]["mri"] == pytest.approx(mass["mri"] / np.abs(j_mri).sum(), rel=1e-5)
            assert (folder / f"scatter_{pixel['tag']}.png").is_file()
    # Weighted averaging is per pixel: all of its sensitivity lies at the pixel itself; the network's does not.
    assert summary["methods"]["WeightedAveraging"]["pixels"][0]["pixel_share"]["mri"] == pytest.approx(1.0)
    assert summary["methods"][SMALL_NET]["pixels"][0]["pixel_share"]["mri"] < 0.9

    report = (good / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', report)) == len(SHEETS)
    assert not re.search(r'src="(?!data:)', report) and "<link" not in report  # self-contained
    first = summary["methods"][SMALL_NET]["pixels"][0]
    assert number(first["value"]["mri"]) in report and number(summary["methods"][SMALL_NET]["ssim"]["pet"]) in report

    # Re-run: the finished case is skipped untouched, the broken one is tried again and fails again.
    written = (good / "summary.json").stat().st_mtime_ns
    assert _analyze("--cases", str(cases), "--out", str(out), "--methods", *METHODS) == 1
    again = {entry["case"]: entry["status"] for entry in json.loads((out / "summary.json").read_text())["cases"]}
    assert again == {"good": "resumed", "broken": "failed"}
    assert (good / "summary.json").stat().st_mtime_ns == written


def test_requested_pixels_and_bad_requests(tmp_path, capsys):
    mri, pet = synthetic_head()
    _save_grey(mri, tmp_path / "mri.png")
    _save_grey(pet, tmp_path / "pet.png")
    out = tmp_path / "out"
    assert _analyze("--mri", str(tmp_path / "mri.png"), "--pet", str(tmp_path / "pet.png"), "--out", str(out),
                    "--methods", "WeightedAveraging", "--pixel", "30,31", "--views", "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["pixels"][0] | {"row": 30, "col": 31, "source": "requested"} == printed["pixels"][0]
    assert len(printed["pixels"]) == 1 and printed["pixel_rule"] is None
    assert (out / "report.html").is_file() and (out / "figures" / "jacobians.png").is_file()
    assert printed["methods"]["WeightedAveraging"]["files"]["jacobian_r30_c31_view"] == "methods/WeightedAveraging/jacobian_r30_c31_view.png"
    assert (out / "methods" / "WeightedAveraging" / "jacobian_r30_c31_view.png").is_file()

    assert _analyze("--mri", str(tmp_path / "mri.png"), "--pet", str(tmp_path / "pet.png"), "--out", str(tmp_path / "bad"),
                    "--methods", "WeightedAveraging", "--pixel", "64,3") == 1
    failure = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert failure["status"] == "failed" and "outside the image of 64 rows and 64 columns" in failure["reason"] and failure["stage"] == "pixels"

    assert _analyze("--mri", str(tmp_path / "mri.png"), "--out", str(tmp_path / "x")) == 2
    assert "--mri and --pet go together" in capsys.readouterr().err


def test_a_reused_output_folder_keeps_only_the_latest_run(tmp_path, capsys):
    mri, pet = synthetic_head()
    _save_grey(mri, tmp_path / "mri.png")
    _save_grey(pet, tmp_path / "pet.png")
    out = tmp_path / "out"
    pair = ("--mri", str(tmp_path / "mri.png"), "--pet", str(tmp_path / "pet.png"), "--out", str(out))
    assert _analyze(*pair, "--methods", *METHODS, "--pixel", "30,31") == 0
    first = json.loads((out / "summary.json").read_text())
    assert (out / first["methods"][SMALL_NET]["files"]["jacobian_r30_c31_mri"]).is_file()
    (out / "my_notes.txt").write_text("mine")  # not ours: stays
    assert _analyze(*pair, "--methods", "WeightedAveraging", "--pixel", "20,22") == 0
    latest = json.loads((out / "summary.json").read_text())
    written = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    listed = set(latest["files"]["figures"].values()) | set(latest["methods"]["WeightedAveraging"]["files"].values())
    assert listed <= written
    assert not (out / "methods" / SMALL_NET).exists()
    assert not any("r30_c31" in name for name in written)
    assert (out / "my_notes.txt").read_text() == "mine"


def test_all_skips_methods_without_weights_but_a_named_one_must_load(tmp_path):
    register_method("AnalyzeUntrained", SmallFusionNet, 2, weights_file=tmp_path / "absent.safetensors")
    selection = select_methods(["all"], device="cpu")
    assert "is missing" in selection.skipped["AnalyzeUntrained"]
    assert "WeightedAveraging" in selection.models and SMALL_NET in selection.models
    with pytest.raises(FuseVisError, match="is missing"):
        select_methods(["AnalyzeUntrained"], device="cpu")
    with pytest.raises(FuseVisError, match="unknown fusion method"):
        select_methods(["NoSuchNet"])


@pytest.fixture(scope="module")
def demo_4mm(tmp_path_factory):
    from FuseVisLib.demo_data import build_demo

    return build_demo(tmp_path_factory.mktemp("demo"), resolution=4.0)


def test_volume_case_gives_nifti_volumes_on_the_mri_grid(demo_4mm, tmp_path):
    from FuseVisLib.intensity import robust_normalise
    from FuseVisLib.registration import resample_to_reference
    from FuseVisLib.volume_io import read_volume

    out = tmp_path / "out"
    assert _analyze("--mri", str(demo_4mm.mri), "--pet", str(demo_4mm.pet), "--out", str(out),
                    "--methods", *METHODS, "--slices", "22..24") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "volume" and summary["analysed_slices"] == [22, 24] and summary["axial_axis"] == 0
    assert all(22 <= pixel["slice"] <= 24 for pixel in summary["pixels"])

    mri_volume = read_volume(demo_4mm.mri)
    mri = robust_normalise(mri_volume.array)
    pet = robust_normalise(resample_to_reference(read_volume(demo_4mm.pet), mri_volume, np.eye(4)).array)
    assert np.allclose(nib.load(out / "inputs" / "pet_on_mri.nii.gz").get_fdata().transpose(2, 1, 0), pet, atol=1e-6)
    reference = nib.load(demo_4mm.mri)
    for name in METHODS:
        folder = out / "methods" / name
        fused = nib.load(folder / "fused.nii.gz")
        assert fused.shape == reference.shape and np.allclose(fused.affine, reference.affine)
        for file in ("guidance_mri.nii.gz", "guidance_pet.nii.gz", "guidance_rgb.nii.gz"):
            slab = nib.load(folder / file)
            assert slab.shape == reference.shape[:2] + (3,)
            assert np.allclose(slab.affine @ [0, 0, 0, 1], reference.affine @ [0, 0, 22, 1])
        assert nib.load(folder / "guidance_rgb.nii.gz").get_data_dtype().names == ("R", "G", "B")
        model = load_method(name)
        for pixel, readout in zip(summary["pixels"], summary["methods"][name]["pixels"]):
            j_mri, j_pet = jacobian_images(model, mri[pixel["slice"]], pet[pixel["slice"]], pixel["row"], pixel["col"])
            assert readout["value"]["pet"] == pytest.approx(float(j_pet[pixel["row"], pixel["col"]]), abs=1e-6)
            guidance_mri = nib.load(folder / "guidance_mri.nii.gz").get_fdata().transpose(2, 1, 0)
            assert guidance_mri[pixel["slice"] - 22, pixel["row"], pixel["col"]] == pytest.approx(float(j_mri[pixel["row"], pixel["col"]]), abs=1e-6)


def _restored(path: Path, out: Path, order: tuple[int, int, int], flips: tuple[bool, bool, bool]) -> Path:
    """The same NIfTI volume stored another way: voxel axes permuted by ``order`` and reversed where ``flips``,
    with the affine adjusted so that every voxel keeps its place in the patient."""
    image = nib.load(path)
    data, affine = np.asarray(image.dataobj), image.affine.copy()
    data, affine = np.transpose(data, order), affine[:, list(order) + [3]]
    for axis, flip in enumerate(flips):
        if flip:
            data = np.flip(data, axis)
            affine[:, 3] = affine @ np.r_[np.eye(3)[axis] * (data.shape[axis] - 1), 1]
            affine[:, axis] = -affine[:, axis]
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine), out)
    return out


def test_axial_pictures_are_radiological_whichever_way_the_volume_is_stored(demo_4mm, tmp_path):
    from FuseVisLib.analysis.display import Display
    from FuseVisLib.volume_fusion import axial_axis, axial_slices
    from FuseVisLib.volume_io import read_volume

    storages = {
        "as built (RAS)": demo_4mm.mri,
        "mirrored (LAS, as dcm2niix writes)": _restored(demo_4mm.mri, tmp_path / "las.nii.gz", (0, 1, 2), (True, False, False)),
        "as DICOM (LPS)": _restored(demo_4mm.mri, tmp_path / "lps.nii.gz", (0, 1, 2), (True, True, False)),
        "rows and columns swapped": _restored(demo_4mm.mri, tmp_path / "swapped.nii.gz", (1, 0, 2), (False, True, False)),
    }
    shown = {}
    for name, path in storages.items():
        volume = read_volume(path)
        axis = axial_axis(volume)
        display = Display.radiological(volume, axis)
        axial = axial_slices(volume.array, axis)[23]
        shown[name] = display.image(axial)
        assert display.caption.startswith("Axial slices shown the radiological way"), name
        row, col = np.unravel_index(np.argmax(axial), axial.shape)  # a stored pixel lands where its value is shown
        assert shown[name][display.pixel(row, col, shown[name].shape)] == axial[row, col], name
    reference = shown["as built (RAS)"]
    assert reference.shape[0] > 4 and not np.allclose(reference, reference[::-1]) and not np.allclose(reference, reference[:, ::-1])
    for name, image in shown.items():
        np.testing.assert_array_equal(image, reference, err_msg=name)


def test_oblique_slices_say_so_in_the_caption(demo_4mm, tmp_path):
    from FuseVisLib.analysis.display import Display
    from FuseVisLib.volume_fusion import axial_axis
    from FuseVisLib.volume_io import Volume

    tilt = np.radians(20.0)
    rotation = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    volume = Volume.from_geometry(np.zeros((5, 6, 7), dtype=np.float32), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), rotation)
    caption = Display.radiological(volume, axial_axis(volume)).caption
    assert caption.startswith("Oblique slices (20 degrees from axial) shown in the nearest radiological orientation")
