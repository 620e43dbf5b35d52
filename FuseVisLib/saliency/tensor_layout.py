"""Where a model holds its tensors, recorded once and checked cheaply, so that a cache keyed on the
model can tell on every call whether its parameters and buffers are still the same.

Walking the module tree on every Jacobian cost FunFuseAn (39 modules, 72
tensors) 80-170 us on its own and two to three times that between a
Jacobian's convolutions, which leave none of those objects in the caches.
So one walk records every module's parameter, buffer and submodule dicts;
later calls check that each module still holds those dicts with the same
entries (by identity) and read the tensors' version counters and data
pointers. An in-place change (an optimiser step, ``load_state_dict``,
re-estimated BatchNorm statistics) bumps a version, ``model.to(...)`` moves
the data, a replaced parameter, buffer or layer changes an entry, even when
written into the dicts directly.
"""
from __future__ import annotations

from torch import nn

from .model_mode import all_modules


class TensorLayout:
    """The dicts a model keeps its parameters, buffers and submodules in, and what they held when recorded."""

    def __init__(self, model: nn.Module) -> None:
        # (module, its _parameters, _buffers, _modules); the model itself as None: caches keyed
        # weakly on the model must not keep it alive.
        self._holders = [
            (None if module is model else module, module._parameters, module._buffers, module._modules) for module in all_modules(model)
        ]
        # Held, so that no entry's id can be reused by a new object while this layout is in use.
        self._entries = self._entries_now()
        self._entry_ids = [id(value) for value in self._entries]
        self.tensors = [value for _, parameters, buffers, _ in self._holders for held in (parameters, buffers) for value in held.values() if value is not None]

    def describes(self, model: nn.Module) -> bool:
        """Whether ``model`` still keeps the same tensors and submodules in the same places."""
        for module, parameters, buffers, children in self._holders:
            module = model if module is None else module
            if module._parameters is not parameters or module._buffers is not buffers or module._modules is not children:
                return False
        return [id(value) for value in self._entries_now()] == self._entry_ids

    def _entries_now(self) -> list:
        """Everything the recorded dicts hold now (parameters, buffers, submodules, Nones), in order."""
        return [value for _, *dicts in self._holders for held in dicts for value in held.values()]

    def contents(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The tensors' version counters (bumped by in-place changes) and data pointers (changed by moves)."""
        tensors = self.tensors
        return tuple([tensor._version for tensor in tensors]), tuple([tensor.data_ptr() for tensor in tensors])
