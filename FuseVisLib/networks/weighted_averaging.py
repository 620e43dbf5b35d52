"""Weighted averaging, paper equation 3: each pixel weighted by its own share of the sum.

y = w1*x1 + w2*x2 with w1 = x1/(x1+x2), w2 = x2/(x1+x2), i.e. y = (x1^2 + x2^2)/(x1 + x2).

Where x1 + x2 = 0 the weights are 0.5 each, as the authors chose, so y = 0 there
and its derivative is 0.5 per input.

Two derivatives are on offer:
- ``constant_weights=False`` (default): the weights are functions of the inputs,
  so autograd yields the true derivative of the operator,
  dy/dx1 = (x1^2 + 2*x1*x2 - x2^2) / (x1 + x2)^2. This is what the image
  actually responds to, so it is what saliency should show.
- ``constant_weights=True``: the authors' variant; the weights are computed
  outside the graph and the "gradient" is just (w1, w2).
"""
import torch
from torch import nn


class WeightedAveraging(nn.Module):
    receptive_radius = 0

    def __init__(self, constant_weights: bool = False) -> None:
        super().__init__()
        self.constant_weights = constant_weights

    def weights(self, mri: torch.Tensor, pet: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total = mri + pet
        defined = total != 0
        safe_total = torch.where(defined, total, torch.ones_like(total))
        half = torch.full_like(total, 0.5)
        return torch.where(defined, mri / safe_total, half), torch.where(defined, pet / safe_total, half)

    def forward(self, mri: torch.Tensor, pet: torch.Tensor) -> torch.Tensor:
        w_mri, w_pet = self.weights(mri, pet)
        if self.constant_weights:
            w_mri, w_pet = w_mri.detach(), w_pet.detach()
        return w_mri * mri + w_pet * pet

    def extra_repr(self) -> str:
        return f"constant_weights={self.constant_weights}"
