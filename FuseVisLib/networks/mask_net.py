"""MaskNet: concatenated inputs, densely connected encoder, plain decoder."""
import torch
from torch import nn

from .layers import conv_bn_act


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(*conv_bn_act(in_channels, out_channels, 3, nn.LeakyReLU(0.2)))


class MaskNet(nn.Module):
    receptive_radius = 8

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = _block(2, 48)
        self.layer2 = _block(48, 48)
        self.layer3 = _block(96, 48)
        self.layer4 = _block(144, 48)
        self.layer5 = _block(192, 192)
        self.layer6 = _block(192, 128)
        self.layer7 = _block(128, 64)
        self.layer8 = _block(64, 1)

    def forward(self, mri: torch.Tensor, pet: torch.Tensor) -> torch.Tensor:
        x1 = self.layer1(torch.cat((mri, pet), dim=1))
        x2 = self.layer2(x1)
        x3 = self.layer3(torch.cat((x1, x2), dim=1))
        x4 = self.layer4(torch.cat((x1, x2, x3), dim=1))
        decoded = self.layer8(self.layer7(self.layer6(self.layer5(torch.cat((x1, x2, x3, x4), dim=1)))))
        return torch.tanh(decoded)
