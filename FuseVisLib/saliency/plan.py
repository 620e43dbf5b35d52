"""Which exact computation the saliency engine uses for a model, decided once per model.

Paths, fastest first (all exact):

- ``cone``: the network traces into local operations (:mod:`local_graph`).
  Jacobian images from the shrinking rectangles one output pixel depends on;
  guidance images from windowed reverse passes (:mod:`window_backward`).
- ``crop`` / ``lattice``: a finite receptive radius but an untraceable
  network, or one with layers the rectangle passes do not run (a product
  of two feature maps, uneven padding: :attr:`LocalGraph.off_rectangles`).
  Jacobian: the network run on a crop of radius r around the pixel
  (clipped at the image border). Guidance: (r+1)^2 lattice-coloured
  backward passes sharing one forward pass.
- ``whole-image`` / ``per-pixel``: no finite radius, or the radius probe
  disagreed: one whole-image backward pass per output pixel.

The decision (and the radius probe behind it) is cached per model and
redone when its parameters, buffers or layers change (:mod:`tensor_layout`).
"""
from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field

from torch import nn

from .conv_kernels import ConvKernels, prepare_conv_kernels
from .box_passes import BoxPasses
from .inputs import model_device_and_dtype
from .local_graph import LocalGraph, NotLocal, trace
from .model_mode import evaluation_mode
from .radius_probe import ProbeResult, probe_radius
from .receptive_radius import AUTO, DeclaredRadius, declared_radius
from .tensor_layout import TensorLayout

log = logging.getLogger("FuseVisLib.saliency")

CONE, CROP, LATTICE, WHOLE_IMAGE, PER_PIXEL = "cone", "crop", "lattice", "whole-image", "per-pixel"


@dataclass
class SaliencyPlan:
    declared: DeclaredRadius
    graph: LocalGraph | None
    jacobian_path: str
    guidance_path: str
    reason: str
    probe: ProbeResult | None = None
    _conv_kernels: ConvKernels | None = field(default=None, repr=False)
    _box_passes: BoxPasses | None = field(default=None, repr=False)

    @property
    def radius(self) -> int | None:
        """The receptive radius the chosen paths rely on (None for the per-pixel paths)."""
        return None if self.guidance_path == PER_PIXEL else self.declared.radius

    @property
    def probes(self) -> int | None:
        """Lattice colours (r+1)^2: backward passes a guidance image needs with this radius."""
        return None if self.radius is None else (self.radius + 1) ** 2

    def conv_kernels(self) -> ConvKernels:
        """The convolution kernels of the cone paths, built once."""
        if self._conv_kernels is None:
            self._conv_kernels = prepare_conv_kernels(self.graph)
        return self._conv_kernels

    def box_passes(self) -> BoxPasses:
        """The Jacobian cone path's passes over the rectangles, prepared per border situation, kept with the plan."""
        if self._box_passes is None:
            self._box_passes = BoxPasses(self.graph, self.conv_kernels())
        return self._box_passes


@dataclass
class _ModelPlans:
    layout: TensorLayout
    plans: dict = field(default_factory=dict)  # (declared radius, tensor contents) -> plan


_PLANS: "weakref.WeakKeyDictionary[nn.Module, _ModelPlans]" = weakref.WeakKeyDictionary()


def plan_for(model: nn.Module, radius=AUTO) -> SaliencyPlan:
    """The cached plan for ``model``, made anew in eval mode (:func:`model_mode.evaluation_mode`) when
    its parameters, buffers, layers or the radius changed. Run the plan's paths in eval mode too, except a
    replayed Jacobian (:meth:`BoxPasses.replayed`), which touches none of the model's modules."""
    declared = declared_radius(model, radius)
    cached = _PLANS.get(model)
    if cached is None or not cached.layout.describes(model):
        cached = _PLANS[model] = _ModelPlans(TensorLayout(model))  # plans for other tensors are stale
    key = (repr(declared), cached.layout.contents())
    plans = cached.plans
    if key not in plans:
        plans.clear()  # plans for older weights or radii are stale
        with evaluation_mode(model):
            plans[key] = _make_plan(model, declared)
    return plans[key]


def _make_plan(model: nn.Module, declared: DeclaredRadius) -> SaliencyPlan:
    try:
        graph, trace_note = trace(model), "traced into local operations"
    except NotLocal as reason:
        graph, trace_note = None, str(reason)
    if not declared.declared and graph is not None:
        traced = {name: r if r is not None else 0 for name, r in graph.input_radii().items()}
        declared = DeclaredRadius(traced, "the traced architecture (the model declares none)")
    if graph is not None and graph.off_rectangles:  # local, radius known, but only the generic paths run it
        graph, trace_note = None, f"the cone's rectangle passes cannot run it ({graph.off_rectangles})"
    if declared.per_input is None:
        if declared.declared:
            reason = f"no finite receptive radius ({declared.source})"
        else:
            reason = (
                f"no finite receptive radius known: {declared.source} and {trace_note}; if the network is local "
                "after all, declare its radius (model.receptive_radius = r, or radius=r) for the faster exact paths"
            )
        plan = SaliencyPlan(declared, graph, WHOLE_IMAGE, PER_PIXEL, reason)
        log.info("saliency for %s: %s", type(model).__name__, plan.reason)
        return plan
    if graph is not None:
        plan = SaliencyPlan(declared, graph, CONE, CONE, f"receptive radius {declared.per_input} px from {declared.source}; {trace_note}")
    else:
        plan = SaliencyPlan(declared, None, CROP, LATTICE, f"receptive radius {declared.per_input} px from {declared.source}; generic paths because {trace_note}")
    device, dtype = model_device_and_dtype(model)
    from .jacobian import fast_jacobian

    plan.probe = probe_radius(model, declared, lambda images, row, col: fast_jacobian(model, plan, images, row, col), device, dtype)
    if not plan.probe.agrees:
        log.warning("saliency for %s: %s", type(model).__name__, plan.probe.message)
        return SaliencyPlan(declared, graph, WHOLE_IMAGE, PER_PIXEL, plan.probe.message, plan.probe)
    plan.reason += f"; {plan.probe.message}"
    log.info("saliency for %s: %s", type(model).__name__, plan.reason)
    return plan

