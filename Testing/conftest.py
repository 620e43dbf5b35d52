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
