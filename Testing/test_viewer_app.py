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


def principal(app) -> tuple[int, int, int]:
    readout = app.logic.readout()
    return readout.slice, readout.row, readout.col


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
        await settled(app, lambda: principal(app)[0] == shown)
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
