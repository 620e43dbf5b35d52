"""Recover scalar PET activity from a pseudo-colour rendering.

A colour-mapped PET image holds colours that lie on one curve in RGB space
from black to the hottest colour. Luma formulas are not monotonic along
such curves, so instead we recover the curve itself from the colours
present and read each pixel's activity as its position along it.

The curve is ordered by a nearest-neighbour walk from the darkest colour;
colours the walk skipped (they show up as a long jump) are reinserted where
they lengthen the path least. Activity is the colour's rank on the curve
scaled to [0, 1], which is exact for a lookup-table rendering whose
entries all occur in the images the map was fitted on. A resized or
JPEG-compressed rendering blends neighbouring colours into ones off the
map's curve; activity read from those is approximate, and fitting warns.
"""
from __future__ import annotations

from dataclasses import dataclass
import warnings

import numpy as np

from .errors import FuseVisError, FuseVisWarning

# Colour maps have at most this many entries (AANLIB's PET renderings use 128, matplotlib's maps 256);
# more colours than that come from blending, i.e. resizing or lossy compression.
MAX_MAP_COLOURS = 256
# A step longer than this many median steps is treated as a skipped colour.
_JUMP_FACTOR = 3.0
# Float64 elements of one block of colour-to-map differences (16 M: 128 MB).
_DISTANCE_BLOCK_ELEMENTS = 16_000_000


def _path_length_increases(colours: np.ndarray, order: list[int], candidate: int) -> np.ndarray:
    """How much longer the path through ``order`` gets with ``candidate`` inserted at position 1, 2, ...,
    len(order) (the last: appended), all at once: a per-position loop in Python took minutes on the
    thousands of colours of an interpolated rendering."""
    path = colours[order]
    to_candidate = np.linalg.norm(path - colours[candidate], axis=1)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    return np.append(to_candidate[:-1] + to_candidate[1:] - steps, to_candidate[-1])


def _order_along_curve(colours: np.ndarray) -> list[int]:
    start = int(np.argmin(colours.sum(axis=1)))
    order, remaining = [start], set(range(len(colours))) - {start}
    while remaining:
        candidates = np.fromiter(remaining, dtype=int)
        nearest = candidates[np.argmin(np.linalg.norm(colours[candidates] - colours[order[-1]], axis=1))]
        order.append(int(nearest))
        remaining.discard(int(nearest))
    if len(order) < 3:
        return order
    for _ in range(len(order)):
        steps = np.linalg.norm(np.diff(colours[order], axis=0), axis=1)
        jumps = np.flatnonzero(steps > _JUMP_FACTOR * np.median(steps))
        if not len(jumps):
            break
        skipped = order.pop(int(jumps[-1]) + 1)
        best = 1 + int(np.argmin(_path_length_increases(colours, order, skipped)))
        if best == len(order) and jumps[-1] + 1 == len(order):
            order.append(skipped)
            break
        order.insert(best, skipped)
    return order


def _packed(rgb: np.ndarray) -> np.ndarray:
    """One integer per colour: unique() on 1-D integers is far faster than on rows."""
    flat = np.asarray(rgb, dtype=np.uint32).reshape(-1, 3)
    return (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]


def _unpacked(packed: np.ndarray) -> np.ndarray:
    return np.stack(((packed >> 16) & 255, (packed >> 8) & 255, packed & 255), axis=1).astype(np.uint8)


@dataclass(frozen=True)
class PetColormap:
    """Colours of a map in order from no activity to the hottest."""

    colours: np.ndarray  # (N, 3) uint8

    @classmethod
    def fit(cls, rgb_images: list[np.ndarray]) -> "PetColormap":
        unique = _unpacked(np.unique(np.concatenate([np.unique(_packed(img)) for img in rgb_images])))
        if len(unique) < 2:
            raise FuseVisError("the PET rendering has a single colour; there is no colour map to invert")
        if len(unique) > MAX_MAP_COLOURS:
            warnings.warn(
                f"the colour-mapped PET holds {len(unique)} colours, more than a colour map has ({MAX_MAP_COLOURS}): it was "
                "resized or compressed (e.g. JPEG), and activity read from its blended colours is approximate; "
                "use the original rendering, a greyscale PET or the PET volume",
                FuseVisWarning,
                stacklevel=2,
            )
        order = _order_along_curve(unique.astype(np.float64))
        return cls(colours=unique[order])

    def activity(self, rgb_image: np.ndarray) -> np.ndarray:
        """Scalar activity in [0, 1] per pixel (nearest colour on the map)."""
        rgb = np.asarray(rgb_image)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise FuseVisError(f"expected an RGB image of shape (H, W, 3), got {rgb.shape}")
        packed_unique, inverse = np.unique(_packed(rgb), return_inverse=True)
        unique = _unpacked(packed_unique).astype(np.float64)
        table = self.colours.astype(np.float64)
        nearest = np.empty(len(unique), dtype=np.int64)
        # In blocks: colours x map entries x 3 at once would take gigabytes for images of many colours.
        block = max(1, _DISTANCE_BLOCK_ELEMENTS // (3 * len(table)))
        for start in range(0, len(unique), block):
            part = unique[start : start + block]
            nearest[start : start + block] = np.argmin(((part[:, None, :] - table[None, :, :]) ** 2).sum(axis=2), axis=1)
        ranks = nearest / max(len(table) - 1, 1)
        return ranks[inverse.reshape(-1)].reshape(rgb.shape[:2]).astype(np.float32)
