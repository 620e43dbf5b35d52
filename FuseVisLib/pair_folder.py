"""Folders of 2-D MRI/PET slice pairs: ``MRI/NAME.png`` beside ``PET/NAME.png``.

MRI PNGs are greyscale; PET PNGs may be greyscale or a pseudo-colour
rendering, whose colour map is fitted on all PET images of the folder and
inverted to scalar activity (see :mod:`pet_colormap`). Each image is then
min-max normalised to [0, 1], as the authors did.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import FuseVisError
from .pet_colormap import PetColormap

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


@dataclass
class SlicePair:
    name: str
    series: str
    mri: np.ndarray  # (H, W) float32 in [0, 1]
    pet: np.ndarray  # (H, W) float32 in [0, 1]


def series_of(name: str) -> str:
    """Acquisition series of a slice file name.

    ``patient7_012`` -> ``patient7`` (text before the last separator);
    an all-digit name such as ``25015`` -> ``25`` (the digits before the
    three-digit slice number, the atlas' convention).
    """
    stem = Path(name).stem
    parts = re.split(r"[_\-. ]", stem)
    if len(parts) > 1:
        return "_".join(parts[:-1])
    if stem.isdigit() and len(stem) > 3:
        return stem[:-3]
    return stem


def min_max_normalise(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float32)
    low, high = float(image.min()), float(image.max())
    if high - low <= 0:
        return np.zeros_like(image)
    return (image - low) / (high - low)


def read_image(path: Path) -> np.ndarray:
    """Pixels of an image file as uint8 (H, W) or (H, W, 3); clear error if it is not an image."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("L", "I", "I;16", "F", "1", "P", "LA"):
                grey = image.convert("F") if image.mode in ("I", "I;16", "F") else image.convert("L")
                return np.asarray(grey)
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise FuseVisError(f"{path} is not a readable image ({error}); remove it or replace it with a PNG") from None


def _is_grey(pixels: np.ndarray) -> bool:
    return pixels.ndim == 2 or bool(np.all(pixels[..., 0] == pixels[..., 1]) and np.all(pixels[..., 1] == pixels[..., 2]))


def _grey(pixels: np.ndarray) -> np.ndarray:
    return pixels if pixels.ndim == 2 else pixels[..., 0]


def pet_activity(pet_pixels: list[np.ndarray]) -> list[np.ndarray]:
    """Scalar PET per image: greyscale as is, colour renderings through one fitted colour map."""
    coloured = [pixels for pixels in pet_pixels if not _is_grey(pixels)]
    colormap = PetColormap.fit(coloured) if coloured else None
    return [
        min_max_normalise(_grey(pixels) if _is_grey(pixels) else colormap.activity(pixels))  # type: ignore[union-attr]
        for pixels in pet_pixels
    ]


def _image_files(folder: Path) -> dict[str, Path]:
    files = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        files[path.stem] = path
    return files


def read_pair_folder(folder: str | Path) -> list[SlicePair]:
    folder = Path(folder)
    mri_dir, pet_dir = folder / "MRI", folder / "PET"
    if not mri_dir.is_dir() or not pet_dir.is_dir():
        raise FuseVisError(f"{folder} must hold MRI/ and PET/ folders with images of matching names")
    mri_files, pet_files = _image_files(mri_dir), _image_files(pet_dir)
    for stem, path in mri_files.items():
        if stem not in pet_files:
            raise FuseVisError(f"{path} has no PET partner; add {pet_dir / path.name} or remove the MRI file")
    for stem, path in pet_files.items():
        if stem not in mri_files:
            raise FuseVisError(f"{path} has no MRI partner; add {mri_dir / path.name} or remove the PET file")
    if not mri_files:
        raise FuseVisError(f"{folder} holds no MRI/PET image pairs; put matching images in {mri_dir} and {pet_dir}")
    names = list(mri_files)
    mri_pixels = [read_image(mri_files[name]) for name in names]
    pet_pixels = [read_image(pet_files[name]) for name in names]
    for name, mri, pet in zip(names, mri_pixels, pet_pixels):
        if mri.shape[:2] != pet.shape[:2]:
            raise FuseVisError(
                f"{pet_files[name]} is {pet.shape[1]}x{pet.shape[0]} but its MRI partner is "
                f"{mri.shape[1]}x{mri.shape[0]}; resample one so both have the same size"
            )
    pets = pet_activity(pet_pixels)
    return [
        SlicePair(name=name, series=series_of(name), mri=min_max_normalise(_grey(mri) if _is_grey(mri) else _luma(mri)), pet=pet)
        for name, mri, pet in zip(names, mri_pixels, pets)
    ]


def _luma(rgb: np.ndarray) -> np.ndarray:
    # An MRI saved as RGB is grey in practice; average the channels.
    return rgb.astype(np.float32).mean(axis=2)


def split_by_series(pairs: list[SlicePair], validation_series: list[str] | None = None) -> tuple[list[SlicePair], list[SlicePair]]:
    """Training and validation pairs; no series contributes to both.

    By default the smallest series is held out (with a single series there
    is nothing to hold out and validation is empty).
    """
    counts: dict[str, int] = {}
    for pair in pairs:
        counts[pair.series] = counts.get(pair.series, 0) + 1
    if validation_series is None:
        validation_series = [min(counts, key=lambda s: (counts[s], s))] if len(counts) > 1 else []
    unknown = [s for s in validation_series if s not in counts]
    if unknown:
        raise FuseVisError(f"validation series {unknown} not found; the folder has series {sorted(counts)}")
    held_out = set(validation_series)
    return [p for p in pairs if p.series not in held_out], [p for p in pairs if p.series in held_out]
