"""A small convolutional fusion network for the viewer tests (the trained networks may be absent).

Seeded weights, so the viewer's server process and the test process hold
the same network; its saliency goes through the same engine as the
paper's networks. ``serve_with_test_network.py`` registers it in the server.
"""
from __future__ import annotations

import torch
from torch import nn

NAME = "ViewerTestNet"
RECEPTIVE_RADIUS = 2


class ViewerTestNet(nn.Module):
    """Two 3x3 convolutions (receptive radius 2) with fixed random weights."""

    receptive_radius = RECEPTIVE_RADIUS

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(5)
        self.features = nn.Conv2d(2, 4, 3, padding=1)
        self.output = nn.Conv2d(4, 1, 3, padding=1)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)

    def forward(self, mri: torch.Tensor, pet: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.output(torch.tanh(self.features(torch.cat([mri, pet], dim=1)))))


def register() -> None:
    from FuseVisLib import register_method

    register_method(NAME, ViewerTestNet, RECEPTIVE_RADIUS, replace=True, description="viewer test network")
