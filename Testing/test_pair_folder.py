"""Reading folders of MRI/PET slice pairs, with clear errors that name the file."""
import numpy as np
import pytest
from conftest import colour_render
from PIL import Image

from FuseVisLib.errors import FuseVisError
from FuseVisLib.pair_folder import read_pair_folder, series_of, split_by_series


def test_reads_pairs_normalised_with_series(pair_folder):
    pairs = read_pair_folder(pair_folder)
    assert [p.name for p in pairs] == ["11000", "11001", "11002", "12000", "12001", "12002"]
    assert {p.series for p in pairs} == {"11", "12"}
    for pair in pairs:
        assert pair.mri.dtype == np.float32 and pair.mri.min() == 0 and pair.mri.max() == 1
        assert pair.pet.min() == 0 and pair.pet.max() == 1


def test_validation_split_never_shares_a_series(pair_folder):
    training, validation = split_by_series(read_pair_folder(pair_folder))
    assert {p.series for p in training}.isdisjoint({p.series for p in validation})
    assert len(training) + len(validation) == 6 and validation


def test_series_names():
    assert series_of("25015.png") == "25"
    assert series_of("patient7_012.png") == "patient7"


def test_missing_partner_names_the_file(pair_folder):
    (pair_folder / "PET" / "11001.png").unlink()
    with pytest.raises(FuseVisError, match=r"11001\.png has no PET partner"):
        read_pair_folder(pair_folder)


def test_wrong_size_names_the_file(pair_folder):
    Image.fromarray(colour_render(np.zeros((30, 30)) + 0.5)).save(pair_folder / "PET" / "12002.png")
    with pytest.raises(FuseVisError, match=r"12002\.png is 30x30 but its MRI partner is 48x48"):
        read_pair_folder(pair_folder)


def test_non_image_file_names_the_file(pair_folder):
    (pair_folder / "MRI" / "notes.png").write_text("not an image")
    (pair_folder / "PET" / "notes.png").write_text("not an image")
    with pytest.raises(FuseVisError, match=r"notes\.png is not a readable image"):
        read_pair_folder(pair_folder)


def test_folder_without_pairs(tmp_path):
    (tmp_path / "MRI").mkdir()
    (tmp_path / "PET").mkdir()
    with pytest.raises(FuseVisError, match="no MRI/PET image pairs"):
        read_pair_folder(tmp_path)
