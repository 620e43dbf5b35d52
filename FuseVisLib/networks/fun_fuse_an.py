"""FunFuseAn: separate low- and high-frequency branches per modality."""
import torch
from torch import nn

from .layers import conv_bn_act, conv_same


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2)


class FunFuseAn(nn.Module):
    # Per input: the MRI path is 9 px deep, the PET path 11 px (5x5 convs).
    receptive_radius = {"mri": 9, "pet": 11}

    def __init__(self) -> None:
        super().__init__()
        self.mri_lf = nn.Sequential(*conv_bn_act(1, 16, 9, _lrelu()))
        self.mri_hf = nn.Sequential(
            *conv_bn_act(1, 16, 3, _lrelu()),
            *conv_bn_act(16, 32, 3, _lrelu()),
            *conv_bn_act(32, 64, 3, _lrelu()),
        )
        self.pet_lf = nn.Sequential(*conv_bn_act(1, 16, 7, _lrelu()))
        self.pet_hf = nn.Sequential(
            *conv_bn_act(1, 16, 5, _lrelu()),
            *conv_bn_act(16, 32, 5, _lrelu()),
            *conv_bn_act(32, 64, 3, _lrelu()),
        )
        self.recon1 = nn.Sequential(*conv_bn_act(64, 32, 5, _lrelu()), *conv_bn_act(32, 16, 5, _lrelu()))
        self.recon2 = nn.Sequential(conv_same(16, 1, 5), nn.Tanh())

    def forward(self, mri: torch.Tensor, pet: torch.Tensor) -> torch.Tensor:
        high = self.mri_hf(mri) + self.pet_hf(pet)
        low = (self.mri_lf(mri) + self.pet_lf(pet) + self.recon1(high)) / 3
        return self.recon2(low)
