"""Finding the cases of a folder: one MRI and one PET per case.

Two layouts are recognised:

* the shared data's: ``MRI/NAME.png`` beside ``PET/NAME.png``; every name
  is a case (a name present in only one folder is a case missing a modality);
* one sub-folder per case holding an MRI and a PET, each a 2-D image
  (PNG, JPEG, TIFF, BMP, .npy), a NIfTI file or a folder with a DICOM
  series. An entry belongs to a modality when a word of its name (split at
  ``_``, ``-``, ``.`` and spaces) is ``mri`` or ``pet``, in any case:
  ``mri.png``, ``patient3_PET.nii.gz``, ``pet/`` (DICOM).

A case that cannot run (a modality missing, two candidates for one) still
appears, with the problem as its reason; the runner reports it as failed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import FuseVisError
from ..pair_folder import IMAGE_SUFFIXES
from ..volume_io.nifti import is_nifti_path

MODALITIES = ("mri", "pet")
SLICE_SUFFIXES = IMAGE_SUFFIXES | {".npy"}


@dataclass(frozen=True)
class CaseInput:
    """One case: its name (also its output folder), the two inputs, and why it cannot run (None: it can)."""

    name: str
    mri: Path | None
    pet: Path | None
    problem: str | None = None


def is_volume_path(path: Path) -> bool:
    """A NIfTI file or a folder (a DICOM series) holds a volume; anything else is a 2-D image."""
    return path.is_dir() or is_nifti_path(path)


def single_case(mri: Path, pet: Path) -> CaseInput:
    """The case of ``--mri`` and ``--pet``, named after the MRI file (after its folder when the file is just "mri")."""
    name = _stem(mri)
    if name.lower() == "mri":
        name = mri.resolve().parent.name or name
    return CaseInput(name or "case", mri, pet)


def discover_cases(folder: str | Path, ignore: Path | None = None) -> list[CaseInput]:
    """The cases in ``folder`` (see the module docstring), sorted by name; ``ignore``: a sub-folder that is no
    case (the output folder, when it lies inside)."""
    folder = Path(folder)
    ignored = ignore.resolve() if ignore is not None else None
    if not folder.is_dir():
        raise FuseVisError(f"--cases {folder} is not a folder; give a folder with one sub-folder per case, or with MRI/ and PET/")
    if (folder / "MRI").is_dir() and (folder / "PET").is_dir():
        cases = _pair_layout_cases(folder / "MRI", folder / "PET")
    else:
        cases = [
            _case_folder(path)
            for path in sorted(folder.iterdir())
            if path.is_dir() and not path.name.startswith(".") and path.resolve() != ignored
        ]
    if not cases:
        raise FuseVisError(
            f"{folder} holds no cases; put one sub-folder per case (with an MRI and a PET file), "
            "or MRI/ and PET/ folders with images of matching names"
        )
    return cases


def _pair_layout_cases(mri_dir: Path, pet_dir: Path) -> list[CaseInput]:
    mri_files, pet_files = _files_by_stem(mri_dir), _files_by_stem(pet_dir)
    cases = []
    for name in sorted(set(mri_files) | set(pet_files)):
        mri, pet = mri_files.get(name), pet_files.get(name)
        problem = None
        if mri is None:
            problem = f"{pet} has no MRI partner; add {mri_dir / pet.name} or remove the PET file"  # type: ignore[union-attr]
        elif pet is None:
            problem = f"{mri} has no PET partner; add {pet_dir / mri.name} or remove the MRI file"
        cases.append(CaseInput(name, mri, pet, problem))
    return cases


def _files_by_stem(folder: Path) -> dict[str, Path]:
    return {path.stem: path for path in sorted(folder.iterdir()) if path.is_file() and not path.name.startswith(".")}


def _case_folder(folder: Path) -> CaseInput:
    found: dict[str, list[Path]] = {modality: [] for modality in MODALITIES}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not (entry.is_dir() or _is_input_file(entry)):
            continue
        words = set(re.split(r"[_\-. ]+", _stem(entry).lower()))
        for modality in MODALITIES:
            if modality in words:
                found[modality].append(entry)
    problems = []
    for modality in MODALITIES:
        if not found[modality]:
            problems.append(
                f"{folder} has no {modality.upper()} input; add {modality}.png, {modality}.nii.gz or a {modality}/ DICOM folder"
            )
        elif len(found[modality]) > 1:
            names = ", ".join(path.name for path in found[modality])
            problems.append(f"{folder} has several {modality.upper()} candidates ({names}); keep one")
    mri = found["mri"][0] if found["mri"] else None
    pet = found["pet"][0] if found["pet"] else None
    return CaseInput(folder.name, mri, pet, "; ".join(problems) or None)


def _is_input_file(path: Path) -> bool:
    return path.is_file() and (is_nifti_path(path) or path.suffix.lower() in SLICE_SUFFIXES)


def _stem(path: Path) -> str:
    lower = path.name.lower()
    for suffix in (".nii.gz", ".nii"):
        if lower.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.name if path.is_dir() else path.stem
