"""FuseVis' MRML logic: works with the Slicer application and with the PyPI ``slicer`` package (no Qt).

``FuseVisLogic`` (see :mod:`.logic`) is what a host uses; the other modules
are its parts: the parameter node, loading, registration, the per-slice
engine, output nodes, colour maps, the crosshair follower and scene files.
"""
from .logic import FuseVisLogic, PixelReadout, StepReport
from .network_cache import NetworkCache
from .parameters import FuseVisParameters, parameter_node

__all__ = ["FuseVisLogic", "FuseVisParameters", "NetworkCache", "PixelReadout", "StepReport", "parameter_node"]
