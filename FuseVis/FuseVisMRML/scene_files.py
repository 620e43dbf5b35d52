"""Saving the scene with every FuseVis output as a Medical Reality Bundle (.mrb), and reading it back.

Inside the Slicer application its own ``saveScene``/``loadScene`` are
used. With the PyPI package, every storable node that has no storage node
gets its default one (NRRD for volumes, TSV for tables, colour tables as
.ctbl, transforms as .h5) and the scene writes itself into the bundle;
reading needs a data I/O manager with a cache folder, set up here when the
scene has none.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from FuseVisLib.errors import FuseVisError

from .loading import running_in_slicer_app


def save_scene(scene, path: str | Path) -> Path:
    """Write ``scene`` to the .mrb file ``path`` (its folder is created); FuseVisError if writing fails."""
    path = Path(path).resolve()
    if path.suffix.lower() != ".mrb":
        raise FuseVisError(f"{path} must end in .mrb (a Medical Reality Bundle holding the scene and its data)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FuseVisError(f"cannot make the folder {path.parent} ({error.strerror}); choose another place for the scene") from None
    if running_in_slicer_app():
        import slicer

        if not slicer.util.saveScene(str(path)):
            raise FuseVisError(f"Slicer could not save the scene to {path}; check that the folder is writable")
        return path
    # A failed save, or one interrupted by an exception, leaves the scene as it was: no storage nodes
    # added for it, its URL and root directory unchanged (MRML itself puts back the file names it changes).
    url, root = scene.GetURL(), scene.GetRootDirectory()
    added, left_out, written = [], [], False
    try:
        for index in range(scene.GetNumberOfNodes()):
            node = scene.GetNthNode(index)
            if node.IsA("vtkMRMLStorableNode") and node.GetSaveWithScene() and node.GetStorageNode() is None:
                node.AddDefaultStorageNode()
                added.append(node)
        left_out = _host_only_nodes(scene)
        for node in left_out:
            node.SetSaveWithScene(False)
        scene.SetRootDirectory(str(path.parent))
        scene.SetURL(str(path.with_suffix(".mrml")))
        written = bool(scene.WriteToMRB(str(path)))
    finally:
        for node in left_out:
            node.SetSaveWithScene(True)
        if not written:
            for node in added:
                storage = node.GetStorageNode()
                node.SetAndObserveStorageNodeID(None)
                if storage is not None:
                    scene.RemoveNode(storage)
            scene.SetURL(url)
            scene.SetRootDirectory(root)
    if not written:
        raise FuseVisError(f"the scene could not be written to {path}; check that the folder is writable and has space")
    return path


def _host_only_nodes(scene) -> list:
    """Saved nodes of classes a plain MRML scene does not know (e.g. trame-slicer's segment editor node).

    They hold the host application's own state, not FuseVis data, and a
    scene that cannot make them reports the whole bundle unreadable; left
    out, the bundle reads back into any MRML scene.
    """
    import slicer

    plain = slicer.vtkMRMLScene()
    nodes = []
    for index in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(index)
        if node.GetSaveWithScene() and plain.CreateNodeByClass(node.GetClassName()) is None:
            nodes.append(node)
    return nodes


def read_scene(scene, path: str | Path) -> None:
    """Replace ``scene``'s content with the .mrb file at ``path``."""
    path = Path(path).resolve()  # MRML's bundle reader opens relative paths from elsewhere
    if not path.is_file():
        raise FuseVisError(f"{path} does not exist; give a .mrb file saved by FuseVis or Slicer")
    if running_in_slicer_app():
        import slicer

        slicer.util.loadScene(str(path), {"clear": True})
        return
    _ensure_data_io(scene)
    if not scene.ReadFromMRB(str(path), True):
        raise FuseVisError(f"{path} could not be read as a scene bundle (.mrb); save it again")


def _ensure_data_io(scene) -> None:
    import slicer

    if scene.GetDataIOManager() is not None and scene.GetDataIOManager().GetCacheManager() is not None:
        return
    remote_io = slicer.vtkMRMLRemoteIOLogic()
    remote_io.SetMRMLScene(scene)
    # Bundles are unpacked into the cache folder, removed when the process ends.
    cache = tempfile.TemporaryDirectory(prefix="fusevis-mrb-")
    remote_io.GetCacheManager().SetRemoteCacheDirectory(cache.name)
    remote_io.AddDataIOToScene()
    # The scene holds the manager, not the logic or the folder: keep both alive with it.
    _KEPT_ALIVE.append((remote_io, cache))


_KEPT_ALIVE: list = []
