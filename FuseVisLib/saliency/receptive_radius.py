"""The receptive radius a model declares: explicit argument, module attribute, or registry entry."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import FuseVisError

AUTO = "auto"
MODALITIES = ("mri", "pet")


@dataclass(frozen=True)
class DeclaredRadius:
    """Per-input radii in pixels (None: no finite radius, or nothing declared) and where they came from."""

    per_input: dict[str, int] | None
    source: str
    declared: bool = True  # False: the model says nothing; the traced architecture may stand in

    @property
    def radius(self) -> int | None:
        return None if self.per_input is None else max(self.per_input.values())


def parse_radius(value, source: str) -> DeclaredRadius:
    """An int, a {"mri": r1, "pet": r2} dict or None, checked."""
    if value is None:
        return DeclaredRadius(None, source)
    if isinstance(value, dict):
        unknown = set(value) - set(MODALITIES)
        if unknown or set(value) != set(MODALITIES):
            raise FuseVisError(f"receptive radius from {source} must name exactly 'mri' and 'pet', got {sorted(value)}")
        per_input = {name: _non_negative_int(value[name], source) for name in MODALITIES}
        return DeclaredRadius(per_input, source)
    radius = _non_negative_int(value, source)
    return DeclaredRadius({name: radius for name in MODALITIES}, source)


def _non_negative_int(value, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FuseVisError(f"receptive radius from {source} must be a non-negative integer (pixels) or None, got {value!r}")
    return value


def declared_radius(model: nn.Module, radius=AUTO) -> DeclaredRadius:
    """``radius`` if given, else ``model.receptive_radius``, else the registry entry named by ``model.fusevis_method``
    (which may leave it to the architecture)."""
    if radius != AUTO:
        return parse_radius(radius, "the radius argument")
    if hasattr(model, "receptive_radius"):
        return parse_radius(model.receptive_radius, f"{type(model).__name__}.receptive_radius")
    method = getattr(model, "fusevis_method", None)
    if method is not None:
        from ..registry import RADIUS_FROM_ARCHITECTURE, get_method

        registered = get_method(method).receptive_radius
        if registered == RADIUS_FROM_ARCHITECTURE:
            return DeclaredRadius(None, f"the registry entry {method!r} leaves the radius to the architecture", declared=False)
        return parse_radius(registered, f"the registry entry {method!r}")
    return DeclaredRadius(None, f"{type(model).__name__} declares no receptive radius", declared=False)
