"""Stand-ins for the classes a checkpoint names: they keep what the file says, and run nothing.

A pickled model names its classes (``__main__.FunFuseAn``,
``torch.nn.modules.conv.Conv2d``, ...). Instead of importing them, the
restricted unpickler hands out a fresh subclass of :class:`InertRecord` per
name. Whatever the file then does with that "class" (instantiate it, set its
state, append or assign items) is only written down.
"""
from __future__ import annotations

from typing import Any


class InertRecord:
    """One object described by the file: the class it named and the data it carried."""

    __slots__ = ("arguments", "keyword_arguments", "state", "items", "entries")
    origin = "?"  # "module.QualifiedName" the file asked for; set on each subclass

    def __new__(cls, *arguments: Any, **keyword_arguments: Any) -> "InertRecord":
        record = object.__new__(cls)
        record.arguments = arguments
        record.keyword_arguments = keyword_arguments
        record.state = None
        record.items = []
        record.entries = []
        return record

    def __init__(self, *arguments: Any, **keyword_arguments: Any) -> None:
        """Nothing to initialise: __new__ already recorded the arguments."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    # List- and dict-like pickle opcodes (APPEND(S), SETITEM(S)) land here.
    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: Any) -> None:
        self.items.extend(list(items))

    def __setitem__(self, key: Any, value: Any) -> None:
        self.entries.append((key, value))

    def attributes(self) -> dict:
        """The instance dictionary the file gave (BUILD state), or {} if it gave none."""
        state = self.state
        # (dict, slots) is how pickle passes state for classes with __slots__.
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], (dict, type(None))):
            state = state[0]
        return state if isinstance(state, dict) else {}

    def __repr__(self) -> str:
        return f"<inert record of {self.origin}>"


def inert_class(origin: str) -> type[InertRecord]:
    """A new placeholder class standing for the class the file calls ``origin``."""
    short_name = origin.rsplit(".", 1)[-1] or "Unnamed"
    return type(short_name, (InertRecord,), {"__slots__": (), "origin": origin, "__module__": __name__})
