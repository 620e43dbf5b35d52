"""Recognise a checkpoint file by its first bytes and read it without running anything from it."""
from __future__ import annotations

from pathlib import Path
import pickle
import struct
import zipfile

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import FuseVisError
from .legacy_format import read_legacy_file
from .restricted_unpickler import CheckpointContents, RefusedPickle
from .tensor_records import CorruptCheckpoint, NotThisFormat
from .zip_format import read_zip_file

ACCEPTED = "a torch.save file (.pt/.pth, zip or legacy, whole model or state_dict), an .npz or a .safetensors file"


def _is_safetensors(head: bytes, file_size: int) -> bool:
    if len(head) < 9:
        return False
    (header_size,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 8 + header_size <= file_size


def _read_npz(path: Path) -> CheckpointContents:
    with np.load(path, allow_pickle=False) as arrays:
        tensors = {name: torch.from_numpy(np.array(arrays[name])) for name in arrays.files}
    return CheckpointContents(tensors, set(), "numpy .npz")


def _read_safetensors(path: Path) -> CheckpointContents:
    return CheckpointContents(load_file(str(path), device="cpu"), set(), "safetensors")


def _read_zip(path: Path) -> CheckpointContents:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if names and all(name.endswith(".npy") for name in names):
        return _read_npz(path)
    return read_zip_file(path)


def read_checkpoint(path: str | Path) -> CheckpointContents:
    """Everything a checkpoint holds, as plain data, inert records and tensors.

    Raises FuseVisError if the file would run code on load (nothing of it is
    run), is truncated or damaged, or is in no format FuseVis reads.
    """
    path = Path(path)
    if not path.is_file():
        raise FuseVisError(f"checkpoint {path} does not exist; pass the file your training saved")
    with open(path, "rb") as file:
        head = file.read(512)
    size = path.stat().st_size
    try:
        if head.startswith(b"PK"):
            return _read_zip(path)
        if _is_safetensors(head, size):
            return _read_safetensors(path)
        if path.suffix.lower() == ".safetensors":  # named so, but without a safetensors header
            raise FuseVisError(f"{path} is not a valid safetensors file (no safetensors header); copy the file again from its source")
        if head[257:262] == b"ustar":
            raise FuseVisError(
                f"{path} is a tar-format checkpoint from PyTorch < 0.4, which FuseVis does not read; "
                "in a trusted environment with that PyTorch, re-save its state_dict() and import that"
            )
        return read_legacy_file(path)
    except RefusedPickle as refusal:
        raise FuseVisError(
            f"refused to load {path}: it names {refusal.qualified_name}, {refusal.reason}; loading it "
            "the usual way would run that. Nothing from the file was executed. Import only checkpoints from a source you trust; "
            "if this file is yours, save its state_dict() instead of the whole model"
        ) from None
    except NotThisFormat as error:
        raise FuseVisError(f"{path} is not a checkpoint FuseVis can read ({error}); give {ACCEPTED}") from None
    except OSError as error:
        raise FuseVisError(f"cannot read checkpoint {path} ({error}); check the path and its permissions") from None
    except (EOFError, zipfile.BadZipFile) as error:
        raise FuseVisError(
            f"{path} is truncated or damaged ({error or 'it ends too early'}); copy the file again from its source"
        ) from None
    except (CorruptCheckpoint, pickle.UnpicklingError, SafetensorError, ValueError, TypeError, KeyError,
            IndexError, AttributeError, struct.error) as error:
        reason = "it ends too early" if "truncated" in str(error) else f"{type(error).__name__}: {error}"
        raise FuseVisError(f"{path} is truncated or damaged ({reason}); copy the file again from its source") from None
