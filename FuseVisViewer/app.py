"""FuseVisViewerApp: the FuseVis Logic on trame-slicer's MRML views, wired to the page's state.

The app owns one MRML scene (trame-slicer's ``SlicerApp``), the four slice
views, one :class:`~FuseVisMRML.FuseVisLogic` and the :class:`~.host_loop.HostLoop`
that drives it. The page's controls write trame state (``fv_*`` keys);
handlers here turn those into Logic parameters or view layers, and the
host loop's callbacks turn Logic results into state. Everything runs on
the event loop's thread except file reading and registration (see
:mod:`.pair_loading`), loading and planning a network (the page shows the
Logic busy meanwhile, see :meth:`.host_loop.HostLoop.prepare_method`),
which run in worker threads.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import vtk
from trame.app import TrameApp
from trame_slicer.core import SlicerApp
from trame_slicer.rca_view import RemoteSliceViewFactory

from FuseVisLib.errors import FuseVisError
from FuseVisLib.registry import get_method, method_names
from FuseVisLib.volume_fusion import axial_axis
from FuseVisMRML import FuseVisLogic
from FuseVisMRML.view_alignment import align_with_volume
from FuseVisMRML.volume_nodes import volume_from_node

from . import controls_ui
from .cursor import CursorTracker
from .host_loop import HostLoop
from .pair_loading import LoadCancelled, load_pair
from .readout import jacobian_totals, readout_rows
from .scatter_plot import ScatterPlot, data_url, table_columns
from .scene_saving import save_bundle
from .slice_views import (
    DEFAULT_LAYERS,
    LAYERS,
    MAIN_VIEWS,
    ZOOM_VIEW,
    FitUntilZoomed,
    SliceLink,
    configure_view,
    show_crosshair,
    show_layer,
    view_definitions,
)
from .throttle import Throttle
from .uploads import save_uploads
from .vtk_messages import send_vtk_messages_to
from .zoom_view import NeighbourhoodBox, centre_zoom

log = logging.getLogger(__name__)

# Frames per second a view streams at most, hovered or not (the Jacobian layers change in the views
# the mouse is not over). The views that only show where the principal pixel is (the fused view's box,
# the zoom view) are capped lower, so that while dragging the server's rendering and the browser's
# decoding go to the Jacobian layers: with 8 and 5 instead of 15 and 8, the Jacobian frames per second
# in the benchmark rose by 10-20% and chromium's CPU per Jacobian frame fell by about a quarter.
MAX_FPS = 60.0
VIEW_FPS = {"Fused": 8.0, "Zoom": 5.0}
# One JPEG quality for every frame: with a lower "interactive" quality trame-rca renders each frame a
# second time at full quality, doubling the rendering work per mouse move.
FRAME_QUALITY = 90
# Views are rendered at this fraction of their size on screen. Rendering is done in software on
# servers without a GPU and costs about in proportion to the pixels; slice images are coarse
# (a 2 mm MRI shows about 3 screen pixels per voxel at 0.6), so little is lost.
DEFAULT_RENDER_SCALE = 0.6
# VTK's image filters (the slice views' reslice, colour mapping and blending) split each small slice image
# over threads by default. On two cores shared with the network, the encoder and the browser, the thread
# hand-offs cost more than they save: measured per Jacobian update, rendering the four views took about
# 38 ms with VTK's default two threads and 19 ms with one (on a loaded machine).
VTK_THREADS = 1
METHOD_REFRESH_SECONDS = 10.0
# The readout and the scatterplot follow a drag at most this often (the views follow every move).
PAGE_INTERVAL_SECONDS = 0.1


@dataclass(frozen=True)
class PairRequest:
    """Paths of an MRI and a PET to open (NIfTI files or DICOM folders)."""

    mri: Path
    pet: Path
    already_registered: bool = False


class FuseVisViewerApp(TrameApp):
    """The browser viewer. ``initial``: the pair opened at start; ``demo``: builds the demo pair, returns its request;
    ``render_scale``: views render at this fraction of their size on screen; ``save_dir``: the page's
    default folder for "Save scene"; ``vtk_log``: a file for VTK's and Slicer's messages (None: the terminal)."""

    def __init__(
        self,
        server=None,
        *,
        upload_dir: Path,
        initial: PairRequest | None = None,
        demo: Callable[[], PairRequest] | None = None,
        method: str = "WeightedAveraging",
        render_scale: float = DEFAULT_RENDER_SCALE,
        save_dir: Path = Path("fusevis-output"),
        vtk_log: Path | None = None,
    ) -> None:
        super().__init__(server=server)
        if not 0.1 <= render_scale <= 2.0:
            raise FuseVisError(f"render scale {render_scale:g} must be between 0.1 and 2 (1: one image pixel per screen pixel)")
        vtk.vtkMultiThreader.SetGlobalMaximumNumberOfThreads(VTK_THREADS)
        self.upload_dir = Path(upload_dir)
        self.initial = initial
        self.demo = demo
        self.slicer = SlicerApp()
        if vtk_log is not None:
            send_vtk_messages_to(vtk_log)
        self.scene = self.slicer.scene
        self.views = {}
        for definition in view_definitions():
            name = definition.singleton_tag
            fps = VIEW_FPS.get(name, MAX_FPS)
            # One factory per view: trame-slicer resets a view's frame rate to its factory's on mouse enter/leave.
            factory = RemoteSliceViewFactory(
                self.server, populate_view_ui_f=controls_ui.view_overlay, target_fps=fps, blur_fps=fps,
                interactive_quality=FRAME_QUALITY,
            )
            self.slicer.view_manager.register_factory(factory)
            view = factory.create_view(definition, self.scene, self.slicer.app_logic)
            configure_view(view)
            # Fewer pixels to render and encode per mouse move; the page scales the image to the view.
            factory.get_factory_view(name).view_adapter.scale = render_scale
            self.views[name] = view
        self.slicer.view_manager.set_current_view_ids(list(self.views))
        show_crosshair(self.scene, True)

        self.logic = FuseVisLogic(self.scene)
        self.logic.parameters.method = method
        self.logic.error_listener = self.show_error
        self.box = NeighbourhoodBox(list(self.views.values()))
        self.scatter = ScatterPlot()
        self.crosshair = self.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
        self.cursor = CursorTracker([self.views[name] for name in MAIN_VIEWS])
        self.host = HostLoop(self.cursor, self._principal_changed, self._stepped, self.show_error)
        self.host.logic = self.logic
        self.host.on_busy = self._show_busy
        self.cursor.on_move = self.host.wake
        self.link = SliceLink(self.views, self._slice_scrolled)
        self.fitter = FitUntilZoomed({name: self.views[name] for name in MAIN_VIEWS}, self.link)
        self._axis = 0
        self._slices = self._rows = self._cols = 1
        self._loading = False
        self._cancel_load: threading.Event | None = None
        self._last_update_ms = 0.0  # everything the server did for the newest mouse position
        self._pixels_chosen = 0
        self._shown_counts: tuple | None = None
        self._page_update = Throttle(self._send_readout, PAGE_INTERVAL_SECONDS)

        self._init_state(method)
        self.state.fv_save_dir = str(Path(save_dir).expanduser().resolve())
        templates = {name: self.server.translator.translate_key(name) for name in self.views}
        self.ui = controls_ui.build_page(self.server, self.upload, templates)
        self._bind_state()
        self.ctrl.on_server_ready.add(self._on_server_ready)

    # -- state ---------------------------------------------------------------------------------

    def _init_state(self, method: str) -> None:
        params = self.logic.parameters
        self.state.update({
            "fv_ready": False, "fv_loading": False, "fv_paused": False, "fv_cancellable": False,
            "fv_methods": self._method_items(), "fv_method": method,
            "fv_gamma1": params.gamma1, "fv_gamma2": params.gamma2, "fv_hood": params.neighbourhoodSize,
            "fv_slice": 0, "fv_slices": 1, "fv_opacity": 0.35, "fv_crosshair": True, "fv_zoom_source": "Fused",
            "fv_mri_path": "", "fv_pet_path": "", "fv_already_registered": False,
            "fv_phase": "Starting…", "fv_fused_done": 0, "fv_guidance_done": 0, "fv_total": 0,
            "fv_error": "", "fv_notice": "", "fv_busy": "", "fv_saving": False, "fv_saved": "",
            "fv_readout": [], "fv_readout_seq": 0, "fv_scatter": "", "fv_rate": "", "fv_pair": "", "fv_drawer": True,
            **{f"fv_layer_{name}": DEFAULT_LAYERS[name] for name in MAIN_VIEWS},
        })

    def _bind_state(self) -> None:
        state, ctrl = self.state, self.ctrl
        state.change("fv_method")(self._method_changed)
        state.change("fv_gamma1", "fv_gamma2", "fv_hood")(self._numbers_changed)
        state.change("fv_opacity", "fv_zoom_source", *[f"fv_layer_{name}" for name in MAIN_VIEWS])(self._layers_changed)
        state.change("fv_crosshair")(lambda fv_crosshair, **_: show_crosshair(self.scene, bool(fv_crosshair)))
        state.change("fv_slice")(self._slice_changed)
        ctrl.trigger("fv_load")(self._load_from_paths)
        ctrl.trigger("fv_load_demo")(self._load_demo)
        ctrl.trigger("fv_cancel")(self.cancel)
        ctrl.trigger("fv_resume")(self.resume)
        ctrl.trigger("fv_save")(self.save_scene)

    def show_error(self, message: str) -> None:
        with self.state:
            self.state.fv_error = message
            self.state.fv_notice = ""
            self.state.fv_paused = self.host.paused

    def _method_items(self) -> list[dict]:
        items = []
        for name in method_names():
            method = get_method(name)
            missing = method.weights_file is not None and not Path(method.weights_file).is_file()
            title = f"{name} (no trained weights yet)" if missing else name
            items.append({"title": title, "value": name, "props": {"disabled": missing}})
        return items

    # -- lifecycle -----------------------------------------------------------------------------

    def _on_server_ready(self, **_) -> None:
        asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        self.host.start()
        asyncio.get_running_loop().create_task(self._refresh_methods())
        request = self.initial
        if request is None and self.demo is not None:
            await self._load_demo()
        elif request is not None:
            await self.load(request)

    async def _refresh_methods(self) -> None:
        """Weights of the networks may appear while the viewer runs (training finishes): offer them then."""
        while True:
            await asyncio.sleep(METHOD_REFRESH_SECONDS)
            items = self._method_items()
            if items != self.state.fv_methods:
                with self.state:
                    self.state.fv_methods = items

    # -- loading -------------------------------------------------------------------------------

    async def upload(self, role: str, files: list[dict]) -> None:
        """Files chosen in the page: saved under the upload folder; the path field then names them."""
        try:
            path = save_uploads(files, self.upload_dir, role)
        except FuseVisError as error:
            self.show_error(str(error))
            return
        with self.state:
            self.state[f"fv_{role}_path"] = str(path)

    async def _load_from_paths(self) -> None:
        mri, pet = self.state.fv_mri_path.strip(), self.state.fv_pet_path.strip()
        if not mri or not pet:
            self.show_error("give both an MRI and a PET (upload them or type their paths on the server), then Load pair")
            return
        await self.load(PairRequest(Path(mri), Path(pet), bool(self.state.fv_already_registered)))

    async def _load_demo(self) -> None:
        self._set_phase("Building the demo MRI and PET…")
        try:
            request = await asyncio.to_thread(self.demo)
        except (FuseVisError, OSError) as error:  # OSError: the demo's folder cannot be written
            self._load_failed(f"could not build the demo: {error}")
            return
        await self.load(request)

    async def load(self, request: PairRequest) -> bool:
        """Open a pair; on any failure the page says why and the pair on display stays."""
        if self._loading:
            self.show_error("a pair is being loaded already; wait for it or cancel it")
            return False
        if self.logic.busy:
            self.show_error(f"{self.logic.busy}; load the pair once it is ready")
            return False
        self._loading = True
        self._cancel_load = threading.Event()
        with self.state:
            self.state.fv_loading = self.state.fv_cancellable = True
            self.state.fv_error = ""
            self.state.fv_mri_path, self.state.fv_pet_path = str(request.mri), str(request.pet)
            self.state.fv_already_registered = request.already_registered
        try:
            if not self.logic.prepared:
                await self.host.prepare_method(self.logic.parameters.method)
            await load_pair(self.logic, request.mri, request.pet, request.already_registered, self._cancel_load, self._set_phase)
        except LoadCancelled as cancelled:
            self._set_notice(str(cancelled))
            return False
        except FuseVisError as error:
            self._load_failed(f"could not open the pair: {error}")
            return False
        except Exception as error:  # the server keeps running and the previous pair stays
            log.exception("loading %s and %s", request.mri, request.pet)
            self._load_failed(f"could not open the pair (internal error: {error!r})")
            return False
        finally:
            self._loading = False
            with self.state:
                self.state.fv_loading = False
                self.state.fv_cancellable = self.logic.prepared
                self._set_phase_text()
        self._show_new_pair(request)
        return True

    def _load_failed(self, message: str) -> None:
        kept = "the images on display stay loaded" if self.logic.prepared else "load other images in the page"
        print(f"fusevis serve: {message} ({kept})", file=sys.stderr, flush=True)
        self.show_error(message)

    def _show_new_pair(self, request: PairRequest) -> None:
        print(f"fusevis serve: showing MRI {request.mri} and PET {request.pet}", flush=True)
        params = self.logic.parameters
        self._axis = axial_axis(volume_from_node(params.mriVolume, "MRI"))
        shape = params.fusedVolume.GetImageData().GetDimensions()[::-1]  # slices, rows and columns in array order
        self._slices = shape[self._axis]
        self._rows, self._cols = (size for axis, size in enumerate(shape) if axis != self._axis)
        self.scatter = ScatterPlot()
        self._page_update.cancel()
        self.box.hide()
        self._bind_views()
        with self.link.paused():  # turning and fitting the views moves them through slices: the Logic's slice stands
            align_with_volume([view.get_view_node() for view in self.views.values()], params.mriVolume)
            self.fitter.fit()
        centre = self._slice_centre(params.viewSlice)
        self.link.jump_to(centre)
        # The MRI and PET views show Jacobian layers, which stay black until there is a principal pixel:
        # start at the slice's centre, where the crosshair is drawn, until the mouse picks another.
        self.cursor.point_at(centre)
        self.host.resume()
        with self.state:
            # The slider's range first: a value beyond the old range would be clamped by the page.
            self.state.fv_slices = self._slices
        with self.state:
            self.state.fv_ready = True
            self.state.fv_slice = params.viewSlice
            self.state.fv_method = params.method
            self.state.fv_readout, self.state.fv_scatter, self.state.fv_notice = [], "", ""
            self.state.fv_pair = f"MRI {request.mri.name} · PET {request.pet.name}"
            self.state.fv_paused = False

    async def save_scene(self) -> Path | None:
        """Write the scene (inputs, fused, guidance and Jacobian volumes) as a .mrb into the page's folder."""
        if self.state.fv_saving:
            return None
        with self.state:
            self.state.fv_saving = True
            self.state.fv_saved = ""
        await asyncio.sleep(0.05)  # let "Saving…" reach the page: writing holds the event loop
        try:
            path = save_bundle(self.logic, self.state.fv_save_dir)
        except FuseVisError as error:
            self.show_error(str(error))
            return None
        finally:
            with self.state:
                self.state.fv_saving = False
        print(f"fusevis serve: saved the scene to {path}", flush=True)
        with self.state:
            self.state.fv_saved = str(path)
        return path

    def cancel(self) -> None:
        """Cancel the registration being run, or stop computing slices (finished ones stay)."""
        if self._loading and self._cancel_load is not None:
            self._cancel_load.set()
            self._set_phase("Cancelling the registration…")
            return
        self.host.pause()
        with self.state:
            self.state.fv_paused = True
            self._set_phase_text()

    def resume(self) -> None:
        self.host.resume()
        with self.state:
            self.state.fv_paused = False
            self.state.fv_error = ""

    def _set_phase(self, text: str) -> None:
        with self.state:
            self.state.fv_phase = text

    def _show_busy(self, text: str | None) -> None:
        """The Logic started (text) or ended (None) preparing a network on a worker thread."""
        with self.state:
            self.state.fv_busy = f"{text}…" if text else ""

    def _set_notice(self, text: str) -> None:
        with self.state:
            self.state.fv_notice = text

    def _set_phase_text(self) -> None:
        state = self.state
        if not self.logic.prepared:
            state.fv_phase = "No images loaded"
        elif self.host.paused:
            state.fv_phase = f"{self.logic.parameters.method}: paused (Resume continues)"
        elif state.fv_total and state.fv_fused_done == state.fv_total and state.fv_guidance_done == state.fv_total:
            state.fv_phase = f"{self.logic.parameters.method}: every slice fused, guidance complete"
        else:
            state.fv_phase = f"{self.logic.parameters.method}: computing slices (the slice in view first)"

    # -- views ---------------------------------------------------------------------------------

    def _bind_views(self) -> None:
        params, state = self.logic.parameters, self.state
        opacity = float(state.fv_opacity)
        for name in MAIN_VIEWS:
            show_layer(self.views[name], self.slicer.app_logic, params, LAYERS[name][state[f"fv_layer_{name}"]], opacity)
        source = state.fv_zoom_source if state.fv_zoom_source in MAIN_VIEWS else "Fused"
        show_layer(self.views[ZOOM_VIEW], self.slicer.app_logic, params, LAYERS[source][state[f"fv_layer_{source}"]], opacity)

    def _layers_changed(self, **_) -> None:
        if self.logic.prepared:
            self._bind_views()

    # Positions in the views are world RAS; pixels of the MRI are mapped to and from them by the Logic alone
    # (pixel_ras, pixel_at_ras, slice_at_ras), through the MRI's parent transform.

    def _slice_centre(self, index: int) -> np.ndarray:
        """World position of the centre pixel of MRI slice ``index``."""
        return self.logic.pixel_ras(index, self._rows // 2, self._cols // 2)

    def _slice_scrolled(self, ras) -> None:
        if not self.logic.prepared:
            return
        index = self.logic.slice_at_ras(ras)
        self.logic.set_view_slice(max(0, min(index, self._slices - 1)))
        with self.state:
            self.state.fv_slice = self.logic.parameters.viewSlice
        self._principal_to_slice(self.logic.parameters.viewSlice)
        self.host.wake()

    def _principal_to_slice(self, index: int) -> None:
        """Keep the principal pixel's row and column on a newly shown slice: the Jacobian layers hold one slice,
        and would leave the MRI and PET views black on any other.

        The newest choice is moved: a mouse position the host loop has not
        taken yet, else the principal pixel (also for a position outside the
        MRI, which the host loop would drop).
        """
        pixel = None
        pending = self.cursor.peek()
        if pending is not None:
            pixel = self.logic.pixel_at_ras(pending)
        if pixel is None:
            readout = self.logic.readout()
            if readout is None:
                return
            pixel = (readout.slice, readout.row, readout.col)
        slice_index, row, col = pixel
        if slice_index != index:
            self.cursor.point_at(self.logic.pixel_ras(index, row, col))

    def _slice_changed(self, fv_slice, **_) -> None:
        # Also called for the server's own updates of fv_slice (when the state is flushed): those match viewSlice.
        if not self.logic.prepared or int(fv_slice) == self.logic.parameters.viewSlice:
            return
        index = int(fv_slice)
        self.link.jump_to(self._slice_centre(index))
        self.logic.set_view_slice(index)
        self._principal_to_slice(index)
        self.host.wake()

    # -- parameters ----------------------------------------------------------------------------

    async def _method_changed(self, fv_method, **_) -> None:
        """Prepare the new method's networks off the event loop (the page shows it busy), then switch."""
        logic = self.logic
        if not logic.prepared or fv_method == logic.parameters.method:
            return
        try:
            await self.host.prepare_method(fv_method)
            if self.state.fv_method != fv_method:
                return  # another method was chosen meanwhile; its own change handler switches to it
            logic.set_method(fv_method)
        except FuseVisError as error:
            self.show_error(str(error))
            with self.state:
                self.state.fv_method = logic.parameters.method
            return
        self.host.resume()
        self._principal_changed(None)

    def _numbers_changed(self, fv_gamma1, fv_gamma2, fv_hood, **_) -> None:
        params = self.logic.parameters
        try:
            if float(fv_gamma1) != params.gamma1:
                params.gamma1 = float(fv_gamma1)
            if float(fv_gamma2) != params.gamma2:
                params.gamma2 = float(fv_gamma2)
            if int(fv_hood) != params.neighbourhoodSize:
                params.neighbourhoodSize = int(fv_hood)
                self._principal_changed(None)
        except (FuseVisError, ValueError) as error:
            self.show_error(str(error))

    # -- host loop callbacks -------------------------------------------------------------------

    def _principal_changed(self, seconds: float | None) -> None:
        """Show the principal pixel: crosshair, box and zoom view now; readout and scatterplot soon.

        ``seconds``: how long the Logic took for a pixel the mouse chose;
        None when the same pixel is shown again (new method, values arrived).
        The views follow every change; the page's readout and scatterplot
        are sent at most every :data:`PAGE_INTERVAL_SECONDS` (see :mod:`.throttle`).
        """
        readout = self.logic.readout() if self.logic.prepared else None
        if readout is None:
            return
        if seconds is not None:
            self._last_update_ms = seconds * 1000
            self._pixels_chosen += 1
        params = self.logic.parameters
        side = params.neighbourhoodSize
        self.crosshair.SetCrosshairRAS(*readout.ras)
        self.box.place(params.mriVolume, self._axis, readout.ijk, side)
        spacing = min(params.mriVolume.GetSpacing())
        centre_zoom(self.views[ZOOM_VIEW], readout.ras, side * spacing)
        self._page_update.request()

    def _send_readout(self) -> None:
        readout = self.logic.readout() if self.logic.prepared else None
        if readout is None:
            return
        params = self.logic.parameters
        png = self.scatter.render(
            (params.method, readout.slice), table_columns(params.scatterTable), table_columns(params.neighbourhoodTable)
        )
        with self.state:
            self.state.fv_readout = readout_rows(readout, jacobian_totals(params))
            # Counts the pixels the mouse chose, shown or skipped by the throttle (tests and benchmark wait on it).
            self.state.fv_readout_seq = self._pixels_chosen
            self.state.fv_scatter = data_url(png)
            self.state.fv_rate = (
                f"{self.host.updates_per_second:.0f} updates/s · Jacobian {(self.logic.last_jacobian_seconds or 0.0) * 1000:.1f} ms "
                f"(whole update {self._last_update_ms:.0f} ms) · "
                f"{self.cursor.skipped} stale positions skipped"
            )

    def _stepped(self, report) -> None:
        # Most steps only find the worker still busy (50 a second): then the page has nothing new.
        counts = (report.fused_slices, report.guidance_slices, report.total_slices, self.host.paused, report.method)
        if counts != self._shown_counts:
            self._shown_counts = counts
            with self.state:
                self.state.fv_fused_done = report.fused_slices
                self.state.fv_guidance_done = report.guidance_slices
                self.state.fv_total = report.total_slices
                self._set_phase_text()
        if not report.slices:
            return
        readout = self.logic.readout()
        if readout is not None and readout.slice in report.slices:
            self._principal_changed(None)  # its fused value or guidance just arrived

