"""FuseVis core: fusion networks, training and the saliency engine, without Slicer.

Quick use::

    import FuseVisLib
    model = FuseVisLib.load_method("FunFuseAn")          # eval mode, trained weights, CUDA if present
    fused = model(mri, pet)                              # [B,1,H,W] tensors in [0, 1]

Your own network joins every feature with
``FuseVisLib.register_method("MyNet", MyNet, receptive_radius=7, weights_file="my.safetensors")``.
"""
from .device import pick_device
from .errors import FuseVisError
from .registry import FusionMethod, get_method, load_method, method_names, register_method

__all__ = [
    "FuseVisError",
    "FusionMethod",
    "get_method",
    "load_method",
    "method_names",
    "pick_device",
    "register_method",
]

from .imported_methods import register_imported_methods
register_imported_methods()
