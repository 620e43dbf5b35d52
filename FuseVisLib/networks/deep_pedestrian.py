"""DeepPedestrian: concatenated inputs, residual blocks with pre-activation ReLU, no BatchNorm."""
import torch
from torch import nn

from .layers import conv_same

CHANNELS = 48


def _preactivated_convs(count: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for _ in range(count):
        layers += [nn.ReLU(), conv_same(CHANNELS, CHANNELS, 3)]
    return layers


class DeepPedestrian(nn.Module):
    receptive_radius = 17

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(conv_same(2, CHANNELS, 3), *_preactivated_convs(3))
        self.conv2 = nn.Sequential(*_preactivated_convs(4))
        self.conv3 = nn.Sequential(*_preactivated_convs(4))
        self.conv4 = nn.Sequential(*_preactivated_convs(4))
        self.conv5 = nn.Sequential(nn.ReLU(), conv_same(CHANNELS, 1, 3))

    def forward(self, mri: torch.Tensor, pet: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(torch.cat((mri, pet), dim=1))
        x3 = x1 + self.conv2(x1)
        x4 = self.conv3(x3)
        x6 = x4 + self.conv4(x4)
        # Linear output: the authors do not squash it.
        return self.conv5(x6)
