"""The fast saliency paths equal the per-pixel autograd method (the paper's) for all five methods."""
from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch

from FuseVisLib.saliency import SaliencySession, guidance_images, jacobian_images
from FuseVisLib.saliency.benchmark import benchmark_model
from FuseVisLib.saliency.inputs import prepare_images
from FuseVisLib.saliency.naive import per_pixel_gradients

PAPER_METHODS = ["WeightedAveraging", "FunFuseAn", "MaskNet", "DeepFuse", "DeepPedestrian"]
HEIGHT, WIDTH = 24, 30  # small: the per-pixel reference is slow
TOLERANCE = 1e-6
# Relative to the largest gradient: untrained networks have small gradients, so the absolute bound alone is lax.
RELATIVE_TOLERANCE = 1e-5


@functools.lru_cache(maxsize=None)
def _network(name: str) -> torch.nn.Module:
    """The method with trained weights if present, else its untrained network with fixed random weights.

    Cached, so that each model's radius probe runs once for the whole module.
    """
    torch.manual_seed(7)
    model, _ = benchmark_model(name, "cpu")
    return model


def _pixels(height: int, width: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    corners = [(0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1)]
    edges = [(0, width // 3), (height // 2, 0), (height - 1, 2 * width // 3), (height // 3, width - 1), (1, 1), (height - 2, width - 2)]
    interior = [(int(rng.integers(2, height - 2)), int(rng.integers(2, width - 2))) for _ in range(4)]
    return corners + edges + interior


def _real_crop(real_pairs) -> tuple[np.ndarray, np.ndarray]:
    pair = real_pairs[len(real_pairs) // 2]
    top, left = 40, 100  # brain tissue and black background both inside the crop
    return pair.mri[top : top + HEIGHT, left : left + WIDTH], pair.pet[top : top + HEIGHT, left : left + WIDTH]


def _check_against_per_pixel(name: str, mri: np.ndarray, pet: np.ndarray, rng: np.random.Generator) -> None:
    model = _network(name)
    guidance = guidance_images(model, mri, pet)
    assert guidance.path == ("lattice" if name == "WeightedAveraging" else "cone"), guidance.reason
    assert guidance[0].shape == guidance[1].shape == (HEIGHT, WIDTH)
    assert guidance[0].dtype == np.float32
    session = SaliencySession(model, mri, pet)
    assert session.path == (guidance.path if guidance.path == "cone" else "crop", guidance.path)
    pixels = _pixels(HEIGHT, WIDTH, rng)
    images = prepare_images(model, mri, pet)
    scale = max(float(np.abs(g).max()) for g in guidance)
    assert scale > 0
    for (row, col), exact in zip(pixels, per_pixel_gradients(model, images, pixels)):
        ours = jacobian_images(model, mri, pet, row, col)
        cached = session.jacobian(row, col)
        for modality in range(2):
            exact_image = exact[modality].numpy()
            for result in (ours, cached):
                error = np.abs(result[modality] - exact_image).max()
                assert error <= TOLERANCE and error <= RELATIVE_TOLERANCE * scale, (name, row, col, modality, error)
            guidance_error = abs(float(guidance[modality][row, col]) - float(exact_image[row, col]))
            assert guidance_error <= TOLERANCE and guidance_error <= RELATIVE_TOLERANCE * scale, (name, row, col, modality)


@pytest.mark.parametrize("name", PAPER_METHODS)
def test_fast_paths_equal_per_pixel_method_on_random_images(name, rng):
    mri = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    pet = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    _check_against_per_pixel(name, mri, pet, rng)


@pytest.mark.parametrize("name", PAPER_METHODS)
def test_fast_paths_equal_per_pixel_method_on_a_real_slice(name, real_pairs, rng):
    mri, pet = _real_crop(real_pairs)
    assert (mri == 0).any() and (mri > 0.3).any(), "the crop should hold both background and tissue"
    _check_against_per_pixel(name, mri, pet, rng)


def test_jacobian_vanishes_beyond_the_receptive_radius(rng):
    model = _network("DeepFuse")
    mri = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    pet = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    row, col = 20, 24
    j_mri, j_pet = jacobian_images(model, mri, pet, row, col)
    rows, cols = np.nonzero(np.abs(j_mri) + np.abs(j_pet))
    reach = np.maximum(np.abs(rows - row), np.abs(cols - col)).max()
    assert reach == 12  # DeepFuse's receptive radius: reached, never exceeded


def test_tensor_inputs_give_the_same_images_as_arrays(rng):
    model = _network("FunFuseAn")
    mri = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    pet = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    from_arrays = jacobian_images(model, mri, pet, 3, 5)
    from_tensors = jacobian_images(model, torch.from_numpy(mri)[None, None], torch.from_numpy(pet)[None, None], 3, 5)
    for modality in range(2):
        np.testing.assert_array_equal(from_arrays[modality], from_tensors[modality])


def test_jacobians_run_on_one_thread_and_restore_the_thread_count(rng):
    from FuseVisLib.saliency.model_mode import evaluation_mode
    from FuseVisLib.saliency.plan import plan_for

    model = _network("FunFuseAn")
    mri = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    pet = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    session = SaliencySession(model, mri, pet)
    with evaluation_mode(model):
        plan_for(model).box_passes()._prepared.clear()  # interpreted again: the pointwise steps call their modules
    seen = []
    # The pointwise steps call the network's own activation modules, so a hook sees the threads in use.
    hook = model.mri_lf[2].register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        jacobian_images(model, mri, pet, 5, 7)
        assert torch.get_num_threads() == 2
        session.jacobian(5, 7)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
        hook.remove()
    assert seen and set(seen) == {1}


def test_a_large_jacobian_runs_on_the_callers_threads(rng):
    from FuseVisLib.saliency.model_mode import evaluation_mode
    from FuseVisLib.saliency.plan import plan_for

    model, _ = benchmark_model("DeepPedestrian", "cpu")  # fresh: no traces yet; 114 M multiply-adds, worth two threads
    with evaluation_mode(model):
        plan_for(model).box_passes()._prepared.clear()  # after the radius probe's own Jacobians
    mri = rng.random((40, 40), dtype=np.float32)
    pet = rng.random((40, 40), dtype=np.float32)
    seen = []
    hook = model.conv5[0].register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        jacobian_images(model, mri, pet, 20, 20)  # first pixel of its border situation: interpreted, calls the modules
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
        hook.remove()
    assert seen == [2]


@pytest.mark.parametrize("name", PAPER_METHODS[1:])
def test_replayed_jacobians_equal_interpreted_ones_to_the_bit(name, rng):
    """The first pixel of a border situation runs op by op, the second is traced, later ones replay the trace."""
    model = _network(name)
    mri = rng.random((40, 44), dtype=np.float32)
    pet = rng.random((40, 44), dtype=np.float32)
    session = SaliencySession(model, mri, pet)  # the reverse pass alone, replayed the same way
    for jacobian in (lambda pixel: jacobian_images(model, mri, pet, *pixel), lambda pixel: session.jacobian(*pixel)):
        for pixel in [(20, 22), (3, 5), (39, 0)]:
            first = jacobian(pixel)
            for _ in range(3):
                again = jacobian(pixel)
                for modality in range(2):
                    np.testing.assert_array_equal(again[modality], first[modality])


def test_border_pixels_share_one_masked_trace_and_stay_exact(rng):
    """Standalone Jacobians at different distances to the border run the interior's rectangles masked to the image."""
    from FuseVisLib.saliency.box_passes import MASKED
    from FuseVisLib.saliency.model_mode import evaluation_mode
    from FuseVisLib.saliency.plan import plan_for

    model, _ = benchmark_model("DeepFuse", "cpu")  # fresh: no traces yet
    with evaluation_mode(model):
        passes = plan_for(model).box_passes()
    passes._prepared.clear()
    traces_before = passes._traces
    mri = rng.random((40, 44), dtype=np.float32)
    pet = rng.random((40, 44), dtype=np.float32)
    pixels = [(0, 0), (1, 43), (39, 2), (5, 20), (20, 40), (12, 3), (39, 43)]  # seven distances to the border
    _jacobians_equal_per_pixel(model, mri, pet, pixels)
    assert set(passes._prepared) == {MASKED}
    assert passes._traces == traces_before + 1  # traced at the second border pixel, replayed from the third on


class ConvChainWithElu(torch.nn.Module):
    """ELU has no closed-form pullback here: its derivative comes from autograd, so the passes are never traced."""

    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.second = torch.nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, mri, pet):
        return self.second(torch.nn.functional.elu(self.first(torch.cat((mri, pet), dim=1))))


def _jacobians_equal_per_pixel(model, mri, pet, pixels) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Asserts ours (cone path) equal autograd's per pixel; returns autograd's Jacobian images."""
    exact_images = list(per_pixel_gradients(model, prepare_images(model, mri, pet), pixels))
    for (row, col), exact in zip(pixels, exact_images):
        ours = jacobian_images(model, mri, pet, row, col)
        assert ours.path == "cone"
        for modality in range(2):
            np.testing.assert_allclose(ours[modality], exact[modality].numpy(), rtol=0, atol=1e-6)
    return exact_images


def test_a_network_the_tracer_cannot_replay_stays_exact(rng):
    from FuseVisLib.saliency.model_mode import evaluation_mode
    from FuseVisLib.saliency.plan import plan_for

    torch.manual_seed(5)
    model = ConvChainWithElu().eval()
    _jacobians_equal_per_pixel(model, rng.random((HEIGHT, WIDTH), dtype=np.float32), rng.random((HEIGHT, WIDTH), dtype=np.float32), [(10, 10)] * 3 + [(0, 0)])
    with evaluation_mode(model):
        assert not plan_for(model).box_passes().traceable


def test_session_guidance_equals_guidance_images(rng):
    model = _network("FunFuseAn")
    mri = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    pet = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    session = SaliencySession(model, mri, pet)
    with torch.no_grad():
        fused = model(torch.from_numpy(mri)[None, None], torch.from_numpy(pet)[None, None])[0, 0].numpy()
    np.testing.assert_array_equal(session.fused, fused)
    for ours, reference in zip(session.guidance(), guidance_images(model, mri, pet)):
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-8)


class ConvChainWithSkip(torch.nn.Module):
    """Convolutions feeding convolutions and a skip connection with no nonlinearity between them."""

    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.second = torch.nn.Conv2d(4, 4, 5, padding=2)
        self.third = torch.nn.Conv2d(4, 1, (3, 5), padding=(1, 2))

    def forward(self, mri, pet):
        features = self.first(torch.cat((mri, pet), dim=1))
        return torch.tanh(self.third(self.second(features) - 0.5 * features)) * 2.0 + mri


def test_convolutions_without_nonlinearities_between_them_are_exact_at_the_border(rng):
    torch.manual_seed(3)
    model = ConvChainWithSkip().eval()
    mri = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    pet = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    guidance = guidance_images(model, mri, pet)
    assert guidance.path == "cone" and guidance.radius == 5  # traced: (1+2+1) rows, (1+2+2) columns
    pixels = _pixels(HEIGHT, WIDTH, rng)
    for (row, col), exact in zip(pixels, _jacobians_equal_per_pixel(model, mri, pet, pixels)):
        for modality in range(2):
            assert abs(guidance[modality][row, col] - float(exact[modality][row, col])) <= 1e-6


def test_model_is_left_as_it_was(rng):
    from FuseVisLib.networks import MaskNet

    model = MaskNet().train()
    for module in model.modules():  # running statistics unlike a batch's: training mode would show
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    in_eval_mode = copy.deepcopy(model).eval()
    mri = rng.random((16, 16), dtype=np.float32)
    pet = rng.random((16, 16), dtype=np.float32)
    expected = jacobian_images(in_eval_mode, mri, pet, 8, 8)
    for _ in range(4):  # interpreted, traced, then replayed without entering eval mode
        jacobians = jacobian_images(model, mri, pet, 8, 8)
        for modality in range(2):
            np.testing.assert_array_equal(jacobians[modality], expected[modality])
    assert model.training
    assert all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_cpu(rng):
    mri = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    pet = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    cpu = _network("FunFuseAn")
    gpu = _network("FunFuseAn").cuda()
    for a, b in zip(guidance_images(cpu, mri, pet), guidance_images(gpu, mri, pet)):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(
    "module",
    [torch.nn.ReLU(), torch.nn.LeakyReLU(0.2), torch.nn.Tanh(), torch.nn.Sigmoid(), torch.nn.Identity(), torch.nn.ELU()],
    ids=lambda m: type(m).__name__,
)
def test_pointwise_derivatives_follow_autograd_at_kinks(module):
    from FuseVisLib.saliency.linearisation import pointwise_with_derivative
    from FuseVisLib.saliency.local_graph import _module_step

    step = _module_step(module, 0)
    x = torch.tensor([[[[-1.5, -0.0, 0.0, 1e-30, -1e-30, 0.7]]]])
    _, ours = pointwise_with_derivative(step, x)
    leaf = x.clone().requires_grad_()
    (expected,) = torch.autograd.grad(module(leaf), leaf, torch.ones_like(x))
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    if step.backward is not None:  # the Jacobian's pullback: autograd's own kernel, so the same bits
        cotangent = torch.tensor([[[[0.3, -2.0, 1.7, 5.0, -0.1, 1e-3]]]])
        (expected,) = torch.autograd.grad(module(leaf), leaf, cotangent)
        saved = x if step.backward.saves_input else module(x)
        torch.testing.assert_close(step.backward.vjp(cotangent, saved), expected, rtol=0, atol=0)
