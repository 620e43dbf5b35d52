"""FuseVis' MRML logic: works with the Slicer application and with the PyPI ``slicer`` package (no Qt).

``FuseVisLogic`` (see :mod:`.logic`) is what a host uses; the other modules
are its parts: the parameter node, loading, registration, the per-slice
engine, output nodes, colour maps, the crosshair follower, scene files, and
preparing a method off the host's thread.
"""
from .logic import FuseVisLogic, PixelReadout, StepReport
from .method_preparation import MethodPreparation
from .network_cache import NetworkCache
from .parameters import FuseVisParameters, parameter_node

__all__ = ["FuseVisLogic", "FuseVisParameters", "MethodPreparation", "NetworkCache", "PixelReadout", "StepReport", "parameter_node"]
