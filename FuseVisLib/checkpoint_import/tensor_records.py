"""Tensors as the file describes them: a storage (dtype, length, bytes) and a strided view of it.

Unpickling only records these descriptions; the bytes are read afterwards
(in the legacy format they come after the pickle) and every view is checked
against its storage before a tensor is made from it.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import torch


# torch.<Name>Storage (and torch.cuda.<Name>Storage for GPU-saved files) -> element type.
STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}


class CorruptCheckpoint(ValueError):
    """The file's structure contradicts itself (bad sizes, missing data, wrong argument types)."""


class NotThisFormat(CorruptCheckpoint):
    """The file does not even start like the format a reader expects."""


class Sealed:
    """Base for objects a file may use but never alter: pickle's BUILD opcode calls __setstate__."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise CorruptCheckpoint(f"the file tries to alter {type(self).__name__}, which it may only use")


@dataclass(frozen=True)
class StorageType(Sealed):
    """What ``torch.FloatStorage`` and friends become: only their element type."""

    name: str
    dtype: torch.dtype


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class StorageRecord(Sealed):
    """One storage named by a persistent id; ``fill`` gives it its bytes."""

    __slots__ = ("key", "dtype", "numel", "location", "data")

    def __init__(self, key: str, dtype: torch.dtype, numel: int, location: str) -> None:
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.location = location
        self.data: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        return self.numel * torch.empty((), dtype=self.dtype).element_size()

    def fill(self, raw: bytes, little_endian: bool = True) -> None:
        if len(raw) != self.nbytes:
            raise CorruptCheckpoint(f"storage {self.key} should hold {self.nbytes} bytes, the file gives {len(raw)}")
        if not raw:
            self.data = torch.empty(0, dtype=self.dtype)
            return
        data = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        element_size = torch.empty((), dtype=self.dtype).element_size()
        if not little_endian and element_size > 1:
            data = data.reshape(-1, element_size).flip(1).reshape(-1)
        self.data = data.view(self.dtype)


class StorageTable:
    """The storages of one file by key, created on first mention, checked for consistent use."""

    def __init__(self) -> None:
        self.by_key: dict[str, StorageRecord] = {}

    def storage(self, storage_type: object, key: object, location: object, numel: object) -> StorageRecord:
        if not isinstance(storage_type, StorageType) or not isinstance(storage_type.dtype, torch.dtype):
            raise CorruptCheckpoint(f"a storage names {storage_type!r} as its type, not a torch storage type")
        if isinstance(location, bytes):
            location = location.decode("ascii", "replace")
        if not isinstance(key, str) or not isinstance(location, str) or not _is_int(numel) or numel < 0:
            raise CorruptCheckpoint(f"malformed storage reference (key {key!r}, location {location!r}, size {numel!r})")
        record = self.by_key.get(key)
        if record is None:
            record = self.by_key[key] = StorageRecord(key, storage_type.dtype, numel, location)
        elif record.dtype != storage_type.dtype or record.numel != numel:
            raise CorruptCheckpoint(f"storage {key} is referenced with two different types or sizes")
        return record


class TensorRecord(Sealed):
    """A strided view of a storage, as ``_rebuild_tensor_v2`` would have made it."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage: object, offset: object, size: object, stride: object) -> None:
        if not isinstance(storage, StorageRecord):
            raise CorruptCheckpoint(f"a tensor is built on {storage!r}, not on a storage of the file")
        if not _is_int(offset) or offset < 0:
            raise CorruptCheckpoint(f"a tensor has storage offset {offset!r}")
        for name, value in (("size", size), ("stride", stride)):
            if not isinstance(value, tuple) or not all(_is_int(v) and v >= 0 for v in value):
                raise CorruptCheckpoint(f"a tensor has {name} {value!r}")
        if len(size) != len(stride):
            raise CorruptCheckpoint(f"a tensor has size {size} but stride {stride}")
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride

    def to_tensor(self) -> torch.Tensor:
        """A fresh contiguous tensor with the view's values, after checking it lies inside its storage."""
        data = self.storage.data
        if data is None:
            raise CorruptCheckpoint(f"the file has no data for storage {self.storage.key}")
        if math.prod(self.size) > 0:
            last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
            if last >= self.storage.numel:
                raise CorruptCheckpoint(
                    f"a tensor of size {self.size} reaches element {last} of storage {self.storage.key}, "
                    f"which has {self.storage.numel}"
                )
        return torch.as_strided(data, self.size, self.stride, self.offset).clone(memory_format=torch.contiguous_format)


# Stand-ins for torch._utils' rebuild functions. The arguments come from the
# file, so they are checked and recorded, never passed on to torch.


def rebuild_tensor(storage, storage_offset, size, stride) -> TensorRecord:
    return TensorRecord(storage, storage_offset, size, stride)


def rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    # Hooks are never serialised by torch on purpose; metadata only affects autograd flags.
    return TensorRecord(storage, storage_offset, size, stride)


def rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None) -> TensorRecord:
    if not isinstance(data, TensorRecord):
        raise CorruptCheckpoint(f"a parameter wraps {data!r}, not a tensor")
    return data

