"""FuseVis in the browser: real Slicer slice views (trame-slicer) driven by the FuseVis MRML logic.

``fusevis serve`` starts it (see :mod:`.launch`); :class:`FuseVisViewerApp`
is the app, :mod:`.host_loop` how it drives the Logic without blocking the
server. Needs ``slicer`` (slicer-core) and trame, unlike ``FuseVisLib``.
"""
from .app import FuseVisViewerApp, PairRequest
from .launch import serve

__all__ = ["FuseVisViewerApp", "PairRequest", "serve"]
