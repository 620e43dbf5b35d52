"""Weighted averaging (equation 3): values, the zero case and both derivatives."""
import torch

from FuseVisLib.networks import WeightedAveraging


def _inputs():
    mri = torch.tensor([[0.2, 0.0, 0.7, 1.0]], dtype=torch.float64).reshape(1, 1, 1, 4)
    pet = torch.tensor([[0.6, 0.0, 0.1, 0.0]], dtype=torch.float64).reshape(1, 1, 1, 4)
    return mri.requires_grad_(), pet.requires_grad_()


def test_values_follow_equation_3_and_zero_where_both_inputs_are_zero():
    mri, pet = _inputs()
    fused = WeightedAveraging()(mri, pet).detach()
    expected = torch.tensor([(0.04 + 0.36) / 0.8, 0.0, (0.49 + 0.01) / 0.8, 1.0], dtype=torch.float64)
    assert torch.allclose(fused.flatten(), expected)


def test_true_derivative_matches_closed_form():
    mri, pet = _inputs()
    WeightedAveraging()(mri, pet).sum().backward()
    x1, x2 = mri.detach().flatten(), pet.detach().flatten()
    total = x1 + x2
    safe = torch.where(total == 0, torch.ones_like(total), total)
    closed_mri = torch.where(total == 0, torch.full_like(total, 0.5), (x1**2 + 2 * x1 * x2 - x2**2) / safe**2)
    closed_pet = torch.where(total == 0, torch.full_like(total, 0.5), (x2**2 + 2 * x1 * x2 - x1**2) / safe**2)
    assert torch.allclose(mri.grad.flatten(), closed_mri)
    assert torch.allclose(pet.grad.flatten(), closed_pet)


def test_constant_weight_variant_gives_the_weights_as_gradient():
    mri, pet = _inputs()
    WeightedAveraging(constant_weights=True)(mri, pet).sum().backward()
    x1, x2 = mri.detach().flatten(), pet.detach().flatten()
    total = x1 + x2
    weight_mri = torch.where(total == 0, torch.full_like(total, 0.5), x1 / torch.where(total == 0, 1.0, total))
    assert torch.allclose(mri.grad.flatten(), weight_mri)
    assert torch.allclose(pet.grad.flatten(), 1 - weight_mri)
