"""What an analysis run is asked to do, shared by every case of the run."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import FuseVisError
from ..saliency.rendering import check_gamma
from ..saliency.scatter import DEFAULT_NEIGHBOURHOOD

# The paper's figures: gamma1 = 0.3 for Jacobian images (Figure 7), gamma2 = 0.5 for guidance images (Figure 5).
PAPER_GAMMA_JACOBIAN = 0.3
PAPER_GAMMA_GUIDANCE = 0.5


@dataclass(frozen=True)
class RequestedPixel:
    """A ``--pixel ROW,COL[,SLICE]``; ``slice`` is None when not given (2-D images)."""

    row: int
    col: int
    slice: int | None = None


@dataclass(frozen=True)
class AnalysisSettings:
    """``pixels``: principal pixels (empty: found automatically); ``slices``: (first, last) axial slices of
    volumes to analyse, inclusive (None: the slices holding the pixels); ``neighbourhood``: half-width in
    pixels of the zoomed region, the scatterplot's green points and the Jacobian mass measures; ``views``: also
    write the saliency engine's neighbourhood view per method and pixel (a second or two each)."""

    pixels: tuple[RequestedPixel, ...] = ()
    slices: tuple[int, int] | None = None
    register: bool = False
    gamma_jacobian: float = PAPER_GAMMA_JACOBIAN
    gamma_guidance: float = PAPER_GAMMA_GUIDANCE
    neighbourhood: int = DEFAULT_NEIGHBOURHOOD
    views: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        check_gamma(self.gamma_jacobian)
        check_gamma(self.gamma_guidance)
        if isinstance(self.neighbourhood, bool) or not isinstance(self.neighbourhood, int) or self.neighbourhood < 1:
            raise FuseVisError(f"the neighbourhood half-width must be a positive number of pixels, got {self.neighbourhood!r}")
        if self.slices is not None and not 0 <= self.slices[0] <= self.slices[1]:
            raise FuseVisError(f"--slices {self.slices[0]}..{self.slices[1]} must satisfy 0 <= K <= L")
        slice_given = {pixel.slice is not None for pixel in self.pixels}
        if len(slice_given) > 1:
            raise FuseVisError("give every --pixel as ROW,COL (2-D images) or every one as ROW,COL,SLICE (volumes), not a mix")

    def record(self) -> dict:
        """JSON-ready, for summary.json and the completion marker."""
        return {
            "pixels": [[p.row, p.col] + ([] if p.slice is None else [p.slice]) for p in self.pixels],
            "slices": list(self.slices) if self.slices else None,
            "register": self.register,
            "gamma_jacobian": self.gamma_jacobian,
            "gamma_guidance": self.gamma_guidance,
            "neighbourhood": self.neighbourhood,
            "views": self.views,
        }
