"""The measurements behind ``fusevis bench``: our paths against the paper's per-pixel method, on one slice pair.

Jacobian timings, in pairs that do the same work:

- ``jacobian_ms_median``: :func:`jacobian_images` on its own (forward and
  reverse pass over the pixel's rectangles), against
  ``jacobian_full_ms_median``: a whole-image forward and backward pass;
- ``jacobian_session_ms_median``: :meth:`SaliencySession.jacobian` with the
  whole-image forward pass done once (the reverse pass only: what the viewer
  pays on every mouse move), against
  ``jacobian_retained_backward_ms_median``: one whole-image backward pass
  with the forward pass retained, which is what the original FuseVis tool
  ran on every mouse move (``torch.autograd.grad(..., retain_graph=True)``).

Exactness: ``max_abs_error`` compares ours with the per-pixel float32
method; ``max_abs_error_float64`` compares both with the same network in
float64 on a few of those pixels, which shows how much of the difference
is the float32 reference's own rounding.
"""
from __future__ import annotations

import copy
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import FuseVisError
from .guidance import guidance_images
from .inputs import ImagePair, prepare_images
from .jacobian import jacobian_images
from .model_mode import evaluation_mode, fused_output
from .naive import per_pixel_gradients, whole_image_jacobian
from .plan import plan_for
from .session import SaliencySession


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape == (size, size):
        return image
    resized = np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))
    return np.clip(resized, 0.0, 1.0).astype(np.float32)


def load_slice_pair(data: Path | None, size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The middle slice pair of a folder of MRI/ and PET/ images, else the built-in demo slice; size x size."""
    if data is not None:
        from .slice_files import read_slice

        names = sorted(p.name for p in (data / "MRI").iterdir() if not p.name.startswith(".")) if (data / "MRI").is_dir() else []
        if not names or not (data / "PET" / names[len(names) // 2]).is_file():
            raise FuseVisError(f"{data} must hold MRI/ and PET/ folders with images of matching names")
        name = names[len(names) // 2]
        mri, pet = read_slice(data / "MRI" / name, "MRI"), read_slice(data / "PET" / name, "PET")
        return _resized(mri, size), _resized(pet, size), f"{data.name}/{Path(name).stem}"
    from ..demo_data import demo_slice_pair

    mri, pet = demo_slice_pair(size)
    return mri.astype(np.float32), pet.astype(np.float32), "demo"


def benchmark_model(name: str, device: str | None) -> tuple[nn.Module, str]:
    """The trained method if its weights exist, else the untrained network in eval mode."""
    from ..registry import get_method, load_method

    method = get_method(name)
    if method.weights_file is None:
        return load_method(name, device), "none needed"
    try:
        return load_method(name, device), "trained"
    except FuseVisError:
        from ..device import pick_device

        module = method.build()
        module.fusevis_method = method.name
        module.receptive_radius = method.receptive_radius
        return module.to(pick_device(device)).eval(), "untrained"


def machine_speed() -> dict:
    """A fixed convolution (48 -> 48 channels, 3x3, 31x31 outputs; median of 50) on one thread and on
    the process's threads, and how fast those threads fill a 16 MB buffer, to tell a slow or shared
    machine from a slow method: on a shared virtual machine the same code ran up to twice as fast in
    one half hour as in the next. The convolution fits a core's own caches; the Jacobian's hundreds of
    small operations follow the shared cache and memory more closely (FunFuseAn's 50-pixel median
    took 2.4-2.5 ms while filling ran at 66-70 GB/s and 3.1-4.9 ms at 37-43 GB/s, ten samples over
    two minutes with the convolution's figure not telling them apart)."""
    from .threads import caller_threads, jacobian_threads

    generator = torch.Generator().manual_seed(0)
    image, kernel = torch.randn(1, 48, 33, 33, generator=generator), torch.randn(48, 48, 3, 3, generator=generator)
    multiply_adds = 31 * 31 * kernel.numel()

    def gflops() -> float:
        seconds = []
        for _ in range(55):
            started = time.perf_counter()
            torch.nn.functional.conv2d(image, kernel)
            seconds.append(time.perf_counter() - started)
        return round(2 * multiply_adds / statistics.median(seconds[5:]) / 1e9, 1)

    def fill_gb_per_s() -> float:
        buffer = torch.empty(FILL_BYTES // 4)
        seconds = []
        for _ in range(22):
            started = time.perf_counter()
            buffer.fill_(1.0)
            seconds.append(time.perf_counter() - started)
        return round(FILL_BYTES / statistics.median(seconds[2:]) / 1e9, 1)

    threads = torch.get_num_threads()
    with jacobian_threads(), torch.no_grad():
        one = gflops()
        with caller_threads():
            all_threads = gflops()
            fill = fill_gb_per_s()
    return {"gflops": one, f"gflops_{threads}_threads": all_threads, "fill_gb_per_s": fill}


FILL_BYTES = 16 * 2**20


def reference_pixels(height: int, width: int, count: int, seed: int = 0) -> list[tuple[int, int]]:
    """Corners and edge midpoints first, then random pixels."""
    fixed = [(0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1), (0, width // 2), (height // 2, 0), (height - 1, width // 2), (height // 2, width - 1)]
    rng = np.random.default_rng(seed)
    chosen = list(dict.fromkeys(fixed))[:count]
    while len(chosen) < count:
        chosen.append((int(rng.integers(height)), int(rng.integers(width))))
    return chosen


FLOAT64_PIXELS = 3  # the float64 network is slow (MaskNet: seconds per pass)


def float64_errors(model: nn.Module, images, jacobians: dict[tuple[int, int], tuple]) -> dict[str, float]:
    """Largest distance of our Jacobian images and of autograd's float32 ones from the float64 network's.

    ``jacobians``: pixel -> (ours, autograd's float32), both already computed by the bench.
    """
    exact_model = copy.deepcopy(model).double()
    exact_images = ImagePair(images.mri.double(), images.pet.double())
    pixels = list(jacobians)
    ours_error = autograd_error = 0.0
    with evaluation_mode(exact_model):
        for pixel, exact in zip(pixels, per_pixel_gradients(exact_model, exact_images, pixels)):
            ours, autograd = jacobians[pixel]
            for modality in range(2):
                truth = exact[modality].cpu().numpy()
                ours_error = max(ours_error, float(np.abs(ours[modality] - truth).max()))
                autograd_error = max(autograd_error, float(np.abs(autograd[modality].cpu().numpy() - truth).max()))
    return {"ours": ours_error, "autograd_float32": autograd_error}


def _ms(seconds: list[float]) -> float:
    return round(statistics.median(seconds) * 1e3, 3)


def bench_method(name: str, mri: np.ndarray, pet: np.ndarray, device, jacobian_count: int, reference_count: int, full_count: int) -> dict:
    """Every figure of one method from one run (see ``fusevis bench``)."""
    speed = machine_speed()
    model, weights = benchmark_model(name, device)
    images = prepare_images(model, mri, pet)
    height, width = images.height, images.width
    started = time.perf_counter()
    with evaluation_mode(model):
        plan = plan_for(model)
    plan_seconds = time.perf_counter() - started

    pixels = reference_pixels(height, width, jacobian_count, seed=1)
    jacobian_images(model, images.mri, images.pet, *pixels[-1])  # warm-up
    ours_ms = []
    for row, col in pixels:
        started = time.perf_counter()
        jacobian_images(model, images.mri, images.pet, row, col)
        ours_ms.append(time.perf_counter() - started)
    # The viewer's cost on every mouse move: the session has done the whole-image forward pass once.
    session = SaliencySession(model, images.mri, images.pet)
    session.jacobian(*pixels[-1])
    session_ms = []
    for row, col in pixels:
        started = time.perf_counter()
        session.jacobian(row, col)
        session_ms.append(time.perf_counter() - started)

    references = reference_pixels(height, width, reference_count, seed=2)
    full_ms = []
    with evaluation_mode(model):
        for row, col in references[:full_count]:
            started = time.perf_counter()
            whole_image_jacobian(model, images, row, col)
            full_ms.append(time.perf_counter() - started)
        with torch.enable_grad():
            started = time.perf_counter()
            fused_output(model, images.mri.clone().requires_grad_(), images.pet.clone().requires_grad_())
            forward_seconds = time.perf_counter() - started

    started = time.perf_counter()
    guidance = guidance_images(model, images.mri, images.pet)
    guidance_seconds = time.perf_counter() - started

    jacobian_error = guidance_error = 0.0
    backward_seconds = []
    float64_pixels = set(references[::4][:FLOAT64_PIXELS])  # a corner, an edge, a random pixel
    kept: dict[tuple[int, int], tuple] = {}
    with evaluation_mode(model):
        gradients = per_pixel_gradients(model, images, references)
        started = time.perf_counter()
        for (row, col), exact in zip(references, gradients):
            backward_seconds.append(time.perf_counter() - started)
            ours = jacobian_images(model, images.mri, images.pet, row, col)
            if (row, col) in float64_pixels:
                kept[(row, col)] = (ours, exact)
            for modality in range(2):
                exact_image = exact[modality].cpu().numpy()
                jacobian_error = max(jacobian_error, float(np.abs(ours[modality] - exact_image).max()))
                guidance_error = max(guidance_error, abs(float(guidance[modality][row, col]) - float(exact_image[row, col])))
            started = time.perf_counter()
    # The first interval also holds the shared forward pass; measured apart above.
    backward_seconds[0] = max(0.0, backward_seconds[0] - forward_seconds)
    lone_backward = statistics.median(backward_seconds)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the float64 network's own memory
    float64 = float64_errors(model, images, kept)
    naive_estimate = forward_seconds + lone_backward * height * width
    probes = plan.probes
    return {
        "weights": weights,
        "paths": {"jacobian": plan.jacobian_path, "guidance": plan.guidance_path},
        "radius": plan.radius,
        "probes": probes,
        "jacobian_ms_median": _ms(ours_ms),
        "jacobian_session_ms_median": _ms(session_ms),
        "jacobian_full_ms_median": _ms(full_ms),
        "jacobian_retained_backward_ms_median": _ms(backward_seconds),
        "guidance_s": round(guidance_seconds, 3),
        "lone_backward_s": round(lone_backward, 4),
        "naive_guidance_s_estimate": round(naive_estimate, 1),
        "guidance_speedup": round(naive_estimate / guidance_seconds, 1),
        "guidance_probe_cost": None if probes is None else round(guidance_seconds / probes / lone_backward, 3),
        "max_abs_error": {"jacobian": jacobian_error, "guidance": guidance_error},
        "max_abs_error_float64": float64,
        "max_abs_guidance": max(float(np.abs(g).max()) for g in guidance),
        "plan_s": round(plan_seconds, 3),
        "sampled_pixels": {"jacobian": len(pixels), "reference": len(references)},
        "peak_rss_mb": round(peak_rss_mb, 1),
        "machine_speed": speed,
    }


def bench_from_stdin() -> None:
    """Entry point of the per-method process of ``fusevis bench``: a JSON request in, the figures as JSON out."""
    import json
    import sys

    request = json.loads(sys.stdin.read())
    if request.get("threads"):
        torch.set_num_threads(request["threads"])
    mri, pet = np.load(request["mri"], allow_pickle=False), np.load(request["pet"], allow_pickle=False)
    figures = bench_method(
        request["method"], mri, pet, request["device"], request["jacobian_pixels"], request["reference_pixels"], request["full_jacobian_pixels"]
    )
    json.dump(figures, sys.stdout)
