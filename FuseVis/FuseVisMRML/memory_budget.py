"""Will fusing this volume at this batch size fit in memory? Checked before anything is allocated.

Two parts need memory: the whole-volume arrays (inputs, outputs and the
per-method cache, :data:`BYTES_PER_VOXEL`) in main memory, and one batch of
slices going through the network, on the device that runs it. A batch
needs about ``slices x pixels x activations per pixel x 4 bytes``, doubled
for the backward pass the saliency images take. Activations per pixel are
measured once per network by running it on a small probe image and
counting what every layer outputs; tensors made by functional calls
between layers are covered by :data:`INTERMEDIATE_FACTOR`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from FuseVisLib.errors import FuseVisError

# float32 inputs (2 normalised + resampled PET), outputs (fused, 2 guidance, RGB) and their cache copy.
BYTES_PER_VOXEL = 4 * 3 + (4 * 3 + 3) * 2
INTERMEDIATE_FACTOR = 2.0
BACKWARD_FACTOR = 2.0
PROBE_SIDE = 32
GB = 1e9


@dataclass(frozen=True)
class MemoryNeed:
    volume_bytes: float
    batch_bytes: float
    available_main: float | None
    available_device: float | None
    device: torch.device

    def fits(self) -> bool:
        on_device = self.device.type == "cuda"
        main_need = self.volume_bytes + (0.0 if on_device else self.batch_bytes)
        if self.available_main is not None and main_need > self.available_main:
            return False
        return not (on_device and self.available_device is not None and self.batch_bytes > self.available_device)


def activation_floats_per_pixel(model: nn.Module) -> float:
    """Floats every layer of ``model`` outputs per input pixel, measured on a small probe."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    counted = [0]

    def count(_module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            counted[0] += output.numel()

    hooks = [module.register_forward_hook(count) for module in model.modules() if not list(module.children())]
    try:
        probe = torch.zeros(1, 1, PROBE_SIDE, PROBE_SIDE, device=device)
        with torch.no_grad():
            output = model(probe, probe)
    finally:
        for hook in hooks:
            hook.remove()
    # The two inputs and the output are there whatever the layers are.
    floats = counted[0] * INTERMEDIATE_FACTOR + 3 * output.numel()
    return floats / (PROBE_SIDE * PROBE_SIDE)


def available_main_memory() -> float | None:
    """Bytes of main memory free for new allocations (MemAvailable on Linux), or None if unknown."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def memory_need(
    voxels: int,
    slice_pixels: int,
    batch_size: int,
    floats_per_pixel: float,
    device: torch.device,
    limit_gb: float = 0.0,
) -> MemoryNeed:
    """What fusing ``voxels`` voxels in batches of ``batch_size`` slices needs, and what is free."""
    available_main = limit_gb * GB if limit_gb > 0 else available_main_memory()
    available_device = None
    if device.type == "cuda":
        available_device = limit_gb * GB if limit_gb > 0 else float(torch.cuda.mem_get_info(device)[0])
    batch_bytes = batch_size * slice_pixels * floats_per_pixel * 4 * BACKWARD_FACTOR
    return MemoryNeed(float(voxels * BYTES_PER_VOXEL), batch_bytes, available_main, available_device, device)


def check_memory(need: MemoryNeed, shape_ijk: tuple[int, int, int], batch_size: int, method: str) -> None:
    """FuseVisError naming the sizes and what to change when ``need`` does not fit."""
    if need.fits():
        return
    where = "GPU" if need.device.type == "cuda" else "main memory"
    free = need.available_device if need.device.type == "cuda" else need.available_main
    per_slice = need.batch_bytes / batch_size
    room = (free - (0 if need.device.type == "cuda" else need.volume_bytes)) if free is not None else 0
    fitting_batch = int(room // per_slice) if per_slice > 0 else 0
    advice = (
        f"use a batch of at most {fitting_batch} slice{'s' if fitting_batch > 1 else ''}"
        if fitting_batch >= 1
        else "crop or downsample the volumes (Crop Volume module), or use a machine with more memory"
    )
    raise FuseVisError(
        f"the MRI is {'x'.join(map(str, shape_ijk))} voxels: fusing it with {method} in batches of {batch_size} slices needs "
        f"about {(need.volume_bytes + need.batch_bytes) / GB:.2f} GB ({need.volume_bytes / GB:.2f} GB for the volumes, "
        f"{need.batch_bytes / GB:.2f} GB per batch) but only {(free or 0) / GB:.2f} GB of {where} is free; {advice}"
    )
