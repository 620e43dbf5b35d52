"""A pickle reader that admits tensor data and plain containers, records other classes, and refuses code.

Unpickling calls whatever callables the file names. This unpickler decides
for every name the file mentions (``find_class``) before anything is called:

- *admitted*: the tensor-rebuilding functions and storage types (replaced by
  stand-ins in :mod:`.tensor_records` that only record sizes and offsets),
  ``collections.OrderedDict`` and the plain containers ``set``/``frozenset``;
- *refused*: names in modules that reach the operating system or the
  interpreter (``os.system``, ``builtins.eval``, ``subprocess.Popen``,
  ``importlib`` ...), and any name that resolves, in a module this process has
  already imported, to a function rather than a class (``torch.save``);
- *recorded*: every other name, typically a class (``__main__.FunFuseAn``,
  ``torch.nn.modules.conv.Conv2d``), and the one function old checkpoints
  call on load for nothing (``torch.nn.backends.thnn._get_thnn_function_backend``)
  become fresh inert placeholder classes.

No module is ever imported: names are looked up only in ``sys.modules``,
through the modules' ``__dict__`` (no ``__getattr__`` hooks).
"""
from __future__ import annotations

import _compat_pickle
from collections import OrderedDict
from dataclasses import dataclass
import pickle
import sys
import types
from typing import Any, BinaryIO

from .inert_records import InertRecord, inert_class
from .tensor_records import (
    STORAGE_DTYPES,
    CorruptCheckpoint,
    Sealed,
    StorageTable,
    StorageType,
    rebuild_parameter,
    rebuild_tensor,
    rebuild_tensor_v2,
)


@dataclass
class CheckpointContents:
    """The top-level object read from a checkpoint (tensor storages filled) and the class names it recorded."""

    root: Any
    recorded_classes: set[str]
    format: str


class RefusedPickle(Exception):
    """The file names something that would run code when loaded."""

    def __init__(self, qualified_name: str, reason: str) -> None:
        super().__init__(f"{qualified_name}: {reason}")
        self.qualified_name = qualified_name
        self.reason = reason


class RecordedOrderedDict(OrderedDict):
    """``collections.OrderedDict`` as unpickled here: attribute state (``_metadata``) is kept aside."""

    def __setstate__(self, state: Any) -> None:
        # Setting attributes from the file could shadow dict methods; keep them as data.
        self.pickled_state = state


class AdmittedFunction(Sealed):
    """A function the file may call; sealed, so the file cannot alter it (its defaults, say) for later loads."""

    __slots__ = ("function",)

    def __init__(self, function: Any) -> None:
        self.function = function

    def __call__(self, *arguments: Any, **keyword_arguments: Any) -> Any:
        return self.function(*arguments, **keyword_arguments)

    def __repr__(self) -> str:
        return f"<admitted {self.function.__name__}>"


def _rebuild_from_type(function: Any, new_type: Any, arguments: Any, state: Any = None) -> Any:
    """Tensor subclasses: the same data, whatever subclass (an inert record here) the file names."""
    if not any(function is rebuilder for rebuilder in TENSOR_REBUILDERS.values()) or not isinstance(arguments, tuple):
        raise CorruptCheckpoint(f"a tensor subclass is rebuilt with {function!r}, which is not a tensor rebuilder")
    if not (isinstance(new_type, type) and issubclass(new_type, InertRecord)):
        raise CorruptCheckpoint(f"a tensor subclass names {new_type!r} as its type")
    return function(*arguments)


def _reconstruct(cls: Any, base: Any = None, state: Any = None) -> InertRecord:
    """``copyreg._reconstructor`` (pickle protocols 0 and 1) for a recorded class."""
    if not (isinstance(cls, type) and issubclass(cls, InertRecord)):
        raise CorruptCheckpoint(f"copyreg._reconstructor is asked to build {cls!r}")
    return cls.__new__(cls)


def _new_object(cls: Any, *arguments: Any, **keyword_arguments: Any) -> InertRecord:
    """``copyreg.__newobj__`` written out as a call (protocols below 2)."""
    return _reconstruct(cls)


TENSOR_REBUILDERS = {
    ("torch._utils", "_rebuild_tensor"): AdmittedFunction(rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): AdmittedFunction(rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): AdmittedFunction(rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): AdmittedFunction(rebuild_parameter),
}
# Functions are sealed; builtin types are immutable, and pickle cannot alter a class
# through __setstate__, so the classes are handed out as they are.
ADMITTED: dict[tuple[str, str], Any] = {
    **TENSOR_REBUILDERS,
    ("torch._tensor", "_rebuild_from_type_v2"): AdmittedFunction(_rebuild_from_type),
    ("collections", "OrderedDict"): RecordedOrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "object"): object,
    ("torch", "Size"): tuple,
    ("copyreg", "_reconstructor"): AdmittedFunction(_reconstruct),
    ("copyreg", "__newobj__"): AdmittedFunction(_new_object),
}
ADMITTED.update({("torch", name): StorageType(name, dtype) for name, dtype in STORAGE_DTYPES.items()})
ADMITTED.update({("torch.cuda", name): StorageType(name, dtype) for name, dtype in STORAGE_DTYPES.items()})

# Functions that old checkpoints call on load but whose result nobody needs:
# PyTorch < 1.0 pickled every module's backend as a call to this function.
RECORDED_CALLS = {("torch.nn.backends.thnn", "_get_thnn_function_backend")}

# Top-level modules whose names have no business in a checkpoint: they reach the
# operating system, the network, the interpreter or other deserialisers.
REFUSED_MODULES = frozenset(
    """
    os posix nt posixpath ntpath sys subprocess shutil socket ssl select signal pty tty fcntl resource
    builtins importlib imp pkgutil runpy zipimport site sysconfig code codeop compileall py_compile
    ctypes cffi mmap gc inspect types functools operator itertools
    pickle _pickle pickletools copyreg shelve dbm marshal dill cloudpickle joblib yaml
    io _io pathlib glob tempfile fileinput zipfile tarfile
    threading _thread multiprocessing concurrent asyncio sched
    webbrowser urllib http ftplib smtplib telnetlib xmlrpc
    pdb bdb trace timeit profile cProfile doctest unittest platform
    """.split()
)
# Parts of torch that load code or files, or run native code by name.
REFUSED_TORCH_MODULES = ("torch.hub", "torch.jit", "torch.package", "torch.serialization", "torch._C", "torch.ops", "torch.utils.cpp_extension")


def modern_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 names (``__builtin__``, ``copy_reg``) as Python 3 spells them; a pure table lookup."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _refusal_reason(module: str, name: str) -> str | None:
    """Why the file may not name ``module.name``, or None if it may (as an inert record)."""
    root = module.split(".", 1)[0]
    if root in REFUSED_MODULES:
        return f"from {module}, a module that reaches the operating system or the interpreter"
    if any(module == refused or module.startswith(refused + ".") for refused in REFUSED_TORCH_MODULES):
        return f"from {module}, which loads code or files"
    if any(part.startswith("__") and part.endswith("__") for part in name.split(".")):
        return "a special attribute, never part of a checkpoint"
    target = _already_imported(module, name)
    if target is not None and callable(target) and not isinstance(target, type):
        return "a function; a checkpoint that calls functions on load can run any code"
    return None


def _already_imported(module: str, name: str) -> Any:
    """``module.name`` if this process has already imported the module, found without running anything."""
    namespace: Any = sys.modules.get(module)
    for part in name.split("."):
        if namespace is None:
            return None
        attributes = getattr(namespace, "__dict__", None)
        if not isinstance(attributes, (dict, types.MappingProxyType)):
            return None
        namespace = attributes.get(part)
    return namespace


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles one object; storages named by persistent ids go into ``storages``."""

    def __init__(self, file: BinaryIO, storages: StorageTable | None = None) -> None:
        super().__init__(file)
        self.storages = storages if storages is not None else StorageTable()
        self.placeholders: dict[str, type[InertRecord]] = {}
        self.recorded_names: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        if not isinstance(module, str) or not isinstance(name, str):
            raise CorruptCheckpoint(f"a global is named {module!r}.{name!r}")
        module, name = modern_name(module, name)
        qualified = f"{module}.{name}"
        if (module, name) in ADMITTED:
            return ADMITTED[(module, name)]
        if (module, name) not in RECORDED_CALLS:
            reason = _refusal_reason(module, name)
            if reason is not None:
                raise RefusedPickle(qualified, reason)
        self.recorded_names.add(qualified)
        if qualified not in self.placeholders:
            self.placeholders[qualified] = inert_class(qualified)
        return self.placeholders[qualified]

    def persistent_load(self, saved_id: Any) -> Any:
        if not isinstance(saved_id, tuple) or not saved_id:
            raise CorruptCheckpoint(f"unknown persistent id {saved_id!r}")
        kind = saved_id[0].decode("ascii", "replace") if isinstance(saved_id[0], bytes) else saved_id[0]
        if kind == "module" and len(saved_id) == 4:
            # Legacy files name each module class with its source text; the class
            # (already a placeholder from find_class) is all that matters.
            return saved_id[1]
        if kind == "storage" and len(saved_id) in (5, 6):
            if len(saved_id) == 6 and saved_id[5] is not None:
                raise CorruptCheckpoint("storage views (PyTorch < 1.0 files) are not supported")
            return self.storages.storage(*saved_id[1:5])
        raise CorruptCheckpoint(f"unknown persistent id {saved_id[:1]!r}")


def load_restricted(file: BinaryIO, storages: StorageTable | None = None) -> tuple[Any, set[str]]:
    """The next pickled object in ``file`` and the names of the classes it recorded as inert."""
    unpickler = RestrictedUnpickler(file, storages)
    return unpickler.load(), unpickler.recorded_names
