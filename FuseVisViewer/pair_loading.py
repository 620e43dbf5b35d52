"""Loading another MRI/PET pair into the running viewer, all or nothing.

Slow parts run off the event loop: reading the files (NIfTI or DICOM)
and the registration (with progress and cancel). The scene changes only
on the event loop's thread. The pair on display stays usable until the
new one is ready, and whatever fails (a file that is not an image, a
missing file, a PET that does not cover the MRI, a cancelled
registration) leaves it exactly as it was: new nodes are removed and the
previous inputs, transform and results are put back (the Logic picks its
saved results up again from the output nodes).
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from FuseVisLib.errors import FuseVisError
from FuseVisLib.registration import RegistrationCancelled, RegistrationProgress
from FuseVisLib.volume_io import read_volume
from FuseVisMRML.input_checks import checked_pair
from FuseVisMRML.loading import load_volume_checked
from FuseVisMRML.registration_step import snapshot


@dataclass
class _Previous:
    mri: object
    pet: object
    transform: object
    already_registered: bool


class LoadCancelled(Exception):
    """The user cancelled the registration; nothing changed."""


async def load_pair(
    logic,
    mri_path: str | Path,
    pet_path: str | Path,
    already_registered: bool,
    cancel: threading.Event,
    progress: Callable[[str], None],
) -> None:
    """Read, (register,) prepare the pair as the Logic's inputs, or raise with the scene as it was.

    ``progress`` gets one-line descriptions of what is going on; it is
    called on the event loop's thread.
    """
    loop = asyncio.get_running_loop()
    mri_path, pet_path = Path(mri_path).expanduser(), Path(pet_path).expanduser()
    if mri_path.resolve() == pet_path.resolve():
        raise FuseVisError(f"the same file ({mri_path}) is given as MRI and as PET; give the PET as PET")
    progress(f"Reading MRI {mri_path.name} and PET {pet_path.name}…")
    mri_volume, pet_volume = await asyncio.to_thread(lambda: (_read(mri_path, "MRI"), _read(pet_path, "PET")))
    scene = logic.scene
    new_mri = load_volume_checked(scene, mri_path, mri_volume)
    new_pet = load_volume_checked(scene, pet_path, pet_volume)
    new_nodes = [new_mri, new_pet]
    try:
        checked_pair(new_mri, new_pet)
        result = None
        if not already_registered:
            job = snapshot(new_mri, new_pet)

            def report(step: RegistrationProgress) -> None:
                text = f"Registering PET to MRI: {step.stage}, level {step.level + 1}/{step.levels}, metric {step.metric:.4f}"
                loop.call_soon_threadsafe(progress, text)

            progress("Registering PET to MRI…")
            try:
                result = await asyncio.to_thread(job.run, report, cancel.is_set)
            except RegistrationCancelled:
                raise LoadCancelled("registration cancelled; the previous images stay loaded") from None
        progress("Resampling the PET onto the MRI grid…")
        _swap_in(logic, new_mri, new_pet, result, already_registered, new_nodes)
    except BaseException:
        for node in new_nodes:
            remove_node(scene, node)
        raise


def _read(path: Path, role: str):
    try:
        return read_volume(path)
    except FuseVisError as error:
        raise FuseVisError(f"{role}: {error}") from None


def _swap_in(logic, new_mri, new_pet, result, already_registered: bool, new_nodes: list) -> None:
    """Make the new pair the Logic's inputs and prepare it; on failure restore the previous pair and re-raise."""
    params = logic.parameters
    previous = _Previous(params.mriVolume, params.petVolume, params.registrationTransform, params.alreadyRegistered)
    logic.set_inputs(new_mri, new_pet)
    # A new transform node: the previous PET still hangs under the old one.
    params.registrationTransform = None
    params.alreadyRegistered = already_registered
    try:
        if result is not None:
            new_nodes.append(logic.apply_registration(result))
        logic.prepare()
    except BaseException:
        if previous.mri is not None and previous.pet is not None:
            logic.set_inputs(previous.mri, previous.pet)
            params.registrationTransform = previous.transform
            params.alreadyRegistered = previous.already_registered
            logic.prepare()
        raise
    for node in (previous.mri, previous.pet, previous.transform):
        if node is not None and node not in new_nodes:
            remove_node(logic.scene, node)


def remove_node(scene, node) -> None:
    """Remove ``node`` and the display and storage nodes that belong to it only (RemoveNode leaves them)."""
    if node is None or scene.GetNodeByID(node.GetID()) is None:
        return
    helpers = []
    if node.IsA("vtkMRMLDisplayableNode"):
        helpers += [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
    if node.IsA("vtkMRMLStorableNode"):
        helpers += [node.GetNthStorageNode(i) for i in range(node.GetNumberOfStorageNodes())]
    scene.RemoveNode(node)
    for helper in helpers:
        if helper is not None and scene.GetNodeByID(helper.GetID()) is not None:
            scene.RemoveNode(helper)
