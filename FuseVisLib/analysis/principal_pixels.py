"""Which slices and principal pixels a case analyses: the requested ones, or those found automatically.

For a volume the analysed slab (where guidance images are computed) is
``--slices K..L`` when given, else the slices that hold the pixels: guidance
costs seconds to minutes per slice and network on a CPU, fusion of every
slice only a fraction of that.
"""
from __future__ import annotations

from ..errors import FuseVisError
from ..saliency.inputs import check_pixel
from .case_inputs import LoadedCase
from .pixels_of_interest import REQUESTED, PixelOfInterest, find_pixels_of_interest
from .settings import AnalysisSettings


def choose_slab_and_pixels(loaded: LoadedCase, settings: AnalysisSettings) -> tuple[range, list[PixelOfInterest]]:
    """(analysed slice indices, principal pixels); FuseVisError when a request does not fit the case."""
    count, height, width = loaded.mri.shape
    if not loaded.is_volume:
        if settings.slices is not None:
            loaded.notes.append("--slices ignored: the case is a 2-D image")
        pixels = []
        for pixel in settings.pixels:
            if pixel.slice not in (None, 0):
                raise FuseVisError(f"--pixel {pixel.row},{pixel.col},{pixel.slice} names a slice but the case is a 2-D image; give ROW,COL")
            pixels.append(_requested(pixel.row, pixel.col, 0, height, width))
        return range(1), list(dict.fromkeys(pixels)) or find_pixels_of_interest(loaded.mri, loaded.pet, [0])
    slab = None
    if settings.slices is not None:
        first, last = settings.slices
        if last >= count:
            raise FuseVisError(f"--slices {first}..{last} reaches past the volume's {count} axial slices (0..{count - 1})")
        slab = range(first, last + 1)
    pixels = []
    for pixel in settings.pixels:
        if pixel.slice is None:
            raise FuseVisError(f"--pixel {pixel.row},{pixel.col} needs a slice for a volume; give ROW,COL,SLICE")
        if not 0 <= pixel.slice < count or (slab is not None and pixel.slice not in slab):
            allowed = f"{slab.start}..{slab.stop - 1}" if slab is not None else f"0..{count - 1}"
            raise FuseVisError(f"--pixel {pixel.row},{pixel.col},{pixel.slice}: slice {pixel.slice} is outside {allowed}")
        pixels.append(_requested(pixel.row, pixel.col, pixel.slice, height, width))
    pixels = list(dict.fromkeys(pixels))  # a pixel given twice is analysed once
    if not pixels:
        pixels = find_pixels_of_interest(loaded.mri, loaded.pet, slab if slab is not None else range(count))
    if slab is None:
        slab = range(min(p.slice for p in pixels), max(p.slice for p in pixels) + 1)
    return slab, pixels


def _requested(row: int, col: int, slice_index: int, height: int, width: int) -> PixelOfInterest:
    row, col = check_pixel(row, col, height, width)
    return PixelOfInterest(row, col, slice_index, REQUESTED, "requested")
