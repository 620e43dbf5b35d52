"""Colour tables for the saliency overlays, with the paper's gamma correction built into the table.

Slicer maps a scalar volume to colour through a window and a colour table.
The overlays' windows are symmetric about zero (``[-a, a]``, ``a`` the
largest magnitude shown), and the table's entry for a windowed value
``v`` in [-1, 1] holds the colour of ``sign(v) |v| ** gamma`` (the
sign-keeping ``gamma_correct`` of ``FuseVisLib.saliency``): moving a gamma slider
rewrites 256 table entries and no voxel. Zero is black; positive values
run black, red, yellow, white; negative ones black, blue, cyan, so an
overlay fades into the image under it where the derivative vanishes.
"""
from __future__ import annotations

import numpy as np

from FuseVisLib.saliency import gamma_correct

TABLE_SIZE = 256
# (position, r, g, b) stops of the two halves.
POSITIVE_STOPS = ((0.0, 0, 0, 0), (0.4, 1, 0, 0), (0.8, 1, 1, 0), (1.0, 1, 1, 1))
NEGATIVE_STOPS = ((0.0, 0, 0, 0), (0.5, 0, 0, 1), (1.0, 0, 1, 1))


def gamma_table(gamma: float) -> np.ndarray:
    """(TABLE_SIZE, 3) RGB in [0, 1] for windowed values from -1 (entry 0) to 1 (last entry)."""
    # gamma_correct takes an image: the ramp is a one-row image whose largest magnitude is already 1.
    values = np.linspace(-1.0, 1.0, TABLE_SIZE)[None, :]
    corrected = np.asarray(gamma_correct(values, gamma), dtype=np.float64)[0]
    colours = np.empty((TABLE_SIZE, 3))
    for channel in range(3):
        positive = np.interp(corrected, [s[0] for s in POSITIVE_STOPS], [s[channel + 1] for s in POSITIVE_STOPS])
        negative = np.interp(-corrected, [s[0] for s in NEGATIVE_STOPS], [s[channel + 1] for s in NEGATIVE_STOPS])
        colours[:, channel] = np.where(corrected >= 0, positive, negative)
    return colours


def update_colour_node(node, gamma: float) -> None:
    """Rewrite a user colour table node with the gamma-corrected diverging map."""
    colours = gamma_table(gamma)
    disabled = node.StartModify()
    node.SetTypeToUser()
    node.SetNumberOfColors(TABLE_SIZE)
    for index, (red, green, blue) in enumerate(colours):
        node.SetColor(index, f"{index}", float(red), float(green), float(blue), 1.0)
    node.SetAttribute("FuseVis.gamma", repr(float(gamma)))
    node.EndModify(disabled)


def add_colour_node(scene, name: str, gamma: float):
    """A new colour table node for an overlay, with the map for ``gamma``."""
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", scene.GenerateUniqueName(name))
    update_colour_node(node, gamma)
    return node


def set_symmetric_window(display_node, magnitude: float) -> None:
    """Show values from -magnitude to +magnitude across the whole colour table (at least a tiny range)."""
    magnitude = max(float(magnitude), 1e-12)
    display_node.SetAutoWindowLevel(0)
    display_node.SetWindowLevelMinMax(-magnitude, magnitude)
