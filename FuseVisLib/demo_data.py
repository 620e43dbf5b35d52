"""The built-in demo: a simulated T2 MRI and FDG-PET of one head with a glioma-like lesion.

Anatomy comes from the MNI152 (ICBM 2009a, symmetric) T1 template and its
grey- and white-matter probability maps, the files that ship inside the
``nilearn`` wheel (``nilearn.datasets.MNI152_FILE_PATH``,
``GM_MNI152_FILE_PATH``, ``WM_MNI152_FILE_PATH``, what
``load_mni152_template`` and friends read). They are located without
importing ``nilearn.datasets`` (which pulls in scikit-learn and takes
seconds) and never touch the network.

From those maps:

* CSF is the intracranial space the two maps leave free; skull (dark
  tables, intermediate marrow) and scalp (muscle, bright fat, skin) are
  layers at increasing distance outside the intracranial space.
* MRI (T2-like): CSF brightest, grey matter brighter than white matter,
  fat bright, cortical bone dark, with a third of the brain signal from the
  inverted T1 template (deep nuclei, real partial volume); a smooth
  receive-coil bias and Rician noise; integer-valued like scanner data.
* PET (FDG-like, SUV units): grey matter about 4x white matter, CSF near 0,
  skull and scalp faint; blurred to 6 mm FWHM and sampled on its own 3 mm
  grid (LAS-oriented, as many PET exports are, and offset from the MRI
  voxel centres) with spatially correlated, activity-dependent noise.
* Lesion (paper section 5.1): a high-grade glioma in right-hemisphere
  white matter at the level of the middle axial slice; uniformly bright on
  MRI (necrotic core, enhancing rim and the oedema around it); on PET a dark
  necrotic core inside a rim more active than white matter, in hypometabolic
  oedema.

The default MRI voxel is 2 mm: the demo then builds in about 2 s (on a
busy two-core machine), registers in a few seconds, and its 94 axial
slices of 98x116 pixels keep per-slice fusion and saliency interactive on
a CPU, while grey/white matter, sulci and the lesion's sub-regions stay
visible (the PET, at 6 mm FWHM, holds no finer detail anyway).
``resolution=1`` gives the template's full 1 mm detail (189 slices of
197x233) and takes about 15 s.

Everything is deterministic (fixed seed). The PET is simulated, not measured.
"""
from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image
from scipy import ndimage
from scipy.special import expit

from .errors import FuseVisError
from .intensity import robust_normalise
from .registration import resample_to_reference
from .transforms import describe, sitk_from_ras_matrix
from .volume_io import Volume, write_nifti

DEFAULT_RESOLUTION_MM = 2.0
RESOLUTION_RANGE_MM = (1.0, 4.0)
PET_SPACING_MM = 3.0
PET_FWHM_MM = 6.0
SEED = 20210409

MNI152_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}

# Lesion in RAS mm: right hemisphere (x > 0), periventricular white matter, z of the middle axial slice.
LESION_CENTRE_RAS = np.array([30.0, 6.0, 22.0])
LESION_CORE_RADIUS_MM = 10.0
LESION_RIM_RADIUS_MM = 16.0
LESION_OEDEMA_RADIUS_MM = 27.0

# The --misalign motion: rotation about RAS x, y, z (applied in that order) about BRAIN_CENTRE_RAS, then a shift.
MISALIGN_EULER_DEG = (3.0, -2.0, 4.0)
MISALIGN_SHIFT_MM = (4.0, -3.0, 5.0)
BRAIN_CENTRE_RAS = np.array([0.0, -18.0, 18.0])

# Tissue signal, T2-like MRI (CSF = 1) and FDG uptake (grey matter = 1); SUV of grey matter.
MRI_SIGNAL = {"csf": 1.0, "gm": 0.52, "wm": 0.32, "oedema": 0.74, "rim": 0.80, "core": 0.93}
PET_UPTAKE = {"csf": 0.02, "gm": 1.0, "wm": 0.25, "oedema": 0.14, "rim": 0.72, "core": 0.03}
GREY_MATTER_SUV = 8.0
CEREBELLUM_RELATIVE_UPTAKE = 0.8
CEREBELLUM_BELOW_Z_MM = -22.0
CEREBELLUM_BEHIND_Y_MM = -45.0
MRI_FULL_SCALE = 1000.0
T1_DETAIL_WEIGHT = 0.35
MRI_NOISE = 0.012
PET_NOISE_AT_GREY_MATTER = 0.07

# Contiguous layers outside the intracranial space, by distance from it (mm): (start, end, MRI signal, PET uptake).
EXTRACRANIAL_LAYERS = (
    (1.5, 3.5, 0.03, 0.04),  # inner table of the skull: dark on MRI
    (3.5, 5.5, 0.30, 0.07),  # diploe (marrow)
    (5.5, 7.0, 0.03, 0.04),  # outer table
    (7.0, 8.5, 0.25, 0.12),  # galea and temporal muscle
    (8.5, 11.5, 0.75, 0.04),  # subcutaneous fat: bright on T2 fast spin echo
    (11.5, 13.0, 0.40, 0.08),  # skin
)
SKULL_LAYERS = 3  # the first three layers are bone, the rest scalp

# Ground-truth tissue labels of DemoVolumes.labels.
LABELS = {
    "background": 0, "csf": 1, "grey_matter": 2, "white_matter": 3,
    "necrotic_core": 4, "enhancing_rim": 5, "oedema": 6, "skull": 7, "scalp": 8,
}


@dataclass
class DemoVolumes:
    """The simulated pair in memory.

    ``true_matrix`` (RAS, maps MRI points to PET points) is set when the PET
    was misaligned. ``labels`` is the ground-truth tissue of every MRI voxel
    (codes in ``LABELS``), ``[k, j, i]`` uint8 on the MRI grid.
    """

    mri: Volume
    pet: Volume
    true_matrix: np.ndarray | None
    labels: np.ndarray


@dataclass
class DemoFiles:
    mri: Path
    pet: Path
    true_transform: Path | None


def mni152_paths() -> dict[str, Path]:
    """Paths of the MNI152 T1, GM and WM maps inside the installed nilearn package (no import, no network)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise FuseVisError("nilearn is not installed; the demo data are made from its MNI152 templates: pip install nilearn==0.14.1")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    paths = {name: folder / file for name, file in MNI152_FILES.items()}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise FuseVisError(f"nilearn's packaged MNI152 templates are missing ({', '.join(missing)}); reinstall nilearn==0.14.1")
    return paths


def misalignment_matrix() -> np.ndarray:
    """RAS matrix mapping MRI points to PET points for the demo's misalignment."""
    rx, ry, rz = np.radians(MISALIGN_EULER_DEG)
    about_x = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    about_y = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    about_z = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
    rotation = about_z @ about_y @ about_x
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = BRAIN_CENTRE_RAS + np.asarray(MISALIGN_SHIFT_MM) - rotation @ BRAIN_CENTRE_RAS
    return matrix


def check_demo_resolution(resolution: float, option: str = "--resolution") -> None:
    """Refuse a demo voxel size outside :data:`RESOLUTION_RANGE_MM`, naming the ``option`` that gave it."""
    low, high = RESOLUTION_RANGE_MM
    if not low <= resolution <= high:
        raise FuseVisError(f"{option} {resolution:g} mm is outside {low:g}-{high:g} mm; the MNI152 maps are 1 mm, pick a value in that range")


def simulate_demo(resolution: float = DEFAULT_RESOLUTION_MM, misalign: bool = False) -> DemoVolumes:
    """Simulated MRI (``resolution`` mm voxels) and PET (3 mm or coarser) of the MNI152 head, with lesion."""
    check_demo_resolution(resolution)
    rng = np.random.default_rng(SEED)
    grid, t1, gm, wm = _tissue_maps(resolution)
    spacing = float(resolution)
    icv = _intracranial_space(gm, wm, spacing)
    # The intracranial edge gets about 1 mm of partial volume, like the tissue maps.
    csf = np.clip(ndimage.gaussian_filter(icv.astype(np.float32), 1.0 / spacing) - gm - wm, 0.0, 1.0)
    outside_mm = _distance_outside(icv, spacing, rng)
    ras = _ras_coordinates(grid)
    lesion = _lesion(ras, wm, gm, spacing, rng)

    mri = _mri_signal(t1, gm, wm, csf, icv, outside_mm, lesion, spacing, rng)
    activity = _pet_uptake(gm, wm, csf, outside_mm, lesion, ras, spacing, rng)
    true_matrix = misalignment_matrix() if misalign else None
    pet = _pet_scan(grid.with_array(activity), true_matrix, resolution, rng)
    labels = _labels(gm, wm, csf, outside_mm, lesion)
    # Scanners store MRI as integers.
    return DemoVolumes(mri=grid.with_array(np.round(mri * MRI_FULL_SCALE)), pet=pet, true_matrix=true_matrix, labels=labels)


# In the header of every demo NIfTI file, so that a later run can tell its own files from a user's.
DEMO_DESCRIPTION = "FuseVis demo, simulated from MNI152"


def refuse_to_overwrite(out_dir: str | Path) -> None:
    """Refuse an ``out_dir`` holding ``mri.nii.gz`` or ``pet.nii.gz`` files that an earlier demo did not write:
    they are a user's, and :func:`build_demo` would replace them."""
    import nibabel as nib

    foreign = []
    for name in ("mri.nii.gz", "pet.nii.gz"):
        path = Path(out_dir) / name
        if not path.exists():
            continue
        try:
            description = bytes(nib.load(str(path)).header["descrip"]).decode("ascii", "replace")
        except Exception:  # unreadable: certainly not ours, and not ours to replace
            description = ""
        if not description.startswith(DEMO_DESCRIPTION):
            foreign.append(path.name)
    if foreign:
        raise FuseVisError(
            f"{out_dir} already holds {' and '.join(foreign)}, not written by a FuseVis demo, which would replace "
            f"{'it' if len(foreign) == 1 else 'them'}: choose another --out (or move {'that file' if len(foreign) == 1 else 'those files'})"
        )


def build_demo(out_dir: str | Path, misalign: bool = False, resolution: float = DEFAULT_RESOLUTION_MM, dicom: bool = False) -> DemoFiles:
    """Write ``mri.nii.gz``, ``pet.nii.gz`` and, with ``misalign``, ``true_transform.json`` into ``out_dir``.

    ``dicom``: the two volumes as DICOM series in the folders ``mri/`` and
    ``pet/`` instead (one study; one frame of reference when aligned, each its
    own when the PET was moved, as from two scanners).
    """
    out_dir = Path(out_dir)
    demo = simulate_demo(resolution=resolution, misalign=misalign)
    if dicom:
        mri_path, pet_path = _write_dicom_pair(demo, out_dir, misalign)
    else:
        mri_path = write_nifti(demo.mri, out_dir / "mri.nii.gz", f"{DEMO_DESCRIPTION}: T2 MRI")
        pet_path = write_nifti(demo.pet, out_dir / "pet.nii.gz", f"{DEMO_DESCRIPTION}: FDG-PET")
    transform_path = out_dir / "true_transform.json"
    if demo.true_matrix is None:
        # A stale file from an earlier --misalign run would describe the wrong pair.
        transform_path.unlink(missing_ok=True)
        return DemoFiles(mri_path, pet_path, None)
    record = describe(demo.true_matrix)
    record.update(
        {
            "euler_deg_about_ras_x_y_z": list(MISALIGN_EULER_DEG),
            "rotation_centre_ras_mm": [float(v) for v in BRAIN_CENTRE_RAS],
            "shift_of_rotation_centre_mm": list(MISALIGN_SHIFT_MM),
            "note": "The PET was simulated in the MRI's space and then moved: a registration of PET (moving) to MRI (fixed) should recover this matrix.",
        }
    )
    transform_path.write_text(json.dumps(record, indent=2) + "\n")
    return DemoFiles(mri_path, pet_path, transform_path)


def _write_dicom_pair(demo: DemoVolumes, out_dir: Path, misalign: bool) -> tuple[Path, Path]:
    from pydicom.uid import generate_uid

    from .volume_io import write_dicom_series

    folders = out_dir / "mri", out_dir / "pet"
    # write_dicom_series refuses a folder with files too, but only when it gets there: check both
    # first, so that a refused run leaves no MRI series without its PET.
    for folder in folders:
        if folder.exists() and any(folder.iterdir()):
            raise FuseVisError(f"{folder} already holds files; write the DICOM demo into a new --out folder, or empty that one")
    study, frame = generate_uid(), generate_uid()
    common = {"patient_name": "FuseVis^Demo", "patient_id": "FUSEVIS-DEMO", "study_instance_uid": study}
    write_dicom_series(demo.mri, folders[0], modality="MR", series_description="FuseVis demo T2 MRI (simulated)", series_number=1, frame_of_reference_uid=frame, **common)
    write_dicom_series(
        demo.pet, folders[1], modality="PT", series_description="FuseVis demo FDG-PET (simulated, SUV)", series_number=2,
        frame_of_reference_uid=generate_uid() if misalign else frame, pet_units="GML", **common,
    )
    return folders


def demo_slice_pair(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Middle axial slice of the aligned demo (PET resampled onto the MRI grid) as two ``size`` x ``size`` float32 images in [0, 1].

    Each volume is normalised with :func:`robust_normalise`; the slice is
    shown the radiological way (anterior up, patient's right on the image's
    left), padded to a square and resized.
    """
    mri, pet = _aligned_demo_on_mri_grid()
    middle = mri.array.shape[0] // 2
    images = []
    for volume in (mri, pet):
        axial = robust_normalise(volume.array)[middle, ::-1, ::-1]
        images.append(_square(axial, size))
    return images[0], images[1]


@functools.lru_cache(maxsize=1)
def _aligned_demo_on_mri_grid() -> tuple[Volume, Volume]:
    demo = simulate_demo()
    return demo.mri, resample_to_reference(demo.pet, demo.mri, np.eye(4))


def _square(image: np.ndarray, size: int) -> np.ndarray:
    rows, cols = image.shape
    side = max(rows, cols)
    padded = np.zeros((side, side), dtype=np.float32)
    top, left = (side - rows) // 2, (side - cols) // 2
    padded[top : top + rows, left : left + cols] = image
    resized = Image.fromarray(padded, mode="F").resize((size, size), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _tissue_maps(resolution: float) -> tuple[Volume, np.ndarray, np.ndarray, np.ndarray]:
    """MRI grid (an empty volume), the T1 (0-1) and the GM/WM probabilities on it, box-averaged from the 1 mm templates.

    Voxel ``n`` of the grid covers template voxels ``n*r`` to ``n*r + r - 1``
    (its centre sits ``(r - 1) / 2`` mm in from the template's corner), so for
    a whole-number ``r`` the grid is exactly SimpleITK's BinShrink of the
    template and the resampling below only copies.
    """
    paths = mni152_paths()
    maps, grid = [], None
    for name in ("t1", "gm", "wm"):
        template = sitk.ReadImage(str(paths[name]), sitk.sitkFloat32)
        if grid is None:
            grid = _grid_of(template, resolution)
        shrunk = sitk.BinShrink(template, [max(1, int(np.floor(resolution)))] * 3)
        resampled = sitk.Resample(shrunk, grid, sitk.Transform(), sitk.sitkLinear, 0.0)
        # All three store 0-1 as 0-255.
        maps.append(np.clip(sitk.GetArrayFromImage(resampled) / 255.0, 0.0, 1.0))
    return Volume.from_sitk(grid), maps[0], maps[1], maps[2]


def _grid_of(template: sitk.Image, resolution: float) -> sitk.Image:
    spacing = np.asarray(template.GetSpacing())
    size = np.floor(np.asarray(template.GetSize()) * spacing / resolution).astype(int)
    direction = np.asarray(template.GetDirection()).reshape(3, 3)
    grid = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    grid.SetSpacing([float(resolution)] * 3)
    grid.SetDirection(template.GetDirection())
    grid.SetOrigin([float(v) for v in np.asarray(template.GetOrigin()) + direction @ ((resolution - spacing) / 2.0)])
    return grid


def _intracranial_space(gm: np.ndarray, wm: np.ndarray, spacing: float) -> np.ndarray:
    """Brain plus the CSF around and inside it: the smoothed tissue envelope with its holes filled."""
    envelope = ndimage.gaussian_filter(gm + wm, 3.0 / spacing) > 0.25
    return ndimage.binary_fill_holes(envelope)


def _smooth_field(shape: tuple[int, ...], sigma_voxels: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-deviation random field with correlation length ``sigma_voxels``."""
    noise = rng.standard_normal(shape).astype(np.float32)
    if sigma_voxels > 3.0:
        # Recursive (IIR) filtering costs the same for any width; scipy's kernel grows with it.
        field = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(noise), sigma_voxels))
    else:
        field = ndimage.gaussian_filter(noise, sigma_voxels)
    return (field - field.mean()) / field.std()


def _distance_outside(icv: np.ndarray, spacing: float, rng: np.random.Generator) -> np.ndarray:
    """mm from the intracranial space, smoothed and locally stretched so skull and scalp vary in thickness."""
    distance = ndimage.distance_transform_edt(~icv, sampling=spacing).astype(np.float32)
    distance = ndimage.gaussian_filter(distance, 1.0)
    return distance / (1.0 + 0.12 * _smooth_field(icv.shape, 15.0 / spacing, rng))


def _layers(distance_mm: np.ndarray, column: int) -> np.ndarray:
    """Skull and scalp signal by distance outside the intracranial space: one of EXTRACRANIAL_LAYERS' value columns.

    Piecewise linear, with a 1 mm ramp at each boundary standing in for partial volume.
    """
    knots, values, previous = [], [], 0.0
    for layer in EXTRACRANIAL_LAYERS:
        start, value = layer[0], layer[column]
        knots += [start - 0.5, start + 0.5]
        values += [previous, value]
        previous = value
    knots += [EXTRACRANIAL_LAYERS[-1][1] - 0.5, EXTRACRANIAL_LAYERS[-1][1] + 0.5]
    values += [previous, 0.0]
    return np.interp(distance_mm, knots, values).astype(np.float32)


def _ras_coordinates(grid: Volume) -> np.ndarray:
    """RAS mm of every voxel centre, ``[k, j, i, 3]`` float32, built by broadcasting the three axes."""
    k, j, i = (np.arange(n, dtype=np.float32) for n in grid.array.shape)
    axes = grid.ijk_to_ras.astype(np.float32)
    ras = np.empty((*grid.array.shape, 3), dtype=np.float32)
    for c in range(3):
        ras[..., c] = axes[c, 3] + axes[c, 2] * k[:, None, None] + axes[c, 1] * j[None, :, None] + axes[c, 0] * i[None, None, :]
    return ras


@dataclass
class _Lesion:
    core: np.ndarray  # necrotic core fraction
    rim: np.ndarray  # enhancing tumour fraction
    oedema: np.ndarray  # weight of oedema in the surrounding white (and some grey) matter

    @property
    def tumour(self) -> np.ndarray:
        return self.core + self.rim


def _lesion(ras: np.ndarray, wm: np.ndarray, gm: np.ndarray, spacing: float, rng: np.random.Generator) -> _Lesion:
    radius = np.linalg.norm(ras - LESION_CENTRE_RAS, axis=-1).astype(np.float32)
    # Lobulated, not spherical: the radius is stretched by a smooth random field.
    radius *= 1.0 + 0.13 * _smooth_field(radius.shape, 5.0 / spacing, rng)
    tumour = expit((LESION_RIM_RADIUS_MM - radius) / 0.8)
    core = expit((LESION_CORE_RADIUS_MM - radius) / 0.8)
    spread = expit((LESION_OEDEMA_RADIUS_MM - radius) / 3.0) * (1.0 - tumour)
    # Oedema follows white-matter tracts and spares most cortex.
    oedema = np.clip(spread * (wm + 0.25 * gm) * 1.3, 0.0, 1.0)
    return _Lesion(core=core.astype(np.float32), rim=(tumour - core).astype(np.float32), oedema=oedema.astype(np.float32))


def _labels(gm: np.ndarray, wm: np.ndarray, csf: np.ndarray, outside_mm: np.ndarray, lesion: _Lesion) -> np.ndarray:
    """Most likely tissue of each voxel; lesion parts win where they make up over half of it."""
    fractions = np.stack([csf, gm, wm])
    labels = np.zeros(gm.shape, dtype=np.uint8)
    inside = fractions.sum(axis=0) > 0.5
    labels[inside] = (LABELS["csf"] + np.argmax(fractions, axis=0))[inside]
    skull_start, skull_end = EXTRACRANIAL_LAYERS[0][0], EXTRACRANIAL_LAYERS[SKULL_LAYERS - 1][1]
    labels[~inside & (outside_mm >= skull_start) & (outside_mm < skull_end)] = LABELS["skull"]
    labels[~inside & (outside_mm >= skull_end) & (outside_mm < EXTRACRANIAL_LAYERS[-1][1])] = LABELS["scalp"]
    labels[lesion.oedema > 0.5] = LABELS["oedema"]
    labels[lesion.rim > 0.5] = LABELS["enhancing_rim"]
    labels[lesion.core > 0.5] = LABELS["necrotic_core"]
    return labels


def _mri_signal(
    t1: np.ndarray, gm: np.ndarray, wm: np.ndarray, csf: np.ndarray, icv: np.ndarray, outside_mm: np.ndarray,
    lesion: _Lesion, spacing: float, rng: np.random.Generator,
) -> np.ndarray:
    s = MRI_SIGNAL
    # A little anatomical texture, as real tissue is never perfectly uniform.
    texture = 1.0 + 0.03 * _smooth_field(gm.shape, 1.5 / spacing, rng)
    classes = (wm * s["wm"] + gm * s["gm"]) * texture + csf * s["csf"]
    # The template T1, inverted, carries what tissue classes miss (deep nuclei, real partial volume).
    normal = (1.0 - T1_DETAIL_WEIGHT) * classes + T1_DETAIL_WEIGHT * icv * _t2_from_t1(t1, gm, wm, csf)
    brain = _with_lesion(normal, lesion, s)
    signal = brain + _layers(outside_mm, column=2)
    bias = 1.0 + 0.08 * _smooth_field(gm.shape, 40.0 / spacing, rng)
    signal = signal * bias
    # Magnitude images have Rician noise: the modulus of a complex signal with Gaussian noise on both channels.
    real = signal + MRI_NOISE * rng.standard_normal(signal.shape, dtype=np.float32)
    imaginary = MRI_NOISE * rng.standard_normal(signal.shape, dtype=np.float32)
    return np.sqrt(real**2 + imaginary**2).astype(np.float32)


def _with_lesion(normal: np.ndarray, lesion: _Lesion, signal: dict[str, float]) -> np.ndarray:
    """``normal`` tissue turned into oedema where the lesion spreads, and replaced by tumour inside it."""
    tissue = normal * (1.0 - lesion.oedema) + lesion.oedema * signal["oedema"]
    return tissue * (1.0 - lesion.tumour) + lesion.rim * signal["rim"] + lesion.core * signal["core"]


def _t2_from_t1(t1: np.ndarray, gm: np.ndarray, wm: np.ndarray, csf: np.ndarray) -> np.ndarray:
    """T1 mapped linearly so that its CSF level gives CSF's T2 signal and its white-matter level white matter's."""
    t1_csf = float(np.median(t1[csf > 0.9]))
    t1_wm = float(np.median(t1[wm > 0.9]))
    return MRI_SIGNAL["csf"] + (t1 - t1_csf) / (t1_wm - t1_csf) * (MRI_SIGNAL["wm"] - MRI_SIGNAL["csf"])


def _pet_uptake(
    gm: np.ndarray, wm: np.ndarray, csf: np.ndarray, outside_mm: np.ndarray, lesion: _Lesion, ras: np.ndarray,
    spacing: float, rng: np.random.Generator,
) -> np.ndarray:
    u = PET_UPTAKE
    # Regional metabolism varies over a few centimetres (about +-7 %); the cerebellum takes up less than cortex.
    regional = 1.0 + 0.07 * _smooth_field(gm.shape, 8.0 / spacing, rng)
    cerebellum = expit((CEREBELLUM_BELOW_Z_MM - ras[..., 2]) / 4.0) * expit((CEREBELLUM_BEHIND_Y_MM - ras[..., 1]) / 5.0)
    regional *= 1.0 - (1.0 - CEREBELLUM_RELATIVE_UPTAKE) * cerebellum
    normal = (wm * u["wm"] + gm * u["gm"] * regional) + csf * u["csf"]
    brain = _with_lesion(normal, lesion, u)
    uptake = brain + _layers(outside_mm, column=3)
    return uptake.astype(np.float32)


def _pet_grid(mri_grid: Volume, spacing: float) -> Volume:
    """PET field of view: the MRI's plus a margin, LAS axes, voxel centres offset from the MRI's."""
    margin = np.array([15.0, 15.0, 9.0])
    extent = (np.asarray(mri_grid.shape_ijk) - 1) * mri_grid.spacing + 2 * margin
    shape = np.ceil(extent / spacing).astype(int) + 1
    direction = np.diag([-1.0, 1.0, 1.0])
    centre = mri_grid.centre_ras() + np.array([0.7, -0.4, 0.9])
    origin = centre - direction @ ((shape - 1) / 2.0 * spacing)
    return Volume.from_geometry(np.zeros(tuple(shape[::-1]), np.float32), (spacing,) * 3, origin, direction)


def _pet_scan(uptake: Volume, true_matrix: np.ndarray | None, resolution: float, rng: np.random.Generator) -> Volume:
    """Scanner view of ``uptake``: 6 mm FWHM, own grid, patient moved by ``true_matrix``, noise, SUV units."""
    sigma_mm = PET_FWHM_MM / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    pet_spacing = max(PET_SPACING_MM, 1.5 * resolution)
    # Trilinear sampling on the PET grid adds blur of its own; take it off the requested width.
    sigma_mm = float(np.sqrt(max(sigma_mm**2 - pet_spacing**2 / 12.0, 0.25)))
    blurred = sitk.SmoothingRecursiveGaussian(uptake.to_sitk(), sigma_mm)
    grid = _pet_grid(uptake, pet_spacing)
    # A PET voxel at y shows the anatomy at M^-1 y (M maps MRI points to PET points).
    pet_to_mri = np.linalg.inv(true_matrix) if true_matrix is not None else np.eye(4)
    sampled = sitk.Resample(blurred, grid.to_sitk(), sitk_from_ras_matrix(pet_to_mri), sitk.sitkLinear, 0.0)
    activity = np.clip(sitk.GetArrayFromImage(sampled), 0.0, None)
    # Reconstructed PET noise grows with activity and is correlated over about a voxel.
    noise = _smooth_field(activity.shape, 0.7, rng) * PET_NOISE_AT_GREY_MATTER * np.sqrt(activity + 0.01)
    return grid.with_array(np.clip(activity + noise, 0.0, None) * GREY_MATTER_SUV)
