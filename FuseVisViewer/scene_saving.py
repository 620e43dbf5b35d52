"""Saving the viewer's MRML scene as a Slicer scene bundle (.mrb) into a folder the user chose.

The bundle holds every node of the scene: the input MRI and PET, the PET
on the MRI grid, the fused volume, the guidance MRI/PET/RGB volumes, the
Jacobian layers of the principal pixel, the scatterplot tables and the
FuseVis parameter node, written by slicer-core's own scene writer (see
:func:`FuseVisMRML.scene_files.save_scene`). Opening it in the Slicer
application (or ``FuseVisMRML.scene_files.read_scene``) gives the results
back; the FuseVis module takes them up without recomputing them.
"""
from __future__ import annotations

import time
from pathlib import Path

from FuseVisLib.errors import FuseVisError


def bundle_path(folder: str | Path, method: str, now: float | None = None) -> Path:
    """A new .mrb path in ``folder`` named after the method and the time (FuseVisError for a bad folder)."""
    text = str(folder).strip()
    if not text:
        raise FuseVisError("no folder to save into; type a folder on the server (it is created if missing)")
    directory = Path(text).expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise FuseVisError(f"{directory} is a file, not a folder; choose a folder to save the scene into")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    path = directory / f"fusevis-{method}-{stamp}.mrb"
    counter = 1
    while path.exists():  # two saves within a second
        counter += 1
        path = directory / f"fusevis-{method}-{stamp}-{counter}.mrb"
    return path


def save_bundle(logic, folder: str | Path) -> Path:
    """Write the Logic's scene into a new .mrb in ``folder``; returns its path (FuseVisError if that fails).

    It runs on the thread that owns the scene: writing calls the scene's
    observers (the views), which must not run on another thread.
    """
    if not logic.prepared:
        raise FuseVisError("nothing to save yet; load an MRI and a PET (or the demo) first")
    path = bundle_path(folder, logic.parameters.method)
    try:
        return logic.save_scene(path)
    except OSError as error:
        raise FuseVisError(f"could not save the scene to {path} ({error.strerror}); choose a writable folder") from None
