"""The open registry of fusion methods.

Each entry says how to build the module, how far its receptive field reaches
(the saliency engine relies on it), where its trained weights live and how
it was trained. Users add their own networks with :func:`register_method`;
every feature (saliency, Slicer module, viewer, analysis) looks methods up
here and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import sys
from typing import Callable

import torch
from torch import nn

from . import networks
from .device import pick_device
from .errors import FuseVisError
from .fusion_loss import LossWeights
from .weights import load_weights, models_dir


@dataclass(frozen=True)
class TrainingRecipe:
    """The authors' settings for one network (architectures.md, Table 1)."""

    loss_weights: LossWeights
    learning_rate: float
    batch_size: int


@dataclass
class FusionMethod:
    name: str
    build: Callable[[], nn.Module]
    # Largest distance (px, Chebyshev) at which an input pixel can change an
    # output pixel; None for networks with global operations; RADIUS_FROM_ARCHITECTURE
    # to let the saliency engine read it off the layers.
    receptive_radius: int | None | str
    weights_file: Path | None = None
    training: TrainingRecipe | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def trainable(self) -> bool:
        return self.weights_file is not None

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.build().parameters() if p.requires_grad)


_METHODS: dict[str, FusionMethod] = {}

RADIUS_FROM_ARCHITECTURE = "auto"

METHOD_NAMES = ("WeightedAveraging", "FunFuseAn", "MaskNet", "DeepFuse", "DeepPedestrian")


def register_method(
    name: str,
    build: Callable[[], nn.Module] | nn.Module,
    receptive_radius: int | None | str = RADIUS_FROM_ARCHITECTURE,
    weights_file: str | Path | None = None,
    *,
    training: TrainingRecipe | None = None,
    description: str = "",
    replace: bool = False,
) -> FusionMethod:
    """Add a fusion method: ``build()`` (or a ready module) with forward(mri, pet) on [B,1,H,W].

    ``receptive_radius`` is the radius in pixels of the network's receptive
    field (None if it has global operations: saliency then uses the exact
    per-pixel path); by default (``"auto"``) the saliency engine reads it off
    the network's layers. Either way it is checked against the network once.
    ``weights_file`` is a safetensors file, or None for a module that needs no
    weights or already holds them.
    """
    if name in _METHODS and not replace:
        raise FuseVisError(f"a method named {name!r} is already registered; pick another name or pass replace=True")
    if receptive_radius is not None and receptive_radius != RADIUS_FROM_ARCHITECTURE and (
        isinstance(receptive_radius, (bool, str)) or int(receptive_radius) != receptive_radius or receptive_radius < 0
    ):
        raise FuseVisError(f"receptive_radius must be a non-negative integer, None or {RADIUS_FROM_ARCHITECTURE!r}, got {receptive_radius!r}")
    if isinstance(build, nn.Module):
        module = build
        build = lambda: module  # noqa: E731 - a ready module is its own factory
    method = FusionMethod(
        name=name,
        build=build,
        receptive_radius=receptive_radius if receptive_radius in (None, RADIUS_FROM_ARCHITECTURE) else int(receptive_radius),
        weights_file=Path(weights_file) if weights_file is not None else None,
        training=training,
        description=description,
    )
    _METHODS[name] = method
    return method


def get_method(name: str) -> FusionMethod:
    try:
        return _METHODS[name]
    except KeyError:
        raise FuseVisError(f"unknown fusion method {name!r}; choose one of: {', '.join(_METHODS)}") from None


def method_names() -> list[str]:
    return list(_METHODS)


def load_method(name: str, device: str | torch.device | None = None, weights_file: str | Path | None = None) -> nn.Module:
    """The method's module in eval mode with its trained weights, on ``device`` (CUDA if present)."""
    method = get_method(name)
    module = method.build()
    source = Path(weights_file) if weights_file is not None else method.weights_file
    if source is not None:
        module.load_state_dict(load_weights(source, module))
    module.fusevis_method = method.name
    if method.receptive_radius != RADIUS_FROM_ARCHITECTURE:
        module.receptive_radius = method.receptive_radius
    return module.to(pick_device(device)).eval()


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if text else ""


def _register_builtin_methods() -> None:
    recipes = {
        "FunFuseAn": TrainingRecipe(LossWeights(0.47, 0.5), 2e-3, 2),
        "MaskNet": TrainingRecipe(LossWeights(0.5, 0.494), 2e-3, 2),
        "DeepFuse": TrainingRecipe(LossWeights(0.497, 0.5), 2e-4, 2),
        "DeepPedestrian": TrainingRecipe(LossWeights(0.52, 0.5), 2e-3, 8),
    }
    register_method(
        "WeightedAveraging",
        networks.WeightedAveraging,
        0,
        description="Pixel-wise weighted average, paper eq. 3 (true derivative through the weights)",
    )
    for name, recipe in recipes.items():
        network = getattr(networks, name)
        register_method(
            name,
            network,
            max(network.receptive_radius.values()) if isinstance(network.receptive_radius, dict) else network.receptive_radius,
            models_dir() / f"{name}.safetensors",
            training=recipe,
            description=_first_line(sys.modules[network.__module__].__doc__),
        )


_register_builtin_methods()
