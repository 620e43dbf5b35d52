"""The fusion networks match the paper's architectures: parameters, receptive fields, any image size."""
import numpy as np
import pytest
import torch

import FuseVisLib
from FuseVisLib import networks
from FuseVisLib.registry import get_method

PARAMETER_COUNTS = {"FunFuseAn": 122_209, "MaskNet": 754_275, "DeepFuse": 89_155, "DeepPedestrian": 313_105, "WeightedAveraging": 0}
# architectures.md: per input where the branches differ.
RADII = {"FunFuseAn": (9, 11), "MaskNet": (8, 8), "DeepFuse": (12, 12), "DeepPedestrian": (17, 17), "WeightedAveraging": (0, 0)}


@pytest.mark.parametrize("name", list(PARAMETER_COUNTS))
def test_parameter_count(name):
    assert get_method(name).parameter_count() == PARAMETER_COUNTS[name]


def _randomised(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    module = get_method(name).build().double()
    for norm in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        norm.running_mean.uniform_(-0.2, 0.2)
        norm.running_var.uniform_(0.5, 1.5)
    return module.eval()


def _gradient_support(module: torch.nn.Module, size: int = 45) -> tuple[int, int]:
    """Largest Chebyshev distance from the centre output pixel with a non-zero input gradient, per input."""
    generator = torch.Generator().manual_seed(1)
    mri = torch.rand(1, 1, size, size, dtype=torch.float64, generator=generator, requires_grad=True)
    pet = torch.rand(1, 1, size, size, dtype=torch.float64, generator=generator, requires_grad=True)
    centre = size // 2
    module(mri, pet)[0, 0, centre, centre].backward()
    radii = []
    for gradient in (mri.grad[0, 0], pet.grad[0, 0]):
        rows, cols = np.nonzero(gradient.numpy())
        radii.append(int(max(np.abs(rows - centre).max(), np.abs(cols - centre).max())))
    return tuple(radii)


@pytest.mark.parametrize("name", list(RADII))
def test_receptive_radius_per_input(name):
    assert _gradient_support(_randomised(name)) == RADII[name]
    assert get_method(name).receptive_radius == max(RADII[name])


@pytest.mark.parametrize("name", ["FunFuseAn", "MaskNet", "DeepFuse", "DeepPedestrian"])
@pytest.mark.parametrize("shape", [(37, 53), (64, 64)])
def test_any_image_size(name, shape):
    module = get_method(name).build().eval()
    with torch.no_grad():
        fused = module(torch.rand(2, 1, *shape), torch.rand(2, 1, *shape))
    assert fused.shape == (2, 1, *shape)


def test_load_method_returns_eval_module_on_chosen_device():
    module = FuseVisLib.load_method("WeightedAveraging", device="cpu")
    assert not module.training
    assert module.receptive_radius == 0
    assert next(iter(module.buffers()), None) is None or next(module.buffers()).device.type == "cpu"


def test_unknown_method_is_a_clear_error():
    with pytest.raises(FuseVisLib.FuseVisError, match="unknown fusion method 'Nope'.*FunFuseAn"):
        FuseVisLib.load_method("Nope")


def test_registering_a_user_network_makes_it_loadable():
    class Blur(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 1, 3, padding=1)

        def forward(self, mri, pet):
            return self.conv(torch.cat((mri, pet), dim=1))

    FuseVisLib.register_method("TestBlur", Blur, receptive_radius=1, replace=True)
    module = FuseVisLib.load_method("TestBlur")
    assert module.receptive_radius == 1 and module.fusevis_method == "TestBlur"
    assert "TestBlur" in FuseVisLib.method_names()
    with pytest.raises(FuseVisLib.FuseVisError, match="already registered"):
        FuseVisLib.register_method("TestBlur", Blur, receptive_radius=1)
    with pytest.raises(FuseVisLib.FuseVisError, match="receptive_radius"):
        FuseVisLib.register_method("TestBad", Blur, receptive_radius=-1)
