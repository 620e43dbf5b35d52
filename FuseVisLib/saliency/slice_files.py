"""Reading one 2-D MRI or PET slice from a PNG (or other image), a 2-D NIfTI or a .npy file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FuseVisError
from ..pair_folder import min_max_normalise, pet_activity, read_image
from ..volume_io import read_volume
from ..volume_io.nifti import is_nifti_path


def read_slice(path: str | Path, modality: str) -> np.ndarray:
    """A float32 HxW image in [0, 1].

    ``.npy``: a 2-D array used as it is (it must already lie in [0, 1]).
    Image files: greyscale, or for PET also a colour-mapped rendering (the
    colour map is inverted to activity); min-max normalised as the authors did.
    NIfTI holding one slice, min-max normalised: stored along k (a volume's axial slice) its rows are
    j and its columns i; stored along i or j, the two other axes in the same order (k before j before i).
    """
    path = Path(path)
    if path.is_dir():
        raise FuseVisError(f"{modality} path {path} is a folder; pass one PNG, 2-D NIfTI or .npy file of a slice")
    if not path.is_file():
        raise FuseVisError(f"{modality} file {path} does not exist; pass an existing PNG, 2-D NIfTI or .npy file")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise FuseVisError(f"{path} is not a readable .npy array ({error}); save it with numpy.save") from None
        if array.ndim != 2:
            raise FuseVisError(f"{path} holds an array of shape {array.shape}; save one 2-D slice (H, W)")
        _refuse_blank(array, path)
        return np.asarray(array, dtype=np.float32)
    if is_nifti_path(path):
        # read_volume runs every volume check (NaN, blank, geometry), naming the file.
        return min_max_normalise(_only_slice(read_volume(path).array, path))
    pixels = read_image(path)
    _refuse_blank(pixels, path)
    if modality.upper() == "PET":
        return pet_activity([pixels])[0]
    grey = pixels if pixels.ndim == 2 else pixels.astype(np.float32).mean(axis=2)
    return min_max_normalise(grey)


def _only_slice(array: np.ndarray, path: Path) -> np.ndarray:
    """The one 2-D image of a [k, j, i] array one voxel thick along some axis."""
    thin = [axis for axis, size in enumerate(array.shape) if size == 1]
    if not thin:
        k, j, i = array.shape
        raise FuseVisError(
            f"{path} is a volume of {i}x{j}x{k} voxels, {k} slices; a slice input is one 2-D image: "
            "give volumes to `fusevis analyze` or the viewer, or save one slice"
        )
    return np.take(array, 0, axis=thin[0])


def _refuse_blank(array: np.ndarray, path: Path) -> None:
    """A slice of one value carries no image (volumes are refused alike): nothing to fuse or explain."""
    if array.size and np.issubdtype(array.dtype, np.number):
        low, high = np.min(array), np.max(array)  # a NaN makes them differ: the NaN check downstream names it
        if low == high:
            raise FuseVisError(f"{path} is blank (every pixel is {float(low):g}); pass a slice that holds an image")
