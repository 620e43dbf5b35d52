"""Building blocks shared by the fusion networks."""
from torch import nn


def conv_same(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    """Stride-1 convolution with zero padding that keeps the image size."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=kernel_size // 2)


def conv_bn_act(in_channels: int, out_channels: int, kernel_size: int, activation: nn.Module) -> list[nn.Module]:
    """Conv -> BatchNorm -> activation, as a flat list so Sequential indices match the originals."""
    return [conv_same(in_channels, out_channels, kernel_size), nn.BatchNorm2d(out_channels), activation]
