"""The viewer app on a real MRML scene, in this process and without a browser.

A FuseVisViewerApp (trame-slicer's slice views, the FuseVis Logic, the
host loop) is made but not served; it opens the demo pair as the page
would. Views are resized the way the page's resize message reaches them
(trame-rca's RcaWindow: the interactor's size, then its resize event),
and the mouse moves over them as in the host loop tests.
"""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("trame_slicer")
import vtk  # noqa: E402
from slicer.util import arrayFromVolume  # noqa: E402
from trame.app import get_server  # noqa: E402

from FuseVisLib.demo_data import build_demo  # noqa: E402
from FuseVisViewer.app import FuseVisViewerApp, PairRequest  # noqa: E402
from FuseVisViewer.slice_views import MAIN_VIEWS  # noqa: E402

DEMO_RESOLUTION = 4.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo(tmp_path_factory.mktemp("demo"), misalign=False, resolution=DEMO_RESOLUTION)


@pytest.fixture()
def app(demo, tmp_path, request):
    """A viewer showing the demo pair (opened in the test's event loop: see :func:`run`)."""
    viewer = FuseVisViewerApp(get_server(f"test-viewer-app-{request.node.name}", client_type="vue3"), upload_dir=tmp_path / "uploads")
    viewer.demo_request = PairRequest(demo.mri, demo.pet, already_registered=True)
    yield viewer
    viewer.logic.close()


def run(app, scenario) -> None:
    """``await scenario()`` with the demo pair open and the host loop running, in one event loop (the host loop's)."""

    async def main():
        assert await app.load(app.demo_request)
        app.host.start()
        try:
            await scenario()
        finally:
            await app.host.stop()

    asyncio.run(main())


def resize(view, width: int, height: int) -> None:
    """What trame-rca does with the page's new size for a view."""
    view.interactor().UpdateSize(width, height)
    view.interactor().InvokeEvent(vtk.vtkCommand.WindowResizeEvent)


async def settled(app, condition=lambda: True, timeout: float = 30.0) -> None:
    """Until ``condition()`` holds and no mouse position waits for the host loop."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (condition() and not app.cursor.pending() and app.logic.readout() is not None):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # anything queued meanwhile is taken


def view_centre(view) -> np.ndarray:
    """The world position at the centre of a view (on the slice it shows)."""
    matrix = view.get_view_node().GetSliceToRAS()
    return np.array([matrix.GetElement(row, 3) for row in range(3)])


def on_slice(app, index: int) -> bool:
    """Is the principal pixel on slice ``index``?"""
    pixel = principal(app)
    return pixel is not None and pixel[0] == index


def slice_shape(app) -> tuple[int, int]:
    """Rows and columns of the MRI's slices (the demo's slices are its k planes)."""
    _, rows, cols = arrayFromVolume(app.logic.parameters.mriVolume).shape
    return rows, cols


def principal(app) -> tuple[int, int, int] | None:
    readout = app.logic.readout()
    return None if readout is None else (readout.slice, readout.row, readout.col)


def show_slice(app, index: int) -> None:
    """The page's slice slider moved to ``index``."""
    app.state.fv_slice = index
    app._slice_changed(index)


def mm_per_pixel(view) -> tuple[float, float]:
    """The view's pixel size along its width and height (what it draws: its XY-to-RAS matrix)."""
    matrix = view.get_view_node().GetXYToRAS()
    return tuple(float(np.linalg.norm([matrix.GetElement(row, column) for row in range(3)])) for column in (0, 1))


def fitted_mm_per_pixel(app, width: int, height: int) -> float:
    """The pixel size at which the MRI's axial slice just fits a view (Slicer's fit; the demo is not oblique)."""
    bounds = [0.0] * 6
    app.logic.parameters.mriVolume.GetRASBounds(bounds)
    return max((bounds[1] - bounds[0]) / width, (bounds[3] - bounds[2]) / height)


def test_resized_views_are_fitted_again_and_stay_on_their_slice_with_the_principal_pixel(app):
    async def scenario():
        await settled(app)
        shown = app.logic.parameters.viewSlice - 5
        show_slice(app, shown)
        await settled(app, lambda: on_slice(app, shown))
        before = principal(app)
        offsets = [view.get_slice_value() for view in app.views.values()]
        for width, height in ((231, 279), (174, 306), (300, 150), (174, 197)):
            for name in MAIN_VIEWS:
                resize(app.views[name], width, height)
            for name in MAIN_VIEWS:
                assert tuple(app.views[name].get_view_node().GetDimensions()[:2]) == (width, height)
                expected = fitted_mm_per_pixel(app, width, height)
                assert mm_per_pixel(app.views[name]) == pytest.approx((expected, expected), rel=1e-6), (name, width, height)
            await settled(app)
            assert principal(app) == before
            assert app.logic.parameters.viewSlice == shown
            assert [view.get_slice_value() for view in app.views.values()] == pytest.approx(offsets)

    run(app, scenario)


def oblique_mri(demo, folder) -> object:
    """The demo MRI resampled onto 8 slices tilted 20 degrees about the R axis (an acquisition along the AC-PC line)."""
    from FuseVisLib.volume_io import read_volume, write_nifti
    from oblique_volumes import tilted  # Testing/ is on sys.path under pytest

    return write_nifti(tilted(read_volume(demo.mri), (8, 50, 50), (4.0, 4.0, 6.0)), folder / "oblique_mri.nii.gz")


def test_a_pair_opened_next_shows_the_slice_in_view_also_when_the_views_are_turned_to_its_planes(app, demo, tmp_path):
    """Opening a pair keeps the slice in view where the new MRI has it (the Logic's choice). Turning the views to
    an oblique MRI's slice planes, and fitting them, moves them through slices: the views, the slider and the
    first principal pixel still show the Logic's slice."""
    oblique = PairRequest(oblique_mri(demo, tmp_path), demo.pet, already_registered=True)

    async def scenario():
        await settled(app)
        show_slice(app, 2)
        await settled(app, lambda: on_slice(app, 2))
        assert await app.load(oblique)
        await settled(app)
        assert principal(app)[0] == app.logic.parameters.viewSlice == app.state.fv_slice == 2
        assert [app.logic.pixel_at_ras(view_centre(view))[0] for view in app.views.values()] == [2] * 4

    run(app, scenario)


def move(view, x: int, y: int) -> np.ndarray:
    """A mouse move over ``view`` at window pixel (x, y); returns the world position under it."""
    interactor = view.interactor()
    interactor.SetEventPosition(x, y)
    interactor.InvokeEvent(vtk.vtkCommand.MouseMoveEvent)
    return np.array(view.get_view_node().GetXYToRAS().MultiplyPoint([x, y, 0, 1]))[:3]


def test_a_new_slice_keeps_the_row_and_column_of_a_mouse_position_not_computed_yet(app):
    """The mouse moved to another pixel and the slice changed before the host loop took the position: the new
    slice shows the mouse's row and column, not the previous principal pixel's."""

    async def scenario():
        await settled(app)
        first = principal(app)
        view = app.views["Fused"]
        width, height = view.get_view_node().GetDimensions()[:2]
        hovered = app.logic.pixel_at_ras(move(view, int(0.4 * width), int(0.62 * height)))
        assert hovered is not None and hovered[1:] != first[1:]
        target = first[0] - 4
        show_slice(app, target)  # before the host loop runs again
        await settled(app, lambda: on_slice(app, target))
        assert principal(app) == (target, *hovered[1:])

    run(app, scenario)


def rigid_transform(scene, degrees: float, shift) -> object:
    """A linear transform node: a rotation about the R axis, then a shift (mm)."""
    angle = np.deg2rad(degrees)
    matrix = vtk.vtkMatrix4x4()
    rotation = [[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]]
    for row in range(3):
        for column in range(3):
            matrix.SetElement(row, column, rotation[row][column])
        matrix.SetElement(row, 3, float(shift[row]))
    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    node.SetMatrixTransformToParent(matrix)
    return node


def test_under_a_parent_transform_of_the_mri_the_principal_pixel_starts_at_the_centre_and_keeps_its_row_and_column(app):
    """The viewer opens files, whose MRI has no parent transform; the Logic allows one (the Slicer module). Pixels
    and world positions are mapped by the Logic alone: the first principal pixel is the slice centre, moving
    through slices (with the slider, or in a view) keeps its row and column."""

    async def scenario():
        await settled(app)
        params = app.logic.parameters
        params.mriVolume.SetAndObserveTransformNodeID(rigid_transform(app.scene, 15.0, (14.0, -9.0, 6.0)).GetID())
        app.logic.prepare()
        chosen = params.viewSlice
        app._show_new_pair(app.demo_request)  # what opening a pair does once the Logic has prepared it
        await settled(app)
        rows, cols = slice_shape(app)
        assert principal(app) == (chosen, rows // 2, cols // 2)
        target = chosen - 4
        show_slice(app, target)
        await settled(app, lambda: on_slice(app, target))
        assert principal(app) == (target, rows // 2, cols // 2)
        # Scrolled in a view: the view moves to another slice's plane, the others and the principal pixel follow.
        scrolled = target + 7
        app.views["PET"].get_view_node().JumpSliceByOffsetting(*map(float, app.logic.pixel_ras(scrolled, 3, 5)))
        assert params.viewSlice == scrolled
        await settled(app, lambda: on_slice(app, scrolled))
        assert principal(app) == (scrolled, rows // 2, cols // 2)

    run(app, scenario)
