"""FuseVisLogic: the MRML logic shared by the Slicer module and the browser viewer.

It needs the ``slicer`` package (the MRML scene and nodes) and nothing of
Qt. A host drives it::

    logic = FuseVisLogic(scene)                          # finds or makes the parameter node
    mri, pet = logic.load_inputs("mri.nii.gz", "pet/")   # NIfTI files or DICOM folders
    logic.register()                                     # or parameters.alreadyRegistered = True
    logic.prepare()                                      # resample, normalise, output nodes
    logic.observe_crosshair(crosshair_node)
    logic.cursor_listener = schedule_a_step              # called on every mouse move
    while logic.has_work():                              # a timer / the event loop calls this
        report = logic.step(budget_seconds=0.02)         # cursor first, else collect/start slice work

All state lives in ``logic.parameters`` (the MRML parameter node): setting
``parameters.method`` (or :meth:`set_method`, which raises for a method
without weights), ``gamma1``, ``gamma2``, ``neighbourhoodSize`` or
``device`` takes effect at once for the display and at the next step for
computing. Fusion and guidance images run on a worker thread; Jacobians
for the mouse run in :meth:`step`. Cancelling is not calling :meth:`step`
again (:meth:`cancel` also stops the running guidance image); finished
slices stay cached per method, so switching back shows them at once.
"""
from __future__ import annotations

import hashlib
import time
from concurrent.futures import wait as wait_for_future
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import vtk
from torch import nn

from FuseVisLib.device import pick_device
from FuseVisLib.errors import FuseVisError
from FuseVisLib.intensity import robust_normalise
from FuseVisLib.registration import RegistrationProgress, RegistrationResult
from FuseVisLib.registry import get_method
from FuseVisLib.saliency import guidance_rgb, scatter_data
from FuseVisLib.volume_fusion import axial_axis
from FuseVisLib.volume_io import Volume, read_volume

from . import registration_step
from .colour_maps import update_colour_node
from .crosshair import CrosshairFollower
from .input_checks import checked_pair, linear_transform_matrix
from .loading import load_volume_checked
from .memory_budget import activation_floats_per_pixel, check_memory, memory_need
from .network_cache import NetworkCache
from .output_nodes import (
    ensure_outputs,
    fill_table,
    place_single_slice,
    set_overlay_window,
    write_all_slices,
    write_slices,
)
from .parameters import OUTPUT_ROLES, FuseVisParameters, parameter_node, slices_from_text, slices_to_text
from .slice_engine import FUSE, GUIDANCE, MethodResults, SliceEngine, Task
from .volume_nodes import node_array, same_geometry

# How the inputs the networks see are made from the pair (part of the fingerprint of saved results):
# change it whenever that changes, so that results saved by an earlier version are recomputed.
INPUT_RECIPE = "PET linearly resampled onto the MRI grid; both robust_normalise'd; slices along the axial axis"

@dataclass(frozen=True)
class StepReport:
    """What one :meth:`FuseVisLogic.step` did: ``kind`` is "cursor", "fuse", "guidance", "waiting" or "idle"."""

    kind: str
    method: str
    slices: tuple[int, ...]
    fused_slices: int
    guidance_slices: int
    total_slices: int
    seconds: float

    @property
    def more(self) -> bool:
        return self.fused_slices < self.total_slices or self.guidance_slices < self.total_slices


@dataclass(frozen=True)
class PixelReadout:
    """The principal pixel: where it is and every value FuseVis shows for it (None: not computed yet)."""

    slice: int
    row: int
    col: int
    ijk: tuple[int, int, int]
    ras: tuple[float, float, float]
    method: str
    mri_value: float
    pet_value: float
    mri_input: float
    pet_input: float
    fused: float | None
    jacobian_mri: float
    jacobian_pet: float
    guidance_mri: float | None
    guidance_pet: float | None
    # Neighbourhood box in slice pixels: rows first..last, cols first..last (inclusive).
    neighbourhood: tuple[int, int, int, int]


@dataclass
class _Prepared:
    """The pair as the engine sees it, and where its slices lie in the MRI volume."""

    mri: Volume
    axis: int
    engine: SliceEngine
    fingerprint: str
    mri_to_world: np.ndarray


class FuseVisLogic:
    """Co-registration, per-slice fusion and saliency layers on an MRML scene (see the module docstring)."""

    def __init__(self, scene, node=None, background: bool = True, networks: NetworkCache | None = None) -> None:
        """``node``: the parameter node (default: the scene's FuseVis node, made if missing).
        ``background``: run fusion and guidance on a worker thread (see :mod:`.slice_engine`).
        ``networks``: share loaded, already planned networks with another Logic (e.g. after reopening a scene)."""
        self.scene = scene
        self.background = background
        self.parameters = FuseVisParameters(node if node is not None else parameter_node(scene))
        self.networks = networks if networks is not None else NetworkCache()
        self._floats_per_pixel: dict[str, float] = {}
        # What long preparation runs on another thread (None: none); see begin_preparing_method().
        self._busy: str | None = None
        self._prepared: _Prepared | None = None
        self._applied: dict[str, object] = {}
        self._guidance_peak = 0.0
        self._scatter_key: tuple | None = None
        self._readout: PixelReadout | None = None
        self._principal: tuple[str, int, int, int] | None = None
        self._last_jacobian_at_pixel = (0.0, 0.0)
        # Seconds the newest principal pixel's Jacobian images took, of the whole update (None before the first).
        self.last_jacobian_seconds: float | None = None
        # The newest error from a parameter change made through the node (e.g. a GUI), and a hook for it.
        self.last_error: str | None = None
        self.error_listener: Callable[[str], None] | None = None
        self._budget_checked: tuple | None = None
        self._crosshair = CrosshairFollower(on_move=self._cursor_moved)
        # Called (with no argument) when the cursor moved: a host schedules a step soon.
        self.cursor_listener: Callable[[], None] | None = None
        self._observer = self.parameters.node.AddObserver(vtk.vtkCommand.ModifiedEvent, self._on_parameters_modified)

    def close(self) -> None:
        """Stop the background work and observing the parameter node and the crosshair."""
        self._drop_prepared()
        self._crosshair.stop()
        if self._observer is not None:
            self.parameters.node.RemoveObserver(self._observer)
            self._observer = None

    def _drop_prepared(self) -> None:
        """Forget the prepared pair (its inputs changed): its worker stops, prepare() starts afresh."""
        if self._prepared is not None:
            self._prepared.engine.close()
        self._prepared = None

    # -- inputs --------------------------------------------------------------------------------

    def load_inputs(self, mri_path: str | Path, pet_path: str | Path) -> tuple:
        """Load MRI and PET (NIfTI files or DICOM folders) as new nodes and select them.

        Both are read and checked before any node is added, so a bad file
        leaves the scene as it was.
        """
        if Path(mri_path).resolve() == Path(pet_path).resolve():
            raise FuseVisError(f"the same file ({mri_path}) is given as MRI and as PET; give the PET as PET")
        mri_volume, pet_volume = read_volume(mri_path), read_volume(pet_path)
        mri_node = load_volume_checked(self.scene, mri_path, mri_volume)
        pet_node = load_volume_checked(self.scene, pet_path, pet_volume)
        self.set_inputs(mri_node, pet_node)
        return mri_node, pet_node

    def set_inputs(self, mri_node, pet_node) -> None:
        """Select two volume nodes as MRI and PET after checking them (FuseVisError, nothing changed)."""
        self._checked_pair(mri_node, pet_node)
        self._drop_prepared()
        with _batch_modify(self.parameters.node):
            self.parameters.mriVolume = mri_node
            self.parameters.petVolume = pet_node

    def _checked_pair(self, mri_node, pet_node) -> tuple[Volume, Volume]:
        """:func:`checked_pair`, also refusing as inputs the nodes FuseVis writes its results into."""
        return checked_pair(mri_node, pet_node, [getattr(self.parameters, role) for role in OUTPUT_ROLES])

    # -- registration --------------------------------------------------------------------------

    def registration_job(self) -> registration_step.RegistrationJob:
        """The selected pair copied out of the scene: ``job.run()`` may run on another thread."""
        mri, pet = self._checked_pair(self.parameters.mriVolume, self.parameters.petVolume)
        return registration_step.RegistrationJob(mri, pet)

    def apply_registration(self, result: RegistrationResult):
        """Put a registration result into the FuseVis transform node on the PET; returns the node."""
        params = self.parameters
        node = registration_step.apply_result(self.scene, params.mriVolume, params.petVolume, result, params.registrationTransform)
        params.registrationTransform = node
        self._drop_prepared()
        return node

    def register(
        self,
        progress: Callable[[RegistrationProgress], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ):
        """Register PET to MRI (rigid, then affine) and apply it; None when ``alreadyRegistered`` is set."""
        if self.parameters.alreadyRegistered:
            self._checked_pair(self.parameters.mriVolume, self.parameters.petVolume)
            return None
        result = self.registration_job().run(progress=progress, should_cancel=should_cancel)
        return self.apply_registration(result)

    # -- preparation ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Resample the PET onto the MRI grid, normalise both, make the output nodes.

        Every check (inputs, transforms, weights, memory at the chosen batch
        size) runs before the scene changes. Results saved in the scene for
        the same inputs (a reloaded .mrb) are taken up, not recomputed.
        """
        params = self.parameters
        if self._busy is not None:
            raise FuseVisError(f"{self._busy}; open the pair again once it is ready")
        mri, pet = self._checked_pair(params.mriVolume, params.petVolume)
        matrix = registration_step.pet_sampling_matrix(params.mriVolume, params.petVolume)
        if self._prepared is not None:
            self._prepared.engine.wait_for_planning()  # the memory probe runs a network here
        self._check_memory(mri, params.method, params.batchSize)
        from FuseVisLib.registration import resample_to_reference

        pet_on_mri = resample_to_reference(pet, mri, matrix)
        if not np.any(pet_on_mri.array):
            raise FuseVisError(
                "the PET does not overlap the MRI with the current transform; register the pair "
                "(untick 'already registered') or check that both show the same patient"
            )
        axis = axial_axis(mri)
        mri_input = np.moveaxis(robust_normalise(mri.array), axis, 0)
        pet_input = np.moveaxis(robust_normalise(pet_on_mri.array), axis, 0)
        fingerprint = _fingerprint(mri_input, axis)
        mri_to_world = linear_transform_matrix(params.mriVolume.GetParentTransformNode(), "MRI")
        resumable = (
            fingerprint == params.resultsInputs and self._outputs_match(mri) and _same_pet_on_mri_grid(params.petOnMriGrid, pet_on_mri)
        )
        previous, self._prepared = self._prepared, None
        if resumable and previous is not None and previous.fingerprint == fingerprint:
            # The same pair again: keep the engine with every method's finished slices.
            self._prepared = _Prepared(mri, axis, previous.engine, fingerprint, mri_to_world)
            return
        # From here on the scene changes; parameter events must not reach the previous pair's state.
        if previous is not None:
            previous.engine.close()
        engine = SliceEngine(mri_input, pet_input, self.networks, params.device, self.background)
        if not resumable:
            ensure_outputs(self.scene, params, mri, pet_on_mri)
        self._prepared = _Prepared(mri, axis, engine, fingerprint, mri_to_world)
        with _batch_modify(params.node):
            if resumable:
                self._adopt_saved_results()
            else:
                params.resultsInputs = fingerprint
                params.resultsMethod = params.method
                params.fusedSlices = params.guidanceSlices = ""
            if not 0 <= params.viewSlice < engine.shape[0]:
                params.viewSlice = engine.shape[0] // 2
        self._applied = params.values()
        self._principal = self._readout = self._scatter_key = None
        self._guidance_peak = self._peak_guidance(engine.results(params.method))

    def _outputs_match(self, mri: Volume) -> bool:
        params = self.parameters
        roles = ("fusedVolume", "guidanceMriVolume", "guidancePetVolume", "guidanceRgbVolume")
        return all(getattr(params, role) is not None and same_geometry(mri, getattr(params, role)) for role in roles)

    def _adopt_saved_results(self) -> None:
        params = self.parameters
        prepared = self._prepared
        count = prepared.engine.shape[0]

        def slices_of(role: str) -> np.ndarray:
            return np.array(np.moveaxis(node_array(getattr(params, role)), prepared.axis, 0), dtype=np.float32)

        results = MethodResults(
            fused=slices_of("fusedVolume"),
            guidance_mri=slices_of("guidanceMriVolume"),
            guidance_pet=slices_of("guidancePetVolume"),
            fused_done=slices_from_text(params.fusedSlices, count),
            guidance_done=slices_from_text(params.guidanceSlices, count),
        )
        prepared.engine.adopt(params.resultsMethod, results)
        if params.resultsMethod != params.method:
            self._show_method(params.method)

    def _check_memory(self, mri: Volume, method: str, batch_size: int) -> None:
        device = pick_device(self.parameters.device)
        if method not in self._floats_per_pixel:
            self._floats_per_pixel[method] = activation_floats_per_pixel(self._model(method, str(device)))
        axis = axial_axis(mri)
        slice_pixels = mri.array.size // mri.array.shape[axis]
        need = memory_need(mri.array.size, slice_pixels, batch_size, self._floats_per_pixel[method], device, self.parameters.memoryLimitGB)
        check_memory(need, mri.shape_ijk, batch_size, method)
        self._budget_checked = (method, batch_size, str(device), self.parameters.memoryLimitGB)

    # -- preparing a network -----------------------------------------------------------------------

    @property
    def busy(self) -> str | None:
        """What the Logic is preparing on another thread (e.g. planning a network), or None when it is ready.

        While busy, :meth:`step` and the principal pixel wait: no network
        runs on the host's thread, and nothing is computed with a network
        that is half loaded or half planned.
        """
        return self._busy

    def method_ready(self, method: str) -> bool:
        """True if ``method``'s networks are loaded and planned for saliency (its first Jacobian is fast)."""
        device = str(pick_device(self.parameters.device))
        return self.networks.is_warm(method, device) and method in self._floats_per_pixel

    def begin_preparing_method(self, method: str) -> Callable[[], None] | None:
        """Start making ``method`` ready; returns the slow part to run on any thread (None: ready already).

        Loading the weights, planning the saliency of both copies of the
        network (a trace and a receptive-radius probe: seconds on a CPU) and
        measuring its memory need take too long for a host's event loop.
        This call, on the host's thread, checks the method, marks the Logic
        :attr:`busy` and stops the worker's running guidance image (it is
        redone later); the returned function does the rest without touching
        the scene, so it may run on a worker thread. Call
        :meth:`end_preparing_method` on the host's thread afterwards, also
        when the function raised (e.g. FuseVisError: no weights).
        """
        get_method(method)
        if self._busy is not None:
            raise FuseVisError(f"{self._busy}; try again once it is ready")
        device = str(pick_device(self.parameters.device))
        if self.method_ready(method):
            return None
        self._busy = f"Preparing {method} for saliency (once per method; a network takes seconds)"
        running = self._prepared.engine.stop_running() if self._prepared is not None else None
        networks, floats = self.networks, self._floats_per_pixel

        def prepare() -> None:
            if running is not None:
                wait_for_future([running])  # no network may run while another is planned
            model = networks.main(method, device)
            networks.worker(method, device)
            networks.warm_up(method, device)
            if method not in floats:
                floats[method] = activation_floats_per_pixel(model)

        return prepare

    def end_preparing_method(self) -> None:
        """The preparation started by :meth:`begin_preparing_method` ended (finished or failed)."""
        self._busy = None

    def prepare_method(self, method: str) -> None:
        """Make ``method`` ready for saliency on this thread (scripts; hosts with an event loop use
        :meth:`begin_preparing_method` and run the slow part elsewhere)."""
        work = self.begin_preparing_method(method)
        if work is None:
            return
        try:
            work()
        finally:
            self.end_preparing_method()

    def _model(self, method: str, device: str | None = None) -> nn.Module:
        return self.networks.main(method, device if device is not None else self.parameters.device)

    # -- stepping ------------------------------------------------------------------------------

    @property
    def prepared(self) -> bool:
        return self._prepared is not None

    def has_work(self) -> bool:
        """True while a cursor move waits, a task runs, or the current method has slices left."""
        if self._prepared is None:
            return False
        engine = self._prepared.engine
        return self._crosshair.pending() or engine.busy or not engine.results(self.parameters.method).complete

    def set_view_slice(self, index: int) -> None:
        """The axial slice the user looks at (0-based along the slice axis): its work comes first."""
        self.parameters.viewSlice = int(index)

    def step(self, budget_seconds: float = 0.05) -> StepReport:
        """One small unit of work, returning within about ``budget_seconds`` (plus one Jacobian).

        The newest cursor position goes first. Otherwise finished slice work
        is collected into the output nodes and the next task is started (on
        the worker thread in background mode); a task that ends within the
        budget is collected in the same step. ``kind`` of the report:
        "cursor", "fuse" or "guidance" (slices written), "waiting" (work
        goes on, e.g. a guidance image or planning a network on the worker
        thread: step again) or "idle" (nothing left). A step waits for the
        worker rather than returning at once, so a host may call it in a
        tight loop without spinning the CPU.
        """
        started = time.perf_counter()
        prepared = self._require_prepared()
        if self._busy is not None:
            return self._report("waiting", (), started)
        if self._crosshair.pending() and self.update_principal_pixel():
            return self._report("cursor", (), started)
        engine = prepared.engine
        finished = engine.collect()
        if not engine.busy:
            self._submit_next()
            finished += engine.collect()  # a task run inline (no worker thread) is finished already
        if not finished and engine.busy:
            # Wait (not spin) for the running job, up to the budget.
            finished = engine.collect(timeout=budget_seconds - (time.perf_counter() - started))
        for task in finished:
            self._write_task(task)
        current = [task for task in finished if task.method == self.parameters.method]
        if current:
            return self._report(current[-1].kind, tuple(s for task in current for s in task.slices), started)
        return self._report("waiting" if self.has_work() else "idle", (), started)

    def _submit_next(self) -> None:
        params = self.parameters
        method = params.method
        budget_key = (method, params.batchSize, str(pick_device(params.device)), params.memoryLimitGB)
        if budget_key != self._budget_checked:
            self._check_memory(self._prepared.mri, method, params.batchSize)
        task = self._prepared.engine.next_task(method, params.viewSlice, params.batchSize)
        if task is not None:
            self._prepared.engine.submit(task)

    def cancel(self) -> None:
        """Stop the task running in the background (finished slices stay); stepping again resumes."""
        if self._prepared is not None:
            self._prepared.engine.cancel()

    def run_to_completion(self, progress: bool = True, should_cancel: Callable[[], bool] | None = None) -> None:
        """Step until every slice of the current method is fused and has guidance (scripts, tests)."""
        from tqdm import tqdm

        self._require_prepared()
        results = self._prepared.engine.results(self.parameters.method)
        total = 2 * results.fused_done.size
        with tqdm(total=total, desc=f"FuseVis {self.parameters.method}", disable=not progress, leave=False) as bar:
            while self.has_work():
                if should_cancel is not None and should_cancel():
                    self.cancel()
                    return
                self.step(budget_seconds=1.0)
                bar.n = int(results.fused_done.sum() + results.guidance_done.sum())
                bar.refresh()

    def _report(self, kind: str, slices: tuple[int, ...], started: float) -> StepReport:
        method = self.parameters.method
        results = self._prepared.engine.results(method)
        return StepReport(
            kind, method, slices, int(results.fused_done.sum()), int(results.guidance_done.sum()),
            int(results.fused_done.size), time.perf_counter() - started,
        )

    def _require_prepared(self) -> _Prepared:
        if self._prepared is None:
            raise FuseVisError("FuseVis is not prepared: select MRI and PET, register them, then call prepare()")
        return self._prepared

    def _write_task(self, task: Task) -> None:
        """Show a finished task's slices, if they belong to the method on display (else they wait in the cache)."""
        params = self.parameters
        if task.method != params.method:
            return
        kind, slices = task.kind, task.slices
        prepared = self._prepared
        results = prepared.engine.results(params.method)
        with _batch_modify(params.node):
            if kind == FUSE:
                write_slices(params.fusedVolume, prepared.axis, slices, results.fused[slices])
                params.fusedSlices = slices_to_text(results.fused_done)
            else:
                write_slices(params.guidanceMriVolume, prepared.axis, slices, results.guidance_mri[slices])
                write_slices(params.guidancePetVolume, prepared.axis, slices, results.guidance_pet[slices])
                write_slices(params.guidanceRgbVolume, prepared.axis, slices, self._rgb(results, slices))
                params.guidanceSlices = slices_to_text(results.guidance_done)
                peak = max(self._guidance_peak, float(np.abs(results.guidance_mri[slices]).max()), float(np.abs(results.guidance_pet[slices]).max()))
                if peak != self._guidance_peak:
                    self._guidance_peak = peak
                    self._set_guidance_windows()
        if kind == GUIDANCE and self._readout is not None and self._readout.slice in slices:
            self._update_scatter(self._readout.slice, self._readout.row, self._readout.col)

    def _rgb(self, results: MethodResults, slices: list[int]) -> np.ndarray:
        """Guidance RGB of ``slices`` as 8-bit colour (paper 3.2.3, gamma2 on the guidance channels)."""
        gamma = self.parameters.gamma2
        rgb = np.stack([guidance_rgb(results.guidance_mri[s], results.guidance_pet[s], results.fused[s], gamma) for s in slices])
        return np.round(rgb * 255).astype(np.uint8)

    def _set_guidance_windows(self) -> None:
        for role in ("guidanceMriVolume", "guidancePetVolume"):
            set_overlay_window(getattr(self.parameters, role), self._guidance_peak)

    @staticmethod
    def _peak_guidance(results: MethodResults) -> float:
        done = results.guidance_done
        if not done.any():
            return 0.0
        return float(max(np.abs(results.guidance_mri[done]).max(), np.abs(results.guidance_pet[done]).max()))

    # -- parameters ----------------------------------------------------------------------------

    def set_method(self, method: str) -> None:
        """Switch the fusion method (FuseVisError, nothing changed, if it is unknown, has no weights or the
        Logic is :attr:`busy`). Prepare it first (:meth:`begin_preparing_method`) so that this is quick."""
        get_method(method)
        if self._busy is not None:
            raise FuseVisError(f"{self._busy}; choose the method again once it is ready")
        self._model(method)
        self.parameters.method = method

    def _on_parameters_modified(self, _node, _event) -> None:
        if self._prepared is None:
            return
        previous = dict(self._applied)
        try:
            self._apply_parameters()
        except FuseVisError as error:
            # A change made through the node has no caller to raise to: undo it and tell the host.
            self.last_error = str(error)
            self._applied = previous
            with _batch_modify(self.parameters.node):
                for name in ("method", "device"):
                    setattr(self.parameters, name, previous[name])
            if self.error_listener is not None:
                self.error_listener(self.last_error)

    def _apply_parameters(self) -> None:
        params = self.parameters
        current = params.values()
        changed = {name for name, value in current.items() if self._applied.get(name) != value}
        if "method" in changed:
            get_method(current["method"])
            self._model(current["method"], current["device"])
        if "device" in changed:
            pick_device(current["device"])
        self._applied = current
        if "method" in changed:
            self._show_method(current["method"])
        if "device" in changed:
            self._prepared.engine.set_device(current["device"])
        if "gamma1" in changed:
            update_colour_node(params.jacobianColors, current["gamma1"])
        if "gamma2" in changed:
            update_colour_node(params.guidanceColors, current["gamma2"])
            self._rewrite_rgb()
        if "neighbourhoodSize" in changed and self._readout is not None:
            self._update_scatter(self._readout.slice, self._readout.row, self._readout.col)
            self._readout = self._pixel_readout(self._readout.slice, self._readout.row, self._readout.col, *self._last_jacobian_at_pixel)

    def _show_method(self, method: str) -> None:
        """Fill the output volumes from ``method``'s cache (zeros where it has no result yet)."""
        get_method(method)
        params = self.parameters
        prepared = self._prepared
        results = prepared.engine.results(method)
        with _batch_modify(params.node):
            write_all_slices(params.fusedVolume, prepared.axis, results.fused)
            write_all_slices(params.guidanceMriVolume, prepared.axis, results.guidance_mri)
            write_all_slices(params.guidancePetVolume, prepared.axis, results.guidance_pet)
            params.resultsMethod = method
            params.fusedSlices = slices_to_text(results.fused_done)
            params.guidanceSlices = slices_to_text(results.guidance_done)
            self._applied["method"] = method
        self._rewrite_rgb()
        self._guidance_peak = self._peak_guidance(results)
        self._set_guidance_windows()
        self._scatter_key = None
        if self._readout is not None:
            # The principal pixel stays; its Jacobians are the new method's.
            self._show_principal(self._readout.slice, self._readout.row, self._readout.col)

    def _rewrite_rgb(self) -> None:
        prepared = self._prepared
        results = prepared.engine.results(self.parameters.method)
        rgb = np.zeros((*results.fused.shape, 3), dtype=np.uint8)
        done = [int(s) for s in np.flatnonzero(results.guidance_done)]
        if done:
            rgb[done] = self._rgb(results, done)
        write_all_slices(self.parameters.guidanceRgbVolume, prepared.axis, rgb)

    # -- crosshair and principal pixel -----------------------------------------------------------

    def observe_crosshair(self, crosshair_node) -> None:
        """Follow ``crosshair_node``'s cursor: each step shows the Jacobians of the newest position."""
        self._crosshair.observe(crosshair_node)

    @property
    def skipped_positions(self) -> int:
        """Cursor positions overwritten by newer ones before they were shown (stale, never computed)."""
        return self._crosshair.skipped

    def _cursor_moved(self) -> None:
        if self.cursor_listener is not None:
            self.cursor_listener()

    def update_principal_pixel(self) -> bool:
        """Show the Jacobians for the newest cursor position; False if none waits or nothing changed."""
        position = self._crosshair.take()
        if position is None or self._prepared is None:
            return False
        pixel = self.pixel_at_ras(position)
        if pixel is None:
            return False
        return self._show_principal(*pixel)

    def pixel_at_ras(self, ras) -> tuple[int, int, int] | None:
        """(slice, row, col) of the MRI voxel at world position ``ras``, or None outside the MRI."""
        prepared = self._require_prepared()
        kji = self._voxel_at_ras(ras)
        if np.any(kji < 0) or np.any(kji >= prepared.mri.array.shape):
            return None
        in_slice = [int(v) for axis, v in enumerate(kji) if axis != prepared.axis]
        return int(kji[prepared.axis]), in_slice[0], in_slice[1]

    def slice_at_ras(self, ras) -> int:
        """Index of the MRI slice whose plane goes through world position ``ras`` (also beyond the first or last)."""
        return int(self._voxel_at_ras(ras)[self._require_prepared().axis])

    def _voxel_at_ras(self, ras) -> np.ndarray:
        """(k, j, i) of the MRI voxel nearest world position ``ras``, inside the MRI or not."""
        prepared = self._require_prepared()
        local = np.linalg.inv(prepared.mri_to_world) @ np.append(np.asarray(ras, dtype=np.float64), 1.0)
        return np.rint(np.linalg.inv(prepared.mri.ijk_to_ras) @ local)[:3].astype(int)[::-1]

    def set_principal_pixel(self, slice_index: int, row: int, col: int) -> bool:
        """Make (slice, row, col) the principal pixel directly (hosts that pick pixels themselves)."""
        shape = self._require_prepared().engine.shape
        if not (0 <= slice_index < shape[0] and 0 <= row < shape[1] and 0 <= col < shape[2]):
            raise FuseVisError(f"pixel ({slice_index}, {row}, {col}) is outside the {shape[0]}x{shape[1]}x{shape[2]} slices of the MRI")
        return self._show_principal(slice_index, row, col)

    def _show_principal(self, slice_index: int, row: int, col: int) -> bool:
        method = self.parameters.method
        key = (method, slice_index, row, col)
        if key == self._principal or self._busy is not None:
            return False
        prepared = self._prepared
        params = self.parameters
        started = time.perf_counter()
        j_mri, j_pet = prepared.engine.jacobian(method, slice_index, row, col)
        self.last_jacobian_seconds = time.perf_counter() - started
        # Both layers share one window, so their colours compare.
        magnitude = max(float(np.abs(j_mri).max()), float(np.abs(j_pet).max()))
        with _batch_modify(params.node):
            for role, image in (("jacobianMriVolume", j_mri), ("jacobianPetVolume", j_pet)):
                node = getattr(params, role)
                place_single_slice(node, prepared.mri.ijk_to_ras, prepared.axis, slice_index, image)
                set_overlay_window(node, magnitude)
            params.viewSlice = slice_index
        self._principal = key
        self._last_jacobian_at_pixel = (float(j_mri[row, col]), float(j_pet[row, col]))
        self._readout = self._pixel_readout(slice_index, row, col, *self._last_jacobian_at_pixel)
        self._update_scatter(slice_index, row, col)
        return True

    def readout(self) -> PixelReadout | None:
        """Everything about the principal pixel, or None before the first one."""
        if self._readout is not None:
            # Fused and guidance values may have been computed since the pixel was chosen.
            self._readout = self._pixel_readout(self._readout.slice, self._readout.row, self._readout.col, *self._last_jacobian_at_pixel)
        return self._readout

    def pixel_ras(self, slice_index: float, row: float, col: float) -> np.ndarray:
        """World position (RAS, mm, through the MRI's parent transform) of pixel (slice, row, col); the inverse
        of :meth:`pixel_at_ras`. Any coordinates, also fractional or outside the MRI."""
        prepared = self._require_prepared()
        kji = [row, col]
        kji.insert(prepared.axis, slice_index)
        local = prepared.mri.ijk_to_ras @ np.array([*kji[::-1], 1.0], dtype=np.float64)
        return (prepared.mri_to_world @ local)[:3]

    def _pixel_readout(self, slice_index: int, row: int, col: int, j_mri: float, j_pet: float) -> PixelReadout:
        prepared = self._prepared
        params = self.parameters
        results = prepared.engine.results(params.method)
        kji = [row, col]
        kji.insert(prepared.axis, slice_index)
        ijk = tuple(int(v) for v in kji[::-1])
        ras = self.pixel_ras(slice_index, row, col)
        guided = bool(results.guidance_done[slice_index])
        pet_grid = node_array(params.petOnMriGrid)
        return PixelReadout(
            slice=slice_index, row=row, col=col, ijk=ijk, ras=tuple(float(v) for v in ras[:3]), method=params.method,
            mri_value=float(prepared.mri.array[tuple(kji)]),
            pet_value=float(pet_grid[tuple(kji)]),
            mri_input=float(prepared.engine.mri[slice_index, row, col]),
            pet_input=float(prepared.engine.pet[slice_index, row, col]),
            fused=float(results.fused[slice_index, row, col]) if results.fused_done[slice_index] else None,
            jacobian_mri=j_mri, jacobian_pet=j_pet,
            guidance_mri=float(results.guidance_mri[slice_index, row, col]) if guided else None,
            guidance_pet=float(results.guidance_pet[slice_index, row, col]) if guided else None,
            neighbourhood=self._neighbourhood_box(row, col),
        )

    def _neighbourhood_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        half = self.parameters.neighbourhoodSize // 2
        rows, cols = self._prepared.engine.shape[1:]
        return max(0, row - half), min(rows - 1, row + half), max(0, col - half), min(cols - 1, col + half)

    def _update_scatter(self, slice_index: int, row: int, col: int) -> None:
        """Scatterplot tables: every pixel of the slice, and the principal pixel's neighbourhood (paper 3.2.4)."""
        params = self.parameters
        results = self._prepared.engine.results(params.method)
        if not results.guidance_done[slice_index]:
            # Guidance of this slice is not computed yet: an empty plot rather than another slice's points.
            for table in (params.scatterTable, params.neighbourhoodTable):
                fill_table(table, np.zeros(0), np.zeros(0))
            self._scatter_key = None
            return
        points = scatter_data(
            results.guidance_mri[slice_index], results.guidance_pet[slice_index], (row, col), params.neighbourhoodSize // 2
        )
        slice_key = (params.method, slice_index)
        if slice_key != self._scatter_key:
            fill_table(params.scatterTable, points.mri, points.pet)
            self._scatter_key = slice_key
        fill_table(params.neighbourhoodTable, points.mri[points.neighbourhood], points.pet[points.neighbourhood])

    # -- scene files ---------------------------------------------------------------------------

    def save_scene(self, path: str | Path) -> Path:
        """Save the scene with every output as a .mrb bundle."""
        from .scene_files import save_scene

        return save_scene(self.scene, path)


class _batch_modify:
    """One ModifiedEvent for many parameter changes (StartModify/EndModify)."""

    def __init__(self, node) -> None:
        self.node = node

    def __enter__(self) -> None:
        self._was = self.node.StartModify()

    def __exit__(self, *exc) -> None:
        self.node.EndModify(self._was)


def _fingerprint(mri_input: np.ndarray, axis: int) -> str:
    """Identifies the normalised MRI the networks see; with :func:`_same_pet_on_mri_grid`, saved results
    are taken up only for the very same inputs."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"{INPUT_RECIPE}:{mri_input.shape}:{axis}".encode())
    digest.update(np.ascontiguousarray(mri_input).tobytes())
    return digest.hexdigest()


def _same_pet_on_mri_grid(saved_node, pet_on_mri: Volume) -> bool:
    """Whether the PET resampled now equals the one saved with the results, within a tolerance.

    Not compared bit for bit: a scene written and read back keeps every voxel, but the geometry moves
    in its last bits (1e-14 mm; ``same_geometry`` allows 1e-6), and resampling a PET of large values
    (Bq/ml) through it moves them by a few 1e-8 relative. A different PET or registration moves them by
    far more, and so does another geometry (an axis stored the other way round is one): recomputed.
    Compared a slice at a time in the arrays' float32: no whole-volume copies beyond the memory budget.
    """
    if saved_node is None or not same_geometry(pet_on_mri, saved_node):  # same_geometry compares the shapes too
        return False
    pet = pet_on_mri.array
    limit = PET_GRID_TOLERANCE * max(float(pet.max()), -float(pet.min()), 1e-30)
    return all(float(np.abs(saved - now).max()) <= limit for saved, now in zip(node_array(saved_node), pet))


# Relative to the PET's largest value: float32 holds 6e-8; geometry noise moved the resampled PET by about 3e-8.
PET_GRID_TOLERANCE = 1e-6
