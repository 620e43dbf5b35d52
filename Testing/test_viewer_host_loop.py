"""The viewer's host loop drives the real Logic from an asyncio loop (issue 5), without a browser.

A real trame-slicer slice view gets mouse events on its interactor, as
the browser's would arrive: the principal pixel must be the voxel under
the mouse, only the newest of several moves is computed, the slices get
computed in the background, pausing stops that and resuming finishes it,
and a failing step is reported while the loop keeps running.
"""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
import vtk

pytest.importorskip("trame_slicer")
from trame_slicer.core import SlicerApp  # noqa: E402
from trame_slicer.views import SliceView, ViewLayoutDefinition  # noqa: E402
from trame_slicer.views.render_scheduler import NoScheduleRendering  # noqa: E402

from FuseVisLib.demo_data import build_demo  # noqa: E402
from FuseVisMRML import FuseVisLogic  # noqa: E402
from FuseVisViewer.cursor import CursorTracker  # noqa: E402
from FuseVisViewer.host_loop import HostLoop  # noqa: E402
from FuseVisViewer.slice_views import LAYERS, configure_view, show_layer  # noqa: E402

VIEW_SIZE = (300, 260)


class Recorder:
    """What the host loop reported, in order."""

    def __init__(self) -> None:
        self.principal: list[float] = []
        self.steps = []
        self.errors: list[str] = []


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return build_demo(tmp_path_factory.mktemp("demo"), resolution=4.0)


@pytest.fixture()
def setup(files):
    app = SlicerApp()
    view = SliceView(app.scene, app.app_logic, "MRI")
    view.set_view_properties(ViewLayoutDefinition.slice_view("Axial", label="MRI").properties)
    view.set_scheduled_render(NoScheduleRendering())  # nothing is drawn here; the geometry is what counts
    configure_view(view)
    view.update_size(*VIEW_SIZE)
    view.interactor().InvokeEvent(vtk.vtkCommand.WindowResizeEvent)
    logic = FuseVisLogic(app.scene)
    logic.load_inputs(files.mri, files.pet)
    logic.parameters.alreadyRegistered = True
    logic.prepare()
    show_layer(view, app.app_logic, logic.parameters, LAYERS["MRI"]["input"], 0.0)
    view.fit_view_to_content()
    record = Recorder()
    cursor = CursorTracker([view])
    host = HostLoop(cursor, record.principal.append, record.steps.append, record.errors.append)
    host.logic = logic
    cursor.on_move = host.wake
    yield view, logic, host, cursor, record
    logic.close()


def move(view, x: int, y: int) -> np.ndarray:
    """A mouse move over ``view`` at window pixel (x, y); returns the RAS point under it."""
    interactor = view.interactor()
    interactor.SetEventPosition(x, y)
    interactor.InvokeEvent(vtk.vtkCommand.MouseMoveEvent)
    return np.array(view.get_view_node().GetXYToRAS().MultiplyPoint([x, y, 0, 1]))[:3]


async def until(condition, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def test_the_pixel_under_the_mouse_becomes_the_principal_pixel(setup):
    view, logic, host, cursor, record = setup

    async def scenario():
        host.start()
        ras = move(view, 150, 130)
        await until(lambda: record.principal, 30)
        first = logic.readout()
        # Several moves before the loop runs: only the newest is computed.
        for x in (120, 125, 130, 135):
            last_ras = move(view, x, 110)
        await until(lambda: len(record.principal) >= 2, 30)
        await asyncio.sleep(0.2)
        await host.stop()
        return ras, first, last_ras, logic.readout()

    ras, first, last_ras, last = asyncio.run(scenario())
    assert (first.slice, first.row, first.col) == logic.pixel_at_ras(ras)
    assert np.abs(np.array(first.ras) - ras).max() <= 4.0 / 2 + 1e-6  # within half a 4 mm voxel
    assert (last.slice, last.row, last.col) == logic.pixel_at_ras(last_ras)
    assert len(record.principal) == 2
    assert cursor.skipped >= 3


def test_slices_are_computed_in_the_background_and_pause_stops_them(setup):
    view, logic, host, cursor, record = setup

    async def scenario():
        host.start()
        await until(lambda: record.steps and record.steps[-1].fused_slices > 0, 60)
        host.pause()
        await asyncio.sleep(0.3)  # the step that was running ends
        paused_at = len(record.steps)
        await asyncio.sleep(1.0)
        steps_while_paused = len(record.steps) - paused_at
        # Hovering still works while paused.
        move(view, 140, 120)
        await until(lambda: record.principal, 30)
        host.resume()
        await until(lambda: not logic.has_work(), 120)
        await host.stop()
        return steps_while_paused

    steps_while_paused = asyncio.run(scenario())
    assert steps_while_paused == 0
    final = record.steps[-1]
    assert final.fused_slices == final.guidance_slices == final.total_slices
    assert not record.errors


def test_a_failing_step_is_reported_and_the_loop_goes_on(setup):
    view, logic, host, cursor, record = setup

    async def scenario():
        # A memory limit no batch fits: the next step refuses to start work.
        logic.parameters.memoryLimitGB = 1e-6
        host.start()
        await until(lambda: record.errors, 30)
        assert host.paused
        move(view, 150, 130)  # the loop still serves the mouse
        await until(lambda: record.principal, 30)
        logic.parameters.memoryLimitGB = 0.0
        host.resume()
        await until(lambda: not logic.has_work(), 120)
        await host.stop()

    asyncio.run(scenario())
    assert "main memory" in record.errors[0] and "crop or downsample" in record.errors[0]
    assert record.steps[-1].fused_slices == record.steps[-1].total_slices
