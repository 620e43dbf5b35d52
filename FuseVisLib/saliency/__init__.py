"""The saliency engine: exact Jacobian and guidance images of fusion networks (paper 3.2, issue 3).

Quick use::

    from FuseVisLib import load_method
    from FuseVisLib.saliency import jacobian_images, guidance_images, guidance_rgb

    model = load_method("FunFuseAn")
    j_mri, j_pet = jacobian_images(model, mri, pet, row, col)   # HxW float32 each
    g_mri, g_pet = guidance_images(model, mri, pet)
    rgb = guidance_rgb(g_mri, g_pet, fused)                      # HxWx3 in [0, 1]

For hovering over many pixels of one image pair use :class:`SaliencySession`,
which shares one forward pass. Every result says which exact path computed
it (``.path``, ``.reason``); see :mod:`FuseVisLib.saliency.plan`.
"""
from .cancellation import SaliencyCancelled
from .guidance import guidance_images
from .jacobian import jacobian_images
from .rendering import gamma_correct, guidance_rgb, render_neighbourhood_view, render_scatter, signed_rgb
from .result import SaliencyImages
from .scatter import ScatterData, neighbourhood_mask, scatter_data
from .session import SaliencySession

__all__ = [
    "SaliencyCancelled",
    "SaliencyImages",
    "SaliencySession",
    "ScatterData",
    "gamma_correct",
    "guidance_images",
    "guidance_rgb",
    "jacobian_images",
    "neighbourhood_mask",
    "render_neighbourhood_view",
    "render_scatter",
    "scatter_data",
    "signed_rgb",
]
