"""A fusion network read as a graph of local operations whose reach is known.

The fast saliency paths need to know, for every intermediate tensor, how far
(in pixels) it lies from the inputs and from the output. ``torch.fx`` traces
the network's ``forward(mri, pet)`` into a small vocabulary:

- ``Source``: the MRI or PET input;
- ``Conv``: a stride-1 convolution that keeps the image size (reach: :mod:`conv_reach`),
  with a padding step before it folded in;
- ``Affine``: a per-channel or scalar affine map (eval-mode BatchNorm, ``x / 3``, ``x * 0.5``);
- ``Pointwise``: an elementwise nonlinearity (ReLU, LeakyReLU, tanh, ...);
- ``Combine``: ``a + b`` or ``a - b`` of two tensors;
- ``Concat``: concatenation along channels;
- ``Output``;
- ``LocalOnly``: a local operation only the generic paths run (products of two
  feature maps, sums over channels, stride-1 pooling): it counts towards the radius.

A network using anything else (global pooling, strided or circularly padded
convolutions, ...) raises :class:`NotLocal`,
and the saliency engine takes a generic exact path instead. A graph whose
convolutions the rectangle passes cannot all run (reflection padding, say)
or with a ``LocalOnly`` step still gives the receptive radius
(:attr:`LocalGraph.off_rectangles`).
"""
from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from .conv_reach import PAD_MODULES, ExplicitPadding, NotLocal, Reach, conv_reach, function_padding, module_padding, pooling_reach


@dataclass(eq=False)
class Step:
    sources: tuple[int, ...]
    reach: Reach = (0, 0)


@dataclass(eq=False)
class Source(Step):
    index: int = 0  # 0: MRI, 1: PET


@dataclass(eq=False)
class Conv(Step):
    module: nn.Conv2d | None = None
    off_rectangles: str | None = None  # why the rectangle passes cannot run it; None: they can
    border: str = "zeros"  # how the image border is padded: "zeros", "reflect" or "replicate"
    padded_by: ExplicitPadding | None = None  # a padding step before the convolution, folded into it


@dataclass(eq=False)
class Affine(Step):
    """y = forward(x), an affine map per channel or by a scalar; ``backward`` maps a cotangent."""

    forward: Callable[[torch.Tensor], torch.Tensor] | None = None
    backward: Callable[[torch.Tensor], torch.Tensor] | None = None
    # Per-channel scale when it can be folded into a preceding convolution's weight.
    channel_scale: Callable[[], torch.Tensor] | None = None


@dataclass(frozen=True)
class PointwiseBackward:
    """Autograd's own backward operation of a nonlinearity: the cotangent times its derivative.

    ``vjp(cotangent, saved)`` where ``saved`` is the step's input
    (``saves_input``) or its output, as autograd saves it. Calling autograd's
    kernel itself keeps its conventions at kinks and costs one operation
    instead of forming the derivative and multiplying.
    """

    vjp: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    saves_input: bool = False

    def derivative(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """d output / d input, elementwise."""
        saved = x if self.saves_input else y
        return self.vjp(torch.ones_like(saved), saved)


@dataclass(eq=False)
class Pointwise(Step):
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None
    backward: PointwiseBackward | None = None  # None: ask autograd for the derivative


@dataclass(eq=False)
class Combine(Step):
    subtract: bool = False


@dataclass(eq=False)
class Concat(Step):
    pass


@dataclass(eq=False)
class Output(Step):
    pass


@dataclass(eq=False)
class LocalOnly(Step):
    """A local operation the rectangle passes cannot run (a product of two feature maps, a stride-1
    pooling, a sum over channels): it adds its reach to the radius, and the network takes the crop
    and lattice paths."""

    what: str = ""


_aten = torch.ops.aten
_RELU = PointwiseBackward(lambda g, y: _aten.threshold_backward(g, y, 0))
_TANH = PointwiseBackward(_aten.tanh_backward)
_SIGMOID = PointwiseBackward(_aten.sigmoid_backward)
_IDENTITY = PointwiseBackward(lambda g, y: g)


def _leaky_relu(slope: float) -> PointwiseBackward:
    return PointwiseBackward(functools.partial(lambda g, x, s: _aten.leaky_relu_backward(g, x, s, False), s=slope), saves_input=True)


def _module_backward(module: nn.Module) -> PointwiseBackward | None:
    if type(module) is nn.ReLU:
        return _RELU
    if type(module) is nn.LeakyReLU:
        return _leaky_relu(module.negative_slope)
    if type(module) is nn.Tanh:
        return _TANH
    if type(module) is nn.Sigmoid:
        return _SIGMOID
    if type(module) in (nn.Identity, nn.Dropout, nn.Dropout2d):
        return _IDENTITY
    return None


def _function_backward(target, extra: tuple, kwargs: dict) -> PointwiseBackward | None:
    if target in (torch.relu, F.relu) and not extra and not kwargs.get("inplace"):
        return _RELU
    if target is torch.tanh and not extra and not kwargs:
        return _TANH
    if target is torch.sigmoid and not extra and not kwargs:
        return _SIGMOID
    if target is F.leaky_relu and not kwargs.get("inplace") and not (len(extra) > 1):
        slope = extra[0] if extra else kwargs.get("negative_slope", 0.01)
        return _leaky_relu(float(slope))
    return None


_POINTWISE_MODULES = (
    nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Softplus,
    nn.Hardtanh, nn.ReLU6, nn.Hardsigmoid, nn.Hardswish, nn.Mish, nn.Softsign, nn.PReLU, nn.Identity,
    nn.Dropout, nn.Dropout2d,  # identity in eval mode
)
_POINTWISE_FUNCTIONS = {
    torch.tanh, torch.sigmoid, torch.relu, torch.exp, torch.abs, torch.square,
    F.relu, F.leaky_relu, F.elu, F.selu, F.gelu, F.silu, F.softplus, F.hardtanh, F.relu6, F.mish,
}
_POINTWISE_METHODS = {"tanh", "sigmoid", "relu", "exp", "abs", "square"}
_SCALAR_AFFINE = {operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub, torch.mul, torch.div}
_ELEMENTWISE_PAIRS = {torch.maximum, torch.minimum, torch.max, torch.min}
# method name -> the same reduction as a function; over channels only, which keeps them per pixel
_CHANNEL_REDUCTIONS = {"sum": torch.sum, "mean": torch.mean, "amax": torch.amax, "amin": torch.amin}


@dataclass(eq=False)
class LocalGraph:
    """The steps of a traced network in topological order, the last one being ``Output``."""

    steps: list[Step]
    users: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.users = [[] for _ in self.steps]
        for index, step in enumerate(self.steps):
            for source in step.sources:
                self.users[source].append(index)

    @property
    def output(self) -> int:
        return len(self.steps) - 1

    def reach_from_inputs(self, only_source: int | None = None) -> list[Reach | None]:
        """Per step, how far its value lies from the inputs (None: independent of them)."""
        reach: list[Reach | None] = []
        for step in self.steps:
            if isinstance(step, Source):
                reach.append((0, 0) if only_source is None or step.index == only_source else None)
                continue
            known = [reach[s] for s in step.sources if reach[s] is not None]
            if not known:
                reach.append(None)
                continue
            reach.append((max(r[0] for r in known) + step.reach[0], max(r[1] for r in known) + step.reach[1]))
        return reach

    def reach_to_output(self) -> list[Reach | None]:
        """Per step, how far its value can lie from an output pixel it influences (None: unused)."""
        reach: list[Reach | None] = [None] * len(self.steps)
        reach[self.output] = (0, 0)
        for index in range(len(self.steps) - 1, -1, -1):
            if reach[index] is None:
                continue
            step = self.steps[index]
            needed = (reach[index][0] + step.reach[0], reach[index][1] + step.reach[1])
            for source in step.sources:
                old = reach[source]
                reach[source] = needed if old is None else (max(old[0], needed[0]), max(old[1], needed[1]))
        return reach

    @functools.cached_property
    def window_radii(self) -> list[Reach | None]:
        """Per step, the window a Jacobian image needs: its reach to the output."""
        return self.reach_to_output()

    @functools.cached_property
    def reach_to_inputs(self) -> Reach:
        """How far the output reaches into the inputs, per axis (the largest window a Jacobian image needs)."""
        used = [r for r in self.window_radii if r is not None]
        return (max(r[0] for r in used), max(r[1] for r in used))

    @functools.cached_property
    def diagonal_radii(self) -> list[Reach | None]:
        """Per step, the window a guidance value dy_p/dx_p needs: nearer than both its reach to the output and from the inputs."""
        radii: list[Reach | None] = []
        for to_output, from_inputs in zip(self.window_radii, self.reach_from_inputs()):
            if to_output is None or from_inputs is None:
                radii.append(None)
            else:
                radii.append((min(to_output[0], from_inputs[0]), min(to_output[1], from_inputs[1])))
        return radii

    @functools.cached_property
    def needs_border_mask(self) -> list[bool]:
        """Per step, whether a cotangent a convolution spreads onto it outside the image must be zeroed explicitly.

        Positions outside the image are the network's zero padding, which has no
        gradient. A pointwise step zeroes them anyway (its derivative map is
        zero-padded) and an input never passes them on, but a linear step hands
        them to its sources unchanged, and a convolution would spread them back
        into the image.
        """
        needs: list[bool] = []
        for step in self.steps:
            if isinstance(step, (Pointwise, Source)):
                needs.append(False)
            elif isinstance(step, Conv):
                needs.append(True)
            else:
                needs.append(any(needs[s] for s in step.sources))
        return needs

    @property
    def zero_padded(self) -> bool:
        """Whether every convolution pads the image border with zeros (the windowed guidance and the
        masked border passes rely on it)."""
        return all(step.border == "zeros" for step in self.steps if isinstance(step, Conv))

    @property
    def off_rectangles(self) -> str | None:
        """Why the cone's rectangle passes cannot run this network (None: they can); its reach holds either way."""
        for step in self.steps:
            if isinstance(step, Conv) and step.off_rectangles:
                return step.off_rectangles
            if isinstance(step, LocalOnly):
                return f"the rectangle passes do not run {step.what}"
        return None

    def input_radii(self) -> dict[str, int | None]:
        """Receptive radius (Chebyshev, px) of the output with respect to each input, from the architecture."""
        radii = {}
        for index, name in enumerate(("mri", "pet")):
            reach = self.reach_from_inputs(only_source=index)[self.output]
            radii[name] = None if reach is None else max(reach)
        return radii


def apply_step(step: Step, inputs: list[torch.Tensor], sources: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """One step on whole tensors, exactly as the network computes it."""
    if isinstance(step, Source):
        return sources[step.index]
    if isinstance(step, Conv):
        return step.module(inputs[0] if step.padded_by is None else padded(inputs[0], step.padded_by))
    if isinstance(step, (Affine, Pointwise)):
        return step.forward(inputs[0])
    if isinstance(step, Combine):
        return inputs[0] - inputs[1] if step.subtract else inputs[0] + inputs[1]
    if isinstance(step, Concat):
        return torch.cat(inputs, dim=1)
    if isinstance(step, Output):
        return inputs[0]
    raise TypeError(step)


def padded(value: torch.Tensor, padding: ExplicitPadding) -> torch.Tensor:
    """``value`` with a padding step applied, as the network applies it."""
    if padding.mode == "constant":
        return F.pad(value, padding.amounts, value=padding.value)
    return F.pad(value, padding.amounts, mode=padding.mode)


def _batch_norm_step(bn: nn.BatchNorm2d, source: int) -> Affine:
    if bn.running_mean is None or bn.running_var is None:
        raise NotLocal(f"{bn} has no running statistics, so it normalises over the image (a global operation)")

    def scale() -> torch.Tensor:
        factor = torch.rsqrt(bn.running_var + bn.eps)
        return factor * bn.weight if bn.weight is not None else factor

    def backward(cotangent: torch.Tensor) -> torch.Tensor:
        return cotangent * scale().view(1, -1, 1, 1)

    forward = bn
    if type(bn).forward is nn.modules.batchnorm._BatchNorm.forward:
        # The module's own eval-mode call, without the module-call overhead (a Jacobian runs dozens of them).
        def forward(x: torch.Tensor) -> torch.Tensor:
            return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)

    return Affine(sources=(source,), forward=forward, backward=backward, channel_scale=scale)


def _is_pointwise_module(module: nn.Module) -> bool:
    return isinstance(module, _POINTWISE_MODULES)


def _module_step(module: nn.Module, source: int, padding: ExplicitPadding | None = None) -> Step:
    if isinstance(module, nn.Conv2d):
        geometry = conv_reach(module, padding)
        return Conv(
            sources=(source,), reach=geometry.reach, module=module, off_rectangles=geometry.off_rectangles,
            border=geometry.border, padded_by=padding,
        )
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        dilation = getattr(module, "dilation", 1)
        reach = pooling_reach(module.kernel_size, module.stride, module.padding, dilation, type(module).__name__)
        return LocalOnly(sources=(source,), reach=reach, what=f"{type(module).__name__} (stride 1)")
    if isinstance(module, nn.BatchNorm2d):
        return _batch_norm_step(module, source)
    if _is_pointwise_module(module):
        backward = _module_backward(module)
        if getattr(module, "inplace", False):
            # Never overwrite a value another step still reads.
            return Pointwise(sources=(source,), forward=lambda x, m=module: m(x.clone()), backward=backward)
        return Pointwise(sources=(source,), forward=module, backward=backward)
    raise NotLocal(f"module {type(module).__name__} is not a local operation the saliency engine understands")


def _scalar_affine(target, node_first: bool, constant: float, source: int) -> Affine:
    if node_first:
        forward = functools.partial(lambda x, t, c: t(x, c), t=target, c=constant)
    else:
        forward = functools.partial(lambda x, t, c: t(c, x), t=target, c=constant)
    name = target.__name__
    if name in ("add",):
        backward = lambda c: c  # noqa: E731
    elif name in ("sub",):
        backward = (lambda c: c) if node_first else (lambda c: -c)
    elif name in ("mul",):
        backward = functools.partial(lambda c, k: c * k, k=constant)
    elif name in ("truediv", "div") and node_first:
        backward = functools.partial(lambda c, k: c / k, k=constant)
    else:
        raise NotLocal(f"{name} with the image in the denominator is not affine")
    return Affine(sources=(source,), forward=forward, backward=backward)


def trace(model: nn.Module) -> LocalGraph:
    """The network as a :class:`LocalGraph`; :class:`NotLocal` if it uses anything else."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as error:  # fx raises many types for untraceable control flow
        raise NotLocal(f"torch.fx cannot trace the network ({type(error).__name__}: {error})") from None
    steps: list[Step] = []
    index_of: dict[torch.fx.Node, int] = {}

    def add(node: torch.fx.Node, step: Step) -> None:
        index_of[node] = len(steps)
        steps.append(step)

    def source_of(argument) -> int:
        if not isinstance(argument, torch.fx.Node) or argument not in index_of:
            raise NotLocal(f"argument {argument!r} is not an image tensor of the network")
        return index_of[argument]

    paddings: dict[torch.fx.Node, tuple[int, ExplicitPadding]] = {}  # padding steps, folded into the convolution after them

    def padding_step(node: torch.fx.Node, padding: ExplicitPadding) -> None:
        for user in node.users:
            if user.op != "call_module" or not isinstance(model.get_submodule(user.target), nn.Conv2d):
                raise NotLocal(f"padding {node.target} is not read by convolutions alone")
        paddings[node] = (source_of(node.args[0]), padding)

    placeholders = 0
    for node in graph.nodes:
        if node.op == "placeholder":
            if placeholders >= 2:
                raise NotLocal("the network takes more than two inputs")
            add(node, Source(sources=(), index=placeholders))
            placeholders += 1
        elif node.op == "call_module":
            if len(node.args) != 1 or node.kwargs:
                raise NotLocal(f"module call {node.target} has extra arguments")
            module = model.get_submodule(node.target)
            if isinstance(module, PAD_MODULES):
                padding_step(node, module_padding(module))
            elif node.args[0] in paddings:
                source, padding = paddings[node.args[0]]
                add(node, _module_step(module, source, padding))
            else:
                add(node, _module_step(module, source_of(node.args[0])))
        elif node.op == "call_function" and node.target is F.pad:
            amounts = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
            mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")
            value = node.args[3] if len(node.args) > 3 else node.kwargs.get("value")
            padding_step(node, function_padding(amounts, mode, value))
        elif node.op == "call_function":
            add(node, _function_step(node, source_of))
        elif node.op == "call_method" and node.target in _CHANNEL_REDUCTIONS:
            add(node, _channel_reduction(node, source_of))
        elif node.op == "call_method":
            if node.target not in _POINTWISE_METHODS or len(node.args) != 1 or node.kwargs:
                raise NotLocal(f"method .{node.target}() is not a local operation the saliency engine understands")
            method = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}.get(node.target)
            add(node, Pointwise(
                sources=(source_of(node.args[0]),),
                forward=functools.partial(lambda x, name: getattr(x, name)(), name=node.target),
                backward=None if method is None else _function_backward(method, (), {}),
            ))
        elif node.op == "output":
            add(node, Output(sources=(source_of(node.args[0]),)))
        else:
            raise NotLocal(f"graph node {node.op} {node.target} (e.g. a parameter used directly) is not supported")
    if placeholders != 2:
        raise NotLocal("the network does not take exactly two inputs (mri, pet)")
    return LocalGraph(steps)


def _function_step(node: torch.fx.Node, source_of) -> Step:
    target, args, kwargs = node.target, node.args, node.kwargs
    if target in (torch.cat, torch.concat):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        if dim not in (1, -3) or set(kwargs) - {"dim"}:
            raise NotLocal("concatenation along an axis other than channels")
        return Concat(sources=tuple(source_of(a) for a in args[0]))
    if target in _POINTWISE_FUNCTIONS:
        extra = args[1:]
        if any(isinstance(a, torch.fx.Node) for a in (*extra, *kwargs.values())):
            raise NotLocal(f"{target.__name__} takes a second tensor")
        forward = functools.partial(lambda x, f, a, k: f(x, *a, **k), f=target, a=extra, k=dict(kwargs))
        return Pointwise(sources=(source_of(args[0]),), forward=forward, backward=_function_backward(target, extra, dict(kwargs)))
    if target in _SCALAR_AFFINE and len(args) == 2 and not kwargs:
        first, second = args
        first_node, second_node = isinstance(first, torch.fx.Node), isinstance(second, torch.fx.Node)
        if first_node and second_node:
            if target in (operator.add, torch.add):
                return Combine(sources=(source_of(first), source_of(second)))
            if target in (operator.sub, torch.sub):
                return Combine(sources=(source_of(first), source_of(second)), subtract=True)
            return LocalOnly(sources=(source_of(first), source_of(second)), what=f"{target.__name__} of two feature maps")
        if isinstance(second, (int, float)) and first_node:
            return _scalar_affine(target, True, float(second), source_of(first))
        if isinstance(first, (int, float)) and second_node:
            return _scalar_affine(target, False, float(first), source_of(second))
    if target in _ELEMENTWISE_PAIRS and len(args) == 2 and not kwargs and all(isinstance(a, torch.fx.Node) for a in args):
        return LocalOnly(sources=tuple(source_of(a) for a in args), what=f"{target.__name__} of two feature maps")
    if target in _CHANNEL_REDUCTIONS.values():
        return _channel_reduction(node, source_of)
    if target in (F.avg_pool2d, F.max_pool2d):
        kernel = args[1] if len(args) > 1 else kwargs.get("kernel_size")
        stride = args[2] if len(args) > 2 else kwargs.get("stride")
        padding = args[3] if len(args) > 3 else kwargs.get("padding", 0)
        dilation = kwargs.get("dilation", 1) if target is F.max_pool2d else 1
        reach = pooling_reach(kernel, stride, padding, dilation, target.__name__)
        return LocalOnly(sources=(source_of(args[0]),), reach=reach, what=f"{target.__name__} (stride 1)")
    if target is operator.neg and len(args) == 1:
        return Affine(sources=(source_of(args[0]),), forward=operator.neg, backward=operator.neg)
    name = getattr(target, "__name__", str(target))
    raise NotLocal(f"function {name} is not a local operation the saliency engine understands")


def _channel_reduction(node: torch.fx.Node, source_of) -> Step:
    """``x.sum(dim=1, keepdim=True)`` and the like: per pixel, over channels."""
    name = node.target if isinstance(node.target, str) else node.target.__name__
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    keepdim = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    if dims not in ((1,), (-3,)) or keepdim is not True or set(node.kwargs) - {"dim", "keepdim"}:
        raise NotLocal(f"{name} over anything but the channels (dim=1, keepdim=True) is not local")
    return LocalOnly(sources=(source_of(node.args[0]),), what=f"{name} over channels")
