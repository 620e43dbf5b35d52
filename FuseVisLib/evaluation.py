"""Partial losses of every method on a folder of pairs (paper Table 1), with a plain-average reference."""
from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from .device import pick_device
from .fusion_loss import LossWeights, total_loss
from .pair_folder import SlicePair
from .registry import get_method, load_method
from .training import evaluate_pairs

PLAIN_AVERAGE = "PlainAverage"


class PlainAverage(nn.Module):
    """(mri + pet) / 2: the reference a trained network has to beat."""

    def forward(self, mri: torch.Tensor, pet: torch.Tensor) -> torch.Tensor:
        return (mri + pet) / 2


def evaluate_methods(pairs: list[SlicePair], methods: list[str], device: str | None = None) -> dict[str, dict[str, float]]:
    """Mean partial losses and total loss (with each method's own gammas) per method.

    The plain average is scored with the gammas of every network in turn
    (``total_<method>``), so each network's total can be compared with it.
    """
    chosen = pick_device(device)
    modules = {name: load_method(name, device=chosen) for name in methods}  # fail early on missing weights
    results: dict[str, dict[str, float]] = {}
    for name, module in tqdm([(PLAIN_AVERAGE, PlainAverage()), *modules.items()], desc="evaluating", leave=False):
        losses = evaluate_pairs(module.to(chosen), pairs, chosen)
        recipe = get_method(name).training if name != PLAIN_AVERAGE else None
        weights = recipe.loss_weights if recipe else LossWeights()
        losses["total"] = _total(losses, weights)
        results[name] = losses
    for name in methods:
        recipe = get_method(name).training
        if recipe:
            results[PLAIN_AVERAGE][f"total_{name}"] = _total(results[PLAIN_AVERAGE], recipe.loss_weights)
    return results


def _total(losses: dict[str, float], weights: LossWeights) -> float:
    return float(total_loss({key: torch.tensor(value) for key, value in losses.items()}, weights))
