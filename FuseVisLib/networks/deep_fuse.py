"""DeepFuse: one encoder with tied weights for both inputs, features summed."""
import torch
from torch import nn

from .layers import conv_bn_act


class ConvBlock(nn.Module):
    """The authors wrap each layer in a module with a ``main`` Sequential."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, activation: nn.Module) -> None:
        super().__init__()
        self.main = nn.Sequential(*conv_bn_act(in_channels, out_channels, kernel_size, activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class DeepFuse(nn.Module):
    receptive_radius = 12

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = ConvBlock(1, 16, 5, nn.LeakyReLU(0.01))
        self.layer2 = ConvBlock(16, 32, 7, nn.ReLU())
        self.layer4 = ConvBlock(32, 32, 7, nn.LeakyReLU(0.01))
        self.layer5 = ConvBlock(32, 16, 5, nn.LeakyReLU(0.01))
        self.layer6 = ConvBlock(16, 1, 5, nn.Tanh())

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return self.layer2(self.layer1(image))

    def forward(self, mri: torch.Tensor, pet: torch.Tensor) -> torch.Tensor:
        fused_features = self.encode(mri) + self.encode(pet)
        return self.layer6(self.layer5(self.layer4(fused_features)))
