"""Shared fixtures: the real data folder (skipped with a reason where absent) and small images."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
AANLIB = Path(os.environ.get("FUSEVIS_AANLIB", REPO.parent / "shared" / "data" / "aanlib-pet-mri"))

# Two cores: keep the suite from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def aanlib_dir() -> Path:
    if not (AANLIB / "MRI").is_dir():
        pytest.skip(f"real data folder {AANLIB} is absent (set FUSEVIS_AANLIB to a folder with MRI/ and PET/)")
    return AANLIB


@pytest.fixture(scope="session")
def real_pairs(aanlib_dir):
    from FuseVisLib.pair_folder import read_pair_folder

    return read_pair_folder(aanlib_dir)


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def colour_render(activity: np.ndarray, colormap: str = "jet", levels: int = 128) -> np.ndarray:
    """Render scalar activity in [0, 1] through a discrete matplotlib colour map, like an atlas PET PNG."""
    import matplotlib

    table = (matplotlib.colormaps[colormap].resampled(levels)(np.linspace(0, 1, levels))[:, :3] * 255).round().astype(np.uint8)
    return table[np.clip((activity * (levels - 1)).round().astype(int), 0, levels - 1)]


@pytest.fixture()
def pair_folder(tmp_path, rng):
    """A small folder in the shared data's layout: two series, grey MRI PNGs, colour-mapped PET PNGs."""
    from PIL import Image

    folder = tmp_path / "pairs"
    (folder / "MRI").mkdir(parents=True)
    (folder / "PET").mkdir()
    yy, xx = np.mgrid[0:48, 0:48]
    for series in ("11", "12"):
        for index in range(3):
            blob = np.exp(-((yy - 20 - 3 * index) ** 2 + (xx - 24) ** 2) / 150.0)
            mri = (255 * np.clip(blob + 0.1 * rng.random((48, 48)), 0, 1)).astype(np.uint8)
            pet = np.clip(blob**2 + 0.05 * rng.random((48, 48)), 0, 1)
            Image.fromarray(mri).save(folder / "MRI" / f"{series}{index:03d}.png")
            Image.fromarray(colour_render(pet)).save(folder / "PET" / f"{series}{index:03d}.png")
    return folder
