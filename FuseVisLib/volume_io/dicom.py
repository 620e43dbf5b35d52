"""DICOM series folders: read with SimpleITK (GDCM), write with pydicom.

Slices are ordered by their position along the slice normal (the cross
product of the ImageOrientationPatient row and column directions), the
order ITK itself uses. A series whose positions are not evenly spaced
(a missing slice) or that repeats positions (a dynamic, 4-D acquisition)
is refused rather than silently stretched, and so is one with images in
another plane (a localizer) or of another size; the refusal names the files.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from ..errors import FuseVisError
from .checks import check_image_layout
from .volume import RAS_FROM_LPS, Volume

SOP_CLASS_OF_MODALITY = {"MR": MRImageStorage, "PT": PositronEmissionTomographyImageStorage, "CT": CTImageStorage}

# Relative deviation from the typical slice step that counts as a gap; scanners jitter far less.
SPACING_TOLERANCE = 0.1


def is_dicom_file(path: Path) -> bool:
    """True for a file carrying the DICOM preamble signature ("DICM" at byte 128)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def read_dicom_series(folder: Path, series_id: str | None = None) -> Volume:
    """Volume of the DICOM series in ``folder`` (the only one, or ``series_id``)."""
    warnings_shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    # GDCM warns on stderr about folders without series; the error below says it better.
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings_shown)
    if not series_ids:
        raise FuseVisError(f"{folder} holds no DICOM series; give a folder of DICOM slice files or a NIfTI file")
    if series_id is None:
        if len(series_ids) > 1:
            counts = ", ".join(f"{sid} ({len(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), sid))} files)" for sid in series_ids)
            raise FuseVisError(f"{folder} holds {len(series_ids)} DICOM series: {counts}; put each series in its own folder or name one")
        series_id = series_ids[0]
    elif series_id not in series_ids:
        raise FuseVisError(f"{folder} has no DICOM series {series_id}; it holds {', '.join(series_ids)}")
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id)
    if len(files) > 1:
        files = _sorted_evenly_spaced(folder, list(files))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError:
        culprit = next((name for name in files if not _readable(name)), None)
        which = f"{Path(culprit).name} cannot be read" if culprit else "it cannot be read"
        raise FuseVisError(
            f"the DICOM series in {folder}: {which} (damaged, truncated or compressed in an unsupported way); export the series again"
        ) from None
    size = tuple(int(n) for n in image.GetSize())
    check_image_layout(image.GetDimension(), size, image.GetNumberOfComponentsPerPixel(), f"the DICOM series in {folder}")
    return Volume.from_sitk(image)


def _readable(name: str) -> bool:
    try:
        sitk.ReadImage(name)
        return True
    except RuntimeError:
        return False


def _sorted_evenly_spaced(folder: Path, files: list[str]) -> list[str]:
    """Files sorted along the slice normal; FuseVisError on images in another plane or of another size,
    repeated positions or gaps."""
    positions, planes, sizes = [], [], []
    for name in files:
        try:
            header = pydicom.dcmread(name, stop_before_pixels=True)
            position = np.asarray(header.ImagePositionPatient, dtype=np.float64)
            orientation = np.asarray(header.ImageOrientationPatient, dtype=np.float64)
            sizes.append((int(header.Rows), int(header.Columns)))
        except (AttributeError, InvalidDicomError, ValueError, TypeError):
            raise FuseVisError(f"{name} has no usable ImagePositionPatient/ImageOrientationPatient; the slices cannot be placed in space") from None
        planes.append(orientation)
        positions.append(position)
    _refuse_odd_ones(folder, files, [tuple(np.round(plane, 3)) for plane in planes], "lie in another plane than the others (a localizer?)")
    _refuse_odd_ones(folder, files, sizes, "have another size than the others", lambda size: f"{size[1]}x{size[0]} pixels")
    normal = np.cross(planes[0][:3], planes[0][3:])
    positions = [float(position @ normal) for position in positions]
    order = np.argsort(positions, kind="stable")
    along = np.asarray(positions)[order]
    steps = np.diff(along)
    unique_positions = int(np.count_nonzero(steps > 1e-3)) + 1
    if unique_positions < len(files):
        frames = len(files) / unique_positions
        raise FuseVisError(
            f"the DICOM series in {folder} has {len(files)} images at only {unique_positions} slice positions "
            f"(about {frames:.0f} per position): a dynamic (4-D) series or duplicated files; export one static "
            "frame (or a summed image) as its own series"
        )
    typical = float(np.median(steps))
    bad = np.flatnonzero(np.abs(steps - typical) > SPACING_TOLERANCE * typical)
    if bad.size:
        first = int(bad[0])
        in_series = {Path(name).resolve() for name in files}
        left_out = sorted(p.name for p in folder.iterdir() if p.is_file() and p.resolve() not in in_series and is_dicom_file(p))
        why = f"; {', '.join(left_out[:5])} in the folder could not be read as part of it (damaged or truncated?)" if left_out else " (a slice is missing)"
        raise FuseVisError(
            f"the DICOM series in {folder} is unevenly spaced: {steps[first]:.2f} mm between slices at "
            f"{along[first]:.2f} mm and {along[first + 1]:.2f} mm where the others are {typical:.2f} mm apart"
            f"{why}; export the complete series again"
        )
    return [files[index] for index in order]


def _refuse_odd_ones(folder: Path, files: list[str], keys: list, what: str, shown=None) -> None:
    """FuseVisError naming the files whose ``key`` differs from the most common one."""
    values, counts = np.unique(np.asarray([str(key) for key in keys]), return_counts=True)
    if len(values) == 1:
        return
    common = values[np.argmax(counts)]
    odd = [(Path(name).name, key) for name, key in zip(files, keys) if str(key) != common]
    listed = ", ".join(name if shown is None else f"{name} ({shown(key)})" for name, key in odd[:5])
    raise FuseVisError(
        f"the DICOM series in {folder}: {len(odd)} of its {len(files)} images {what}: {listed}; "
        "remove them from the folder (or export the series again)"
    )


def write_dicom_series(
    volume: Volume,
    folder: str | Path,
    *,
    modality: str = "MR",
    series_description: str = "FuseVis volume",
    patient_name: str = "FuseVis^Demo",
    patient_id: str = "FUSEVIS-DEMO",
    series_number: int = 1,
    study_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    pet_units: str = "NONE",
) -> list[Path]:
    """Write ``volume`` as a DICOM series (one file per k slice) into the empty or new ``folder``.

    Voxels are stored as 16-bit unsigned integers with a series-wide
    RescaleSlope/RescaleIntercept: integer volumes that fit round-trip
    exactly, others to within half a slope step. Geometry (position,
    orientation, spacing) is exact to DICOM's 16-character decimals. Pass
    the same ``study_instance_uid`` and ``frame_of_reference_uid`` to two
    calls to place two series in one study and one space. A PET series
    (modality ``PT``) says what its values are in ``pet_units`` (DICOM's
    terms: ``BQML``, ``GML`` for body-weight SUV, ``CNTS``, ``NONE``...).
    """
    folder = Path(folder)
    if modality not in SOP_CLASS_OF_MODALITY:
        raise FuseVisError(f"modality {modality!r} is not supported; use one of {', '.join(SOP_CLASS_OF_MODALITY)}")
    if folder.exists() and any(folder.iterdir()):
        raise FuseVisError(f"{folder} is not empty; write the DICOM series into a new or empty folder")
    ijk_to_lps = RAS_FROM_LPS @ volume.ijk_to_ras
    spacing = volume.spacing
    axes = ijk_to_lps[:3, :3] / spacing[None, :]
    if abs(axes[:, 0] @ axes[:, 2]) > 1e-4 or abs(axes[:, 1] @ axes[:, 2]) > 1e-4 or abs(axes[:, 0] @ axes[:, 1]) > 1e-4:
        raise FuseVisError("the volume's axes are not perpendicular (sheared), which a DICOM series cannot hold; resample it first")
    stored, slope, intercept = _quantise(volume.array)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now()
    study_uid = study_instance_uid or generate_uid()
    frame_uid = frame_of_reference_uid or generate_uid()
    series_uid = generate_uid()
    orientation = [format_number_as_ds(float(v)) for v in (*axes[:, 0], *axes[:, 1])]
    paths = []
    for k in range(stored.shape[0]):
        position = ijk_to_lps[:3, :3] @ np.array([0.0, 0.0, float(k)]) + ijk_to_lps[:3, 3]
        dataset = _slice_dataset(modality, stored[k], now)
        dataset.StudyInstanceUID = study_uid
        dataset.SeriesInstanceUID = series_uid
        dataset.FrameOfReferenceUID = frame_uid
        dataset.PatientName = patient_name
        dataset.PatientID = patient_id
        dataset.SeriesDescription = series_description
        dataset.SeriesNumber = series_number
        dataset.InstanceNumber = k + 1
        dataset.ImagePositionPatient = [format_number_as_ds(float(v)) for v in position]
        dataset.ImageOrientationPatient = orientation
        # PixelSpacing is (between rows = j, between columns = i).
        dataset.PixelSpacing = [format_number_as_ds(float(spacing[1])), format_number_as_ds(float(spacing[0]))]
        dataset.SliceThickness = format_number_as_ds(float(spacing[2]))
        dataset.SpacingBetweenSlices = format_number_as_ds(float(spacing[2]))
        dataset.RescaleSlope = slope
        dataset.RescaleIntercept = intercept
        if modality == "PT":
            _add_pet_image_attributes(dataset, pet_units, k + 1)
        path = folder / f"slice_{k + 1:04d}.dcm"
        dataset.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _add_pet_image_attributes(dataset: Dataset, units: str, index: int) -> None:
    # The PET Image module's own attributes, so that readers (and a radiologist
    # reading the header) know what the values are; a derived image, so no
    # decay correction or acquisition times are claimed.
    dataset.SeriesType = ["STATIC", "IMAGE"]
    dataset.Units = units
    dataset.CountsSource = "EMISSION"
    dataset.DecayCorrection = "NONE"
    dataset.ImageIndex = index


def _quantise(array: np.ndarray) -> tuple[np.ndarray, str, str]:
    """uint16 pixels and the slope/intercept strings (as readers will parse them) that restore ``array``."""
    low, high = float(array.min()), float(array.max())
    if np.all(array == np.round(array)) and high - low <= 65535:
        slope_text, intercept_text = "1", format_number_as_ds(low)
    else:
        slope_text = format_number_as_ds(max(high - low, 1e-12) / 65535.0 * (1 + 1e-9))
        intercept_text = format_number_as_ds(low)
    slope, intercept = float(slope_text), float(intercept_text)
    stored = np.clip(np.round((array.astype(np.float64) - intercept) / slope), 0, 65535).astype(np.uint16)
    return stored, slope_text, intercept_text


def _slice_dataset(modality: str, pixels: np.ndarray, now: datetime) -> Dataset:
    sop_instance_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASS_OF_MODALITY[modality]
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = SOP_CLASS_OF_MODALITY[modality]
    dataset.SOPInstanceUID = sop_instance_uid
    dataset.Modality = modality
    dataset.StudyDate = dataset.SeriesDate = dataset.ContentDate = now.strftime("%Y%m%d")
    dataset.StudyTime = dataset.SeriesTime = dataset.ContentTime = now.strftime("%H%M%S")
    dataset.StudyID = "1"
    dataset.AccessionNumber = ""
    dataset.ReferringPhysicianName = ""
    dataset.PatientBirthDate = ""
    dataset.PatientSex = ""
    dataset.Manufacturer = "FuseVis"
    dataset.PositionReferenceIndicator = ""
    dataset.ImageType = ["DERIVED", "SECONDARY"]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.BitsAllocated = 16
    dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 0
    dataset.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    return dataset
