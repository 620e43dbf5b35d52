"""Which fusion methods a run compares: named ones must load; ``all`` skips those without weights, with a reason."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import FuseVisError
from ..registry import get_method, load_method, method_names

ALL = "all"


@dataclass
class MethodSelection:
    """Loaded modules by name (eval mode, on the device) and methods left out, each with the reason."""

    models: dict[str, nn.Module]
    skipped: dict[str, str]

    def fingerprint(self) -> list:
        """Names and weights-file stamps: a finished case is redone when these change (e.g. retrained weights)."""
        stamps = []
        for name in self.models:
            weights = get_method(name).weights_file
            stat = weights.stat() if weights is not None and weights.is_file() else None
            stamps.append([name, None if stat is None else [stat.st_size, stat.st_mtime_ns]])
        return stamps


def select_methods(requested: list[str], device: str | None = None) -> MethodSelection:
    """``requested``: method names, or ``["all"]`` for every registered method.

    With ``all`` a method whose weights cannot be loaded (not trained yet,
    unreadable file) is skipped with the loader's message; a method named
    explicitly must load, else FuseVisError.
    """
    names = [name for item in requested for name in item.split(",") if name.strip()]
    names = [name.strip() for name in names]
    if not names:
        raise FuseVisError(f"no methods given; pass --methods all or names from: {', '.join(method_names())}")
    if ALL in names:
        if len(names) > 1:
            raise FuseVisError("--methods all already includes every method; give either 'all' or a list of names")
        models, skipped = {}, {}
        for name in method_names():
            try:
                models[name] = load_method(name, device=device)
            except FuseVisError as error:
                skipped[name] = str(error)
        if not models:
            raise FuseVisError(f"no method could be loaded ({'; '.join(skipped.values())})")
        return MethodSelection(models, skipped)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise FuseVisError(f"--methods names {', '.join(duplicates)} more than once; list each method once")
    return MethodSelection({name: load_method(name, device=device) for name in names}, {})
