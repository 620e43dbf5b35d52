"""The pre-1.6 ``torch.save`` format: consecutive pickles, then the raw storage bytes.

Layout: the magic number, the protocol version and a ``sys_info`` dict (three
small pickles); the object pickle, whose persistent ids name storages; a
pickled list of the storage keys in sorted order; then, for each key in that
order, an 8-byte little-endian element count followed by the storage's bytes.
Every pickle here goes through the restricted unpickler.
"""
from __future__ import annotations

from pathlib import Path
import pickle
import struct

from .restricted_unpickler import CheckpointContents, load_restricted
from .tensor_records import CorruptCheckpoint, NotThisFormat, StorageTable

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


def read_legacy_file(path: Path) -> CheckpointContents:
    """The object saved in a legacy file, with every tensor's bytes read and checked."""
    storages = StorageTable()
    file_size = path.stat().st_size
    with open(path, "rb") as file:
        try:
            magic, _ = load_restricted(file)
        except (pickle.UnpicklingError, EOFError, CorruptCheckpoint) as error:
            if isinstance(error, EOFError) or "truncated" in str(error):
                raise EOFError("the file ends inside its first pickle") from None
            raise NotThisFormat(f"it does not start with a pickle ({error})") from None
        if magic != MAGIC_NUMBER:
            raise NotThisFormat("it starts with a pickle, but not with torch's magic number")
        protocol, _ = load_restricted(file)
        if protocol != PROTOCOL_VERSION:
            raise CorruptCheckpoint(f"unknown legacy torch.save protocol {protocol!r}")
        sys_info, _ = load_restricted(file)
        little_endian = not isinstance(sys_info, dict) or dict.get(sys_info, "little_endian", True) is not False
        root, recorded = load_restricted(file, storages)
        keys, _ = load_restricted(file)
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise CorruptCheckpoint("the storage key list is malformed")
        if set(keys) != set(storages.by_key):
            raise CorruptCheckpoint("the storage key list does not match the storages the object refers to")
        for key in keys:
            storage = storages.by_key[key]
            header = file.read(8)
            if len(header) < 8:
                raise EOFError(f"the file ends before storage {key}")
            (count,) = struct.unpack("<q", header)
            if count != storage.numel:
                raise CorruptCheckpoint(f"storage {key} is announced with {storage.numel} elements but stored with {count}")
            if storage.nbytes > file_size - file.tell():
                raise EOFError(f"storage {key} needs {storage.nbytes} bytes, the file has {file_size - file.tell()} left")
            storage.fill(file.read(storage.nbytes), little_endian)
    return CheckpointContents(root, recorded, "legacy torch.save (PyTorch < 1.6)")
