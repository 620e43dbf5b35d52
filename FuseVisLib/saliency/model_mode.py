"""Running a user's model for saliency without changing it: eval mode, no parameter gradients."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from ..errors import FuseVisError


def all_modules(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` and its submodules, each once, in ``model.modules()`` order, without the dotted
    names ``modules()`` builds on the way (entering eval mode walks the whole model)."""
    stack, seen = [model], set()
    while stack:
        module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        yield module
        stack.extend(child for child in reversed(module._modules.values()) if child is not None)


def model_tensors(model: nn.Module) -> Iterator[torch.Tensor]:
    """Every parameter and buffer once, read from each module directly (much cheaper than ``model.parameters()``,
    and a Jacobian asks for the model's device on every call)."""
    seen: set[int] = set()
    for module in all_modules(model):
        for held in (module._parameters, module._buffers):
            for tensor in held.values():
                if tensor is not None and id(tensor) not in seen:
                    seen.add(id(tensor))
                    yield tensor


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (BatchNorm is a fixed affine map) and frozen parameters for the duration; restored afterwards."""
    modules = list(all_modules(model))
    training = [module for module in modules if module.training]
    frozen = [p for module in modules for p in module._parameters.values() if p is not None and p.requires_grad]
    for module in training:
        module.training = False
    for parameter in frozen:
        parameter.requires_grad_(False)
    try:
        yield model
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
        for module in training:
            module.training = True


def fused_output(model: nn.Module, mri: torch.Tensor, pet: torch.Tensor) -> torch.Tensor:
    """The model's [1,1,H,W] output, or a clear error if it returns anything else."""
    output = model(mri, pet)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != tuple(mri.shape):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise FuseVisError(
            f"{type(model).__name__} returned {shape} for inputs of shape {tuple(mri.shape)}; "
            "saliency needs a network whose forward(mri, pet) returns one fused image of the same size"
        )
    return output
