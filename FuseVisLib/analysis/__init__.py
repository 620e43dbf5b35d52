"""Headless comparison of fusion methods on MRI/PET cases (issue 6, paper sections 5-6); ``fusevis analyze``.

Quick use::

    from pathlib import Path
    from FuseVisLib.analysis import AnalysisSettings, discover_cases, run_analysis, select_methods

    selection = select_methods(["all"])                 # methods without trained weights are skipped, with the reason
    run = run_analysis(discover_cases("cases/"), selection, AnalysisSettings(), Path("analysis/"))

Each case folder then holds fused, guidance and Jacobian images per method,
figure sheets like the paper's Figures 4-8, ``summary.json`` and a
self-contained ``report.html``.
"""
from .cases import CaseInput, discover_cases, single_case
from .method_selection import MethodSelection, select_methods
from .metrics import fusion_quality, jacobian_readout
from .pixels_of_interest import PixelOfInterest, brain_mask, find_pixels_of_interest
from .run_case import analyze_case
from .runner import run_analysis
from .settings import AnalysisSettings, RequestedPixel

__all__ = [
    "AnalysisSettings",
    "CaseInput",
    "MethodSelection",
    "PixelOfInterest",
    "RequestedPixel",
    "analyze_case",
    "brain_mask",
    "discover_cases",
    "find_pixels_of_interest",
    "fusion_quality",
    "jacobian_readout",
    "run_analysis",
    "select_methods",
    "single_case",
]
