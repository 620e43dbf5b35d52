"""The viewer's Slicer slice views: MRI, fused and PET side by side, and the zoom view; their layers.

All four are real MRML slice views (axial, rendered off screen and
streamed by trame-slicer). MRI, fused and PET show the same slice: moving
through slices in one moves the others (:class:`SliceLink`), and the
crosshair shows the principal pixel in all. Each main view has switchable
layers (:data:`LAYERS`): the input or fused image, a guidance or Jacobian
image with the anatomy faintly added to it (see :func:`show_layer`), or
the guidance RGB image. The zoom view (see :mod:`.zoom_view`) shows one
main view's layers around the principal pixel.

Left-dragging in a Slicer slice view normally changes the window/level;
FuseVis turns that off, so pressing the button while hovering (the
paper's mouseover) only moves the principal pixel.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import vtk
from slicer import vtkMRMLCrosshairNode, vtkMRMLScalarBarDisplayableManager, vtkMRMLSliceCompositeNode
from trame_slicer.views import ViewLayoutDefinition

MAIN_VIEWS = ("MRI", "Fused", "PET")
ZOOM_VIEW = "Zoom"
VIEW_COLOURS = {"MRI": "#9e9e9e", "Fused": "#6DAD4A", "PET": "#F34A33", ZOOM_VIEW: "#EFD64D"}
# Below trame-slicer's own resize observer (priority 0), which resizes the slice node: refitting comes after it.
RESIZE_PRIORITY = -1.0


@dataclass(frozen=True)
class Layer:
    """What a view shows: the parameter role of its image and, under saliency images, of the anatomy."""

    title: str
    image: str
    anatomy: str | None = None


# Per main view: layer key -> layer. Roles name FuseVis parameter node references.
LAYERS: dict[str, dict[str, Layer]] = {
    "MRI": {
        "input": Layer("MRI", "mriVolume"),
        "jacobian": Layer("Jacobian MRI", "jacobianMriVolume", "mriVolume"),
        "guidance": Layer("Guidance MRI", "guidanceMriVolume", "mriVolume"),
    },
    "Fused": {
        "input": Layer("Fused", "fusedVolume"),
        "rgb": Layer("Guidance RGB", "guidanceRgbVolume"),
    },
    "PET": {
        "input": Layer("PET", "petOnMriGrid"),
        "jacobian": Layer("Jacobian PET", "jacobianPetVolume", "petOnMriGrid"),
        "guidance": Layer("Guidance PET", "guidancePetVolume", "petOnMriGrid"),
    },
}
DEFAULT_LAYERS = {"MRI": "jacobian", "Fused": "input", "PET": "jacobian"}


def view_definitions() -> list[ViewLayoutDefinition]:
    """The four axial slice views, named by what they show."""
    return [ViewLayoutDefinition.slice_view("Axial", label=name, color=VIEW_COLOURS[name]) for name in (*MAIN_VIEWS, ZOOM_VIEW)]


def configure_view(view) -> None:
    """Mouse drags select pixels instead of changing the window/level; no multisampling.

    Views are rendered in software on servers without a GPU, where 8x
    multisampling (trame-slicer's default) makes every frame about four
    times as slow, for no visible gain on slice images.
    """
    view.render_window().SetMultiSamples(0)
    manager = view.get_displayable_manager_by_class(vtkMRMLScalarBarDisplayableManager)
    if manager is not None:
        manager.SetAdjustBackgroundWindowLevelEnabled(False)
        manager.SetAdjustForegroundWindowLevelEnabled(False)


def show_crosshair(scene, visible: bool) -> None:
    """A small cross at the principal pixel in every view (or none)."""
    crosshair = scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
    crosshair.SetCrosshairMode(vtkMRMLCrosshairNode.ShowSmallBasic if visible else vtkMRMLCrosshairNode.NoCrosshair)


def show_layer(view, app_logic, parameters, layer: Layer, anatomy_opacity: float) -> None:
    """Point ``view`` at the layer's nodes (missing nodes show nothing).

    A saliency image is the view's background, as in the paper, where it
    is an image of its own; the anatomy is added on top of it, faintly
    (``anatomy_opacity``), for orientation. The saliency colour maps are
    black at zero, so adding keeps the saliency at full strength.
    """
    image = getattr(parameters, layer.image)
    anatomy = getattr(parameters, layer.anatomy) if layer.anatomy else None
    for node in (image, anatomy):
        if node is not None and node.GetDisplayNode() is not None:
            # Pixels as they are: a saliency value belongs to one pixel, and nearest-neighbour
            # reslicing is what keeps a Jacobian update cheap enough to follow the mouse.
            node.GetDisplayNode().SetInterpolate(False)
    composite = app_logic.GetSliceLogic(view.get_view_node()).GetSliceCompositeNode()
    composite.SetCompositing(vtkMRMLSliceCompositeNode.Add)
    view.set_background_volume_id(image.GetID() if image is not None else None)
    view.set_foreground_volume_id(anatomy.GetID() if anatomy is not None else None)
    view.set_foreground_opacity(anatomy_opacity if anatomy is not None else 0.0)


class _ViewNodeObserver:
    """Calls ``_view_modified(name, node)`` whenever the slice node of one of ``views`` is modified."""

    def __init__(self, views: dict) -> None:
        self.views = views
        self._tags = [
            (view.get_view_node(), view.get_view_node().AddObserver(vtk.vtkCommand.ModifiedEvent, self._modified))
            for view in views.values()
        ]

    def close(self) -> None:
        for node, tag in self._tags:
            node.RemoveObserver(tag)
        self._tags = []

    def _modified(self, node, _event) -> None:
        name = next((n for n, v in self.views.items() if v.get_view_node() is node), None)
        if name is not None:
            self._view_modified(name, node)

    def _view_modified(self, name: str, node) -> None:
        raise NotImplementedError


class SliceLink(_ViewNodeObserver):
    """Keeps the main views and the zoom view on one slice; reports slice changes made in any of them.

    Slicer's own view linking would also copy layer choices between the
    views, which here differ on purpose, so only the slice position is
    shared: when a view's slice node moves through slices, the others
    jump to the same plane.
    """

    def __init__(self, views: dict, on_slice_changed) -> None:
        self.on_slice_changed = on_slice_changed
        self._syncing = False
        super().__init__(views)
        self._remember_offsets()

    def jump_to(self, ras) -> None:
        """Put every view on the plane through ``ras`` (keeps each view's pan and zoom)."""
        with self.paused():
            for view in self.views.values():
                view.get_view_node().JumpSliceByOffsetting(*map(float, ras))

    @contextmanager
    def paused(self):
        """Slice moves made meanwhile (by the viewer itself) are neither followed nor reported; the views' slices
        afterwards are taken as they are."""
        syncing, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = syncing
            self._remember_offsets()

    def _remember_offsets(self) -> None:
        self._offsets = {name: view.get_slice_value() for name, view in self.views.items()}

    def _view_modified(self, name: str, node) -> None:
        if self._syncing:
            return
        offset = self.views[name].get_slice_value()
        if abs(offset - self._offsets.get(name, offset)) < 1e-6:
            return  # panned or zoomed, not moved through slices
        matrix = node.GetSliceToRAS()
        point = [matrix.GetElement(row, 3) for row in range(3)]
        self.jump_to(point)
        self.on_slice_changed(point)


class FitUntilZoomed:
    """Fits the views to their content, and again whenever the page gives a view another size, until the
    user zooms that view.

    A pair is fitted as soon as it is opened, often before the browser has
    laid the views out; Slicer then keeps a resized view's vertical field
    of view, so a slice as wide as it is tall came out cropped at the sides
    in a narrower view (and zoomed far in when the first size was far off).

    A resize is seen on the view's interactor, after trame-slicer has
    resized the slice node there, not in the slice node's own modified
    event: that event is sent from inside vtkMRMLSliceNode::UpdateMatrices,
    which does not recompute the node's matrices for changes made meanwhile,
    so a view fitted then was drawn with its old scale (zoomed in or out).
    A fit also moves the view to the middle of its background volume before
    it is put back on its slice; ``link`` is paused meanwhile, or it would
    send every view, and the principal pixel, to that slice.
    """

    def __init__(self, views: dict, link: SliceLink) -> None:
        self.views = views
        self.link = link
        self._fitted: dict[str, tuple[tuple[int, int], float]] = {}  # view -> (size, vertical field of view) after fitting
        self._tags = []
        for name, view in views.items():
            interactor = view.interactor()
            callback = lambda *_, name=name: self._resized(name)  # noqa: E731
            self._tags.append((interactor, interactor.AddObserver(vtk.vtkCommand.WindowResizeEvent, callback, RESIZE_PRIORITY)))

    def close(self) -> None:
        for interactor, tag in self._tags:
            interactor.RemoveObserver(tag)
        self._tags = []

    def fit(self) -> None:
        """Fit every view (a newly shown pair; the caller puts them on its slice afterwards)."""
        for name in self.views:
            self._fit(name)

    def _fit(self, name: str, keep_slice: bool = False) -> None:
        view = self.views[name]
        offset = view.get_slice_value()
        with self.link.paused():
            view.fit_view_to_content()
            if keep_slice:
                view.set_slice_value(offset)
        node = view.get_view_node()
        self._fitted[name] = (tuple(node.GetDimensions()[:2]), node.GetFieldOfView()[1])

    def _resized(self, name: str) -> None:
        if name not in self._fitted:
            return
        node = self.views[name].get_view_node()
        size, height = self._fitted[name]
        if tuple(node.GetDimensions()[:2]) == size:
            return
        if abs(node.GetFieldOfView()[1] - height) > 1e-6 * max(height, 1e-9):
            del self._fitted[name]  # zoomed by the user: the view is theirs now
            return
        self._fit(name, keep_slice=True)
