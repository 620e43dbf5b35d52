"""Volumes from NIfTI files and DICOM series: same voxels and RAS geometry either way; bad input refused clearly."""
from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image

from FuseVisLib.demo_data import simulate_demo
from FuseVisLib.errors import FuseVisError
from FuseVisLib.intensity import robust_normalise
from FuseVisLib.volume_io import Volume, check_volume, read_volume, write_dicom_series, write_nifti


@pytest.fixture(scope="module")
def demo():
    return simulate_demo()


@pytest.fixture(scope="module")
def mri_dicom(demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dicom") / "mri"
    write_dicom_series(demo.mri, folder, modality="MR")
    return folder


def _small_volume(rng, shape=(6, 7, 8)) -> Volume:
    return Volume.from_geometry(rng.random(shape, dtype=np.float32) * 100, (1.5, 1.2, 2.5), (10.0, -20.0, 30.0))


def test_nifti_and_dicom_of_the_demo_mri_load_the_same(demo, mri_dicom, tmp_path):
    nifti = read_volume(write_nifti(demo.mri, tmp_path / "mri.nii.gz"))
    dicom = read_volume(mri_dicom)
    # Integer-valued MRI fits 16-bit DICOM exactly.
    assert np.array_equal(nifti.array, dicom.array)
    assert np.array_equal(nifti.array, demo.mri.array)
    np.testing.assert_allclose(dicom.ijk_to_ras, nifti.ijk_to_ras, atol=1e-4)
    np.testing.assert_allclose(nifti.ijk_to_ras, demo.mri.ijk_to_ras, atol=1e-4)


def test_dicom_of_the_las_pet_keeps_every_voxel_in_place(demo, tmp_path):
    dicom = read_volume(write_dicom_series(demo.pet, tmp_path / "pet", modality="PT")[0].parent)
    # The reader stacks slices along the normal of the row/column directions, here the reverse of k.
    np.testing.assert_allclose(dicom.array[::-1], demo.pet.array, atol=demo.pet.array.max() / 65535)
    last_slice = demo.pet.ijk_to_ras @ np.array([0, 0, demo.pet.array.shape[0] - 1, 1])
    np.testing.assert_allclose(dicom.origin_ras, last_slice[:3], atol=1e-4)
    np.testing.assert_allclose(dicom.ijk_to_ras[:3, :2], demo.pet.ijk_to_ras[:3, :2], atol=1e-6)
    np.testing.assert_allclose(dicom.ijk_to_ras[:3, 2], -demo.pet.ijk_to_ras[:3, 2], atol=1e-6)


def test_dicom_headers_state_lps_geometry(demo, mri_dicom):
    first = pydicom.dcmread(sorted(mri_dicom.iterdir())[0])
    assert first.Modality == "MR" and first.SOPClassUID == pydicom.uid.MRImageStorage
    origin = demo.mri.origin_ras
    np.testing.assert_allclose([float(v) for v in first.ImagePositionPatient], [-origin[0], -origin[1], origin[2]], atol=1e-4)
    np.testing.assert_allclose([float(v) for v in first.ImageOrientationPatient], [-1, 0, 0, 0, -1, 0], atol=1e-6)
    assert (first.Rows, first.Columns) == demo.mri.array.shape[1:]


def test_sitk_conversion_flips_x_and_y(rng):
    volume = Volume(rng.random((4, 5, 6), dtype=np.float32), np.array([[0, 2.0, 0, 5], [-1.5, 0, 0, 6], [0, 0, 3.0, 7], [0, 0, 0, 1]]))
    image = volume.to_sitk()
    for ijk in [(0, 0, 0), (5, 4, 3), (2, 1, 3)]:
        ras = volume.ras_of_ijk(ijk)
        np.testing.assert_allclose(image.TransformIndexToPhysicalPoint(ijk), [-ras[0], -ras[1], ras[2]], atol=1e-9)
    back = Volume.from_sitk(image)
    assert np.array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.ijk_to_ras, volume.ijk_to_ras, atol=1e-12)


def test_nifti_round_trip_keeps_oblique_geometry(rng, tmp_path):
    angle = np.radians(20)
    direction = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    volume = Volume.from_geometry(rng.random((5, 6, 7), dtype=np.float32), (1.0, 2.0, 3.0), (1.0, 2.0, 3.0), direction)
    back = read_volume(write_nifti(volume, tmp_path / "oblique.nii"))
    assert np.array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.ijk_to_ras, volume.ijk_to_ras, atol=1e-5)


def test_missing_path(tmp_path):
    with pytest.raises(FuseVisError, match="does not exist"):
        read_volume(tmp_path / "nothing.nii.gz")


def test_unreadable_nifti(tmp_path):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"this is not an image" * 20)
    with pytest.raises(FuseVisError, match="not a readable NIfTI"):
        read_volume(path)


def test_not_a_volume(tmp_path, rng):
    png = tmp_path / "slice.png"
    Image.fromarray((rng.random((16, 16)) * 255).astype(np.uint8)).save(png)
    with pytest.raises(FuseVisError, match="neither a NIfTI file"):
        read_volume(png)
    line = tmp_path / "line.nii.gz"
    nib.save(nib.Nifti1Image(rng.random(16).astype(np.float32), np.eye(4)), line)
    with pytest.raises(FuseVisError, match="1-D image, not a volume"):
        read_volume(line)


def test_a_2d_nifti_is_a_volume_of_one_slice(tmp_path, rng):
    """As Slicer loads it: the geometry kept, the pixels as the one axial slice [j, i]."""
    pixels = rng.random((16, 12)).astype(np.float32)  # nibabel's [i, j]
    affine = np.array([[-0.8, 0, 0, 10], [0, 0.9, 0, -5], [0, 0, 2.5, 30], [0, 0, 0, 1]])
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(pixels, affine), flat)

    volume = read_volume(flat)

    assert volume.array.shape == (1, 12, 16)
    np.testing.assert_array_equal(volume.array[0], pixels.T)
    np.testing.assert_allclose(volume.ijk_to_ras, affine)


def test_complex_nifti_is_refused(tmp_path, rng):
    path = tmp_path / "complex.nii.gz"
    nib.save(nib.Nifti1Image((rng.random((5, 6, 7)) + 1j * rng.random((5, 6, 7))).astype(np.complex64), np.eye(4)), path)
    with pytest.raises(FuseVisError, match="holds complex voxels .*export the magnitude image"):
        read_volume(path)


def test_dynamic_nifti(tmp_path, rng):
    path = tmp_path / "dynamic.nii.gz"
    nib.save(nib.Nifti1Image(rng.random((8, 8, 8, 5)).astype(np.float32), np.eye(4)), path)
    with pytest.raises(FuseVisError, match="4-D \\(dynamic\\) volume with 5 frames"):
        read_volume(path)
    single = tmp_path / "single_frame.nii.gz"
    nib.save(nib.Nifti1Image(rng.random((8, 8, 8, 1)).astype(np.float32), np.eye(4)), single)
    assert read_volume(single).array.shape == (8, 8, 8)


def test_empty_and_blank_volumes(tmp_path):
    empty = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 0), np.float32), np.eye(4)), empty)
    with pytest.raises(FuseVisError, match="empty"):
        read_volume(empty)
    blank = tmp_path / "blank.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), blank)
    with pytest.raises(FuseVisError, match="blank"):
        read_volume(blank)


def test_nan_voxels(tmp_path, rng):
    data = rng.random((8, 8, 8)).astype(np.float32)
    data[1, 2, 3] = np.nan
    data[4, 4, 4] = np.nan
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(FuseVisError, match="2 NaN voxel"):
        read_volume(path)
    with pytest.raises(FuseVisError, match="infinite"):
        check_volume(Volume(np.full((3, 3, 3), np.inf, np.float32), np.eye(4)), "test volume")


def test_dicom_missing_slice(mri_dicom, tmp_path):
    folder = tmp_path / "gap"
    shutil.copytree(mri_dicom, folder)
    (folder / "slice_0040.dcm").unlink()
    with pytest.raises(FuseVisError, match="a slice is missing"):
        read_volume(folder)


def test_dicom_truncated_slice_is_named(mri_dicom, tmp_path):
    folder = tmp_path / "truncated"
    shutil.copytree(mri_dicom, folder)
    damaged = folder / "slice_0030.dcm"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    with pytest.raises(FuseVisError, match="slice_0030.dcm in the folder could not be read as part of it"):
        read_volume(folder)


def _one_slice_changed(mri_dicom, folder, change) -> None:
    shutil.copytree(mri_dicom, folder)
    dataset = pydicom.dcmread(folder / "slice_0020.dcm")
    change(dataset)
    dataset.save_as(folder / "slice_0020.dcm")


def test_dicom_localizer_in_the_series_is_named(mri_dicom, tmp_path):
    def sagittal(dataset):
        dataset.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]

    _one_slice_changed(mri_dicom, tmp_path / "localizer", sagittal)
    with pytest.raises(FuseVisError, match=r"1 of its \d+ images lie in another plane than the others \(a localizer\?\): slice_0020.dcm; remove them"):
        read_volume(tmp_path / "localizer")


def test_dicom_slice_of_another_size_is_named(mri_dicom, tmp_path):
    def smaller(dataset):
        pixels = dataset.pixel_array[:-4, :-2].copy()
        dataset.Rows, dataset.Columns = pixels.shape
        dataset.PixelData = pixels.tobytes()

    _one_slice_changed(mri_dicom, tmp_path / "resized", smaller)
    with pytest.raises(FuseVisError, match=r"images have another size than the others: slice_0020.dcm \(\d+x\d+ pixels\)"):
        read_volume(tmp_path / "resized")


def test_dicom_dynamic_series(rng, tmp_path):
    volume = _small_volume(rng)
    first = write_dicom_series(volume, tmp_path / "frame1")
    second = write_dicom_series(volume.with_array(volume.array * 2), tmp_path / "frame2")
    series_uid = pydicom.dcmread(first[0]).SeriesInstanceUID
    for index, path in enumerate(second):
        dataset = pydicom.dcmread(path)
        dataset.SeriesInstanceUID = series_uid  # one series, two frames per position
        dataset.save_as(tmp_path / "frame1" / f"frame2_{index}.dcm")
    with pytest.raises(FuseVisError, match="dynamic \\(4-D\\)"):
        read_volume(tmp_path / "frame1")


def test_dicom_folder_with_two_series(rng, tmp_path):
    volume = _small_volume(rng)
    write_dicom_series(volume, tmp_path / "a")
    other = write_dicom_series(volume.with_array(volume.array + 1000), tmp_path / "b")
    for path in other:
        shutil.copy(path, tmp_path / "a" / f"b_{path.name}")
    with pytest.raises(FuseVisError, match="holds 2 DICOM series"):
        read_volume(tmp_path / "a")
    wanted = pydicom.dcmread(other[0]).SeriesInstanceUID
    chosen = read_volume(tmp_path / "a", series_id=wanted)
    np.testing.assert_allclose(chosen.array, volume.array + 1000, atol=(volume.array.max() - volume.array.min()) / 65535)


def test_dicom_single_file_and_empty_folder(mri_dicom, tmp_path):
    with pytest.raises(FuseVisError, match="single DICOM file"):
        read_volume(mri_dicom / "slice_0001.dcm")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FuseVisError, match="no DICOM series"):
        read_volume(tmp_path / "empty")


def test_dicom_writer_refuses_a_used_folder_and_shear(rng, tmp_path):
    volume = _small_volume(rng)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "note.txt").write_text("x")
    with pytest.raises(FuseVisError, match="not empty"):
        write_dicom_series(volume, tmp_path / "used")
    sheared = Volume(volume.array, np.array([[1.0, 0.5, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]]))
    with pytest.raises(FuseVisError, match="sheared"):
        write_dicom_series(sheared, tmp_path / "sheared")


def test_sitk_reads_our_dicom_as_a_plain_series(mri_dicom, demo):
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(mri_dicom))
    image = sitk.ReadImage(files)
    assert image.GetSize() == tuple(reversed(demo.mri.array.shape))
    np.testing.assert_allclose(image.GetSpacing(), demo.mri.spacing, atol=1e-6)


def test_robust_normalise_maps_percentiles_to_unit_range(rng):
    values = np.concatenate([np.linspace(0, 100, 10001), [1e6, -1e6]]).astype(np.float32)
    normalised = robust_normalise(values, low_pct=1.0, high_pct=99.0)
    assert normalised.dtype == np.float32 and normalised.min() == 0.0 and normalised.max() == 1.0
    assert np.all(np.diff(normalised[:-2]) >= 0)
    low, high = np.percentile(values, [1.0, 99.0])
    middle = values[5000]
    assert normalised[5000] == pytest.approx((middle - low) / (high - low), abs=1e-6)
    # The outliers are clipped instead of squeezing the tissue into a sliver of the range.
    assert normalised[-2] == 1.0 and normalised[-1] == 0.0
    assert 0.45 < normalised[5000] < 0.55


def test_robust_normalise_rejects_flat_images_and_bad_percentiles():
    with pytest.raises(FuseVisError, match="flat"):
        robust_normalise(np.ones((4, 4)))
    with pytest.raises(FuseVisError, match="percentiles"):
        robust_normalise(np.arange(10.0), low_pct=90, high_pct=10)
    with_nan = np.array([0.0, 1.0, 2.0, np.nan, 4.0])
    assert robust_normalise(with_nan, 0, 100)[3] == 0.0
