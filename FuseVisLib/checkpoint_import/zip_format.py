"""The zip ``torch.save`` format (PyTorch >= 1.6): ``<archive>/data.pkl`` plus one ``<archive>/data/<key>`` per storage."""
from __future__ import annotations

from pathlib import Path
import zipfile

from .restricted_unpickler import CheckpointContents, load_restricted
from .tensor_records import CorruptCheckpoint, NotThisFormat, StorageTable


def read_zip_file(path: Path) -> CheckpointContents:
    """The object saved in a zip checkpoint, with every tensor's bytes read and checked."""
    storages = StorageTable()
    with zipfile.ZipFile(path) as archive:
        entries = {info.filename: info for info in archive.infolist()}
        pickles = [name for name in entries if name.count("/") == 1 and name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise NotThisFormat("it is a zip archive without exactly one <archive>/data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        # torch stores entries uncompressed; refusing compression rules out zip bombs.
        if any(info.compress_type != zipfile.ZIP_STORED for info in entries.values()):
            raise CorruptCheckpoint("it has compressed entries, which torch.save never writes")
        with archive.open(pickles[0]) as pickled:
            root, recorded = load_restricted(pickled, storages)
        byteorder_entry = prefix + "byteorder"
        byteorder = archive.read(byteorder_entry).decode("ascii", "replace") if byteorder_entry in entries else "little"
        for key, storage in storages.by_key.items():
            info = entries.get(f"{prefix}data/{key}")
            if info is None:
                raise CorruptCheckpoint(f"the archive has no data/{key} for a storage its object refers to")
            if info.file_size < storage.nbytes:
                raise CorruptCheckpoint(f"data/{key} holds {info.file_size} bytes, its storage needs {storage.nbytes}")
            with archive.open(info) as data:
                storage.fill(data.read(storage.nbytes), byteorder != "big")
    return CheckpointContents(root, recorded, "zip torch.save (PyTorch >= 1.6)")
