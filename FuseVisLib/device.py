"""Device choice: CUDA where present, else CPU; never assumed."""
import torch

from .errors import FuseVisError


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise FuseVisError(f"device {device!r} is not a device name ({error}); use cpu, cuda, cuda:N or auto") from None
    if chosen.type not in ("cpu", "cuda"):
        raise FuseVisError(f"device {device!r} is not one FuseVis runs on; use cpu, cuda, cuda:N or auto")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise FuseVisError(f"device {device!r} was asked for but CUDA is not available here; use --device cpu or auto")
    return chosen
