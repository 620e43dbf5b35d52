"""The viewer's host loop drives the real Logic from an asyncio loop (issue 5), without a browser.

A real trame-slicer slice view gets mouse events on its interactor, as
the browser's would arrive: the principal pixel must be the voxel under
the mouse, only the newest of several moves is computed, the slices get
computed in the background, pausing stops that and resuming finishes it,
and a failing step is reported while the loop keeps running.
"""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import vtk

pytest.importorskip("trame_slicer")
from trame_slicer.core import SlicerApp  # noqa: E402
from trame_slicer.views import SliceView, ViewLayoutDefinition  # noqa: E402
from trame_slicer.views.render_scheduler import NoScheduleRendering  # noqa: E402

from FuseVisLib.demo_data import build_demo  # noqa: E402
from FuseVisLib import registry  # noqa: E402
from FuseVisLib.errors import FuseVisError  # noqa: E402
from FuseVisMRML import FuseVisLogic  # noqa: E402
from FuseVisViewer.cursor import CursorTracker  # noqa: E402
from FuseVisViewer.host_loop import HostLoop  # noqa: E402
from FuseVisViewer.slice_views import LAYERS, configure_view, show_layer  # noqa: E402

import viewer_network  # noqa: E402  (Testing/ is on sys.path under pytest)

VIEW_SIZE = (300, 260)
HOLD_SECONDS = 3.0


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


def test_the_loop_stops_when_stopped_right_after_being_woken(setup):
    """Python 3.11's asyncio.wait_for returns normally, swallowing a cancellation, when what it waits for is
    done in the same turn of the event loop: the loop, idle and woken by a mouse move, then ran on forever and
    stop() never returned."""
    view, logic, host, cursor, record = setup

    async def scenario():
        host.pause()  # nothing to compute: the loop waits to be woken
        host.start()
        await asyncio.sleep(0.3)
        move(view, 150, 130)  # wakes the loop
        stopping = asyncio.ensure_future(host.stop())
        done, _ = await asyncio.wait({stopping}, timeout=5.0)
        return bool(done)

    assert asyncio.run(scenario())


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


def test_a_new_network_is_prepared_off_the_event_loop_while_the_logic_shows_busy(setup, monkeypatch):
    view, logic, host, cursor, record = setup
    # The small test network, in a registry copy so other tests never see it.
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    viewer_network.register()
    method = viewer_network.NAME
    # Planning a network takes from tens of milliseconds (a small one, warm caches) to tens of seconds: the
    # test holds the real preparation open until it has looked at the page side, so timing cannot decide.
    release = threading.Event()
    begin = logic.begin_preparing_method

    def held_open(name: str):
        work = begin(name)
        if work is None:
            return None

        def run() -> None:
            release.wait(timeout=HOLD_SECONDS)
            work()

        return run

    monkeypatch.setattr(logic, "begin_preparing_method", held_open)
    busy_reports: list = []

    async def scenario():
        loop = asyncio.get_running_loop()
        host.start()
        move(view, 150, 130)
        await until(lambda: record.principal, 30)  # the first method was prepared (off the loop) too
        shown_before = len(record.principal)
        shown_when_ready: list[int] = []

        def on_busy(text) -> None:
            busy_reports.append(text)
            if text is None:
                shown_when_ready.append(len(record.principal))

        host.on_busy = on_busy
        ticks: list[float] = []  # when the event loop ran a coroutine while the Logic was busy

        async def tick() -> None:
            while True:
                if logic.busy is not None:
                    ticks.append(loop.time())
                await asyncio.sleep(0.01)

        ticker = loop.create_task(tick())
        preparing = loop.create_task(host.prepare_method(method))
        await until(lambda: logic.busy is not None or preparing.done(), 10)
        busy_text = logic.busy
        if busy_text is not None:
            with pytest.raises(FuseVisError, match="Preparing"):
                logic.set_method(method)  # refused while its networks are half ready
        moved_to = move(view, 120, 110)  # the mouse moves on meanwhile
        await asyncio.sleep(0.4)
        release.set()
        await preparing
        ticker.cancel()
        busy_after = logic.busy
        # The waiting position is shown as soon as the Logic is ready again.
        await until(lambda: len(record.principal) > shown_before, 30)
        logic.set_method(method)
        await asyncio.sleep(0.1)
        await host.stop()
        return busy_text, shown_when_ready[0] - shown_before, busy_after, ticks, moved_to

    busy_text, shown_while_busy, busy_after, ticks, moved_to = asyncio.run(scenario())
    # Preparing on the event loop would leave it no turn while busy, and the busy state unseen.
    assert busy_text is not None and method in busy_text and busy_reports == [busy_text, None]
    assert len(ticks) >= 10, f"the event loop ran only {len(ticks)} times in the 0.4 s the preparation was held open"
    longest_gap = float(np.diff(ticks).max())
    assert longest_gap < 0.2, f"the event loop stalled for {longest_gap:.2f} s while the network was prepared"
    assert shown_while_busy == 0  # nothing computed with a half-ready network
    assert busy_after is None and logic.method_ready(method)
    readout = logic.readout()
    assert readout.method == method
    assert (readout.slice, readout.row, readout.col) == logic.pixel_at_ras(moved_to)
    assert not record.errors
