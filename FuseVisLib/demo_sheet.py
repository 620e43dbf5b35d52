"""A PNG sheet of inputs and fused images side by side, like the paper's Figure 4."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def radiological(image: np.ndarray) -> np.ndarray:
    """Axial slice as radiologists view it: anterior up, patient's right on the left."""
    return image[::-1, ::-1]


def write_fusion_sheet(mri: np.ndarray, pet: np.ndarray, fused: dict[str, np.ndarray], out: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("MRI", mri, "gray"), ("PET", pet, "hot"), *((name, image, "gray") for name, image in fused.items())]
    figure, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0))
    for axis, (name, image, colormap) in zip(axes, panels):
        # Fixed [0, 1] display range so brightness shifts are visible, not normalised away.
        axis.imshow(radiological(image), cmap=colormap, vmin=0, vmax=1, interpolation="nearest")
        axis.set_title(name, fontsize=9)
        axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
