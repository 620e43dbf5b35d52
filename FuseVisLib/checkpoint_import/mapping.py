"""Map a found state dict onto a registered network, name by name and shape by shape."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import zip_longest

import torch
from torch import nn

from ..errors import FuseVisError
from ..imported_methods import SEPARATOR
from ..registry import get_method, method_names
from .state_extraction import FoundState

# How many mismatches an error message lists.
LISTED_MISMATCHES = 8
# nn.DataParallel / DistributedDataParallel prefix every name with this.
PARALLEL_PREFIX = "module."
# PyTorch < 0.4.1 BatchNorm had no step counter; eval mode never reads it.
ADDED_LATER = "num_batches_tracked"


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


@dataclass
class Fit:
    """How one found state dict lines up with a network's state dict."""

    tensors: "OrderedDict[str, torch.Tensor]"
    mismatches: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)


def fit_state_dict(found: dict[str, torch.Tensor], module: nn.Module) -> Fit:
    """Check every tensor ``module`` expects against ``found``; convert matching ones to its dtypes."""
    if found and all(name.startswith(PARALLEL_PREFIX) for name in found):
        found = {name[len(PARALLEL_PREFIX):]: tensor for name, tensor in found.items()}
    expected = module.state_dict()
    fit = Fit(OrderedDict())
    missing, wrong = [], []
    for name, target in expected.items():
        tensor = found.get(name)
        if tensor is None:
            if name.rsplit(".", 1)[-1] == ADDED_LATER:
                fit.tensors[name] = torch.zeros_like(target)
                fit.filled.append(name)
            else:
                missing.append(f"{name}: expected {_shape(target)}, not in the file")
        elif _shape(tensor) != _shape(target):
            wrong.append(f"{name}: expected {_shape(target)}, found {_shape(tensor)}")
        elif tensor.dtype.is_floating_point != target.dtype.is_floating_point:
            wrong.append(f"{name}: expected {target.dtype}, found {tensor.dtype}")
        else:
            fit.tensors[name] = tensor.to(target.dtype)
    unexpected = [f"{name}: not in {type(module).__name__}, found {_shape(t)}" for name, t in found.items() if name not in expected]
    # Wrong shapes first; then absent and surplus names alternate, so a short list shows both sides.
    alternating = [entry for pair in zip_longest(missing, unexpected) for entry in pair if entry is not None]
    fit.mismatches = wrong + alternating
    return fit


def networks_with_weights() -> list[str]:
    """Registered methods with weights of their own, imported ones (``Base@stem``) aside."""
    return [name for name in method_names() if SEPARATOR not in name and get_method(name).weights_file is not None]


def fitting_methods(found: dict[str, torch.Tensor]) -> list[str]:
    """Registered networks whose state dict ``found`` fits exactly."""
    return [name for name in networks_with_weights() if not fit_state_dict(found, get_method(name).build()).mismatches]


def map_onto_method(candidates: list[FoundState], method_name: str, source: str) -> tuple[Fit, FoundState]:
    """The fit of the first candidate that matches ``method_name`` exactly, or a FuseVisError listing mismatches."""
    if not candidates:
        raise FuseVisError(
            f"{source} holds no tensors: neither a whole model nor a state dict was found in it; "
            "pass the file that torch.save wrote for your trained network"
        )
    method = get_method(method_name)
    fits = [(fit_state_dict(candidate.tensors, method.build()), candidate) for candidate in candidates]
    for fit, candidate in fits:
        if not fit.mismatches:
            return fit, candidate
    fit, candidate = min(fits, key=lambda pair: len(pair[0].mismatches))
    others = fitting_methods(candidate.tensors)
    advice = (
        f"it fits {' and '.join(others)}: run again with --method {others[0]}"
        if others
        else f"check that --method names the network this checkpoint was trained as ({', '.join(networks_with_weights())}); "
        "for a network of your own, register it in Python with FuseVisLib.register_method, passing the module with "
        "these weights loaded (README: Adding your own fusion network)"
    )
    listed = "; ".join(fit.mismatches[:LISTED_MISMATCHES])
    more = f" (and {len(fit.mismatches) - LISTED_MISMATCHES} more)" if len(fit.mismatches) > LISTED_MISMATCHES else ""
    raise FuseVisError(
        f"{candidate.where} in {source} does not fit {method_name}: "
        f"{len(fit.mismatches)} mismatch{'es' if len(fit.mismatches) > 1 else ''}, first: {listed}{more}; {advice}"
    )
