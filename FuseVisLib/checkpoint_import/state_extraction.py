"""Find the flat state dicts in what a checkpoint holds: whole pickled models or saved state_dicts.

A whole model arrives as inert records whose state is the ``nn.Module``
instance dictionary; its ``_parameters``, ``_buffers`` and ``_modules`` give
the same dotted names, in the same order, as ``state_dict()`` would.
Checkpoint dictionaries (``{"model_state_dict": ..., "epoch": ...}``) are
searched too, so every candidate is returned with where it was found.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch

from .inert_records import InertRecord
from .tensor_records import CorruptCheckpoint, TensorRecord

# How deep to look for a model inside checkpoint dictionaries and wrapper objects.
MAX_DEPTH = 6


@dataclass
class FoundState:
    """One candidate state dict and where in the file it was."""

    where: str
    tensors: dict[str, torch.Tensor]


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, TensorRecord):
        return value.to_tensor()
    if isinstance(value, torch.Tensor):
        return value
    raise CorruptCheckpoint(f"{name} holds {type(value).__name__}, not a tensor")


def is_module_record(value: Any) -> bool:
    if not isinstance(value, InertRecord):
        return False
    attributes = value.attributes()
    return isinstance(attributes.get("_parameters"), dict) and isinstance(attributes.get("_modules"), dict)


def flatten_module(record: InertRecord, prefix: str = "", into: dict | None = None, visiting: set | None = None) -> dict[str, torch.Tensor]:
    """The state dict of a recorded module: its parameters, persistent buffers, then its children's."""
    into = {} if into is None else into
    visiting = set() if visiting is None else visiting
    if id(record) in visiting:
        raise CorruptCheckpoint(f"module {prefix.rstrip('.') or 'root'} contains itself")
    visiting.add(id(record))
    attributes = record.attributes()
    non_persistent = attributes.get("_non_persistent_buffers_set")
    non_persistent = non_persistent if isinstance(non_persistent, (set, frozenset)) else set()
    buffers = attributes.get("_buffers")
    groups = [(attributes["_parameters"], set()), (buffers if isinstance(buffers, dict) else {}, non_persistent)]
    for group, skipped in groups:
        for name, value in dict.items(group):
            if not isinstance(name, str):
                raise CorruptCheckpoint(f"module {prefix or 'root'} has a tensor named {name!r}")
            # None marks an absent optional parameter (e.g. bias=False); state_dict() omits it too.
            if value is not None and name not in skipped:
                into[prefix + name] = _as_tensor(prefix + name, value)
    for name, child in dict.items(attributes["_modules"]):
        if child is None:
            continue
        if not is_module_record(child):
            raise CorruptCheckpoint(f"submodule {prefix}{name} is {child!r}, not a module")
        flatten_module(child, f"{prefix}{name}.", into, visiting)
    visiting.discard(id(record))
    return into


def _is_tensor_mapping(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) > 0
        and all(isinstance(key, str) and isinstance(item, (TensorRecord, torch.Tensor)) for key, item in dict.items(value))
    )


def _children(value: Any, where: str) -> Iterator[tuple[Any, str]]:
    if isinstance(value, dict):
        for key, item in dict.items(value):
            yield item, f"{where}[{key!r}]"
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield item, f"{where}[{index}]"
    elif isinstance(value, InertRecord):
        for key, item in dict.items(value.attributes()):
            yield item, f"{where}.{key}"


def find_state_dicts(root: Any) -> list[FoundState]:
    """Every whole model and every name -> tensor mapping in ``root``, breadth first."""
    found: list[FoundState] = []
    seen: set[int] = set()
    level = [(root, "")]
    for _ in range(MAX_DEPTH + 1):
        next_level = []
        for value, where in level:
            if id(value) in seen:
                continue
            seen.add(id(value))
            if is_module_record(value):
                tensors = flatten_module(value)
                if tensors:
                    found.append(FoundState(f"the whole model{' ' + where if where else ''} ({value.origin})", tensors))
            elif _is_tensor_mapping(value):
                found.append(FoundState(f"the state dict{' ' + where if where else ''}", {k: _as_tensor(k, v) for k, v in dict.items(value)}))
            else:
                next_level.extend(_children(value, where))
        level = next_level
    return found
