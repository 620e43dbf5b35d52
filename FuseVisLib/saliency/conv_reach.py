"""How far a convolution reaches, and how the cone's rectangle passes treat the image border.

A stride-1 convolution whose padding keeps the image size is local whatever
its padding: an output pixel reads input pixels at most ``reach`` away, and
at the image border zero, constant, reflection and replication padding all
read values no farther away than that (a reflected or replicated pixel lies
between the border and the pixel it stands for). Networks written for
fusion often pad by reflection, as an ``nn.ReflectionPad2d`` before a
convolution without padding or through ``padding_mode``; with dilation the
reach is the dilation times the kernel radius; an even kernel with
``padding="same"`` pads one side one pixel more.

The cone's rectangle passes (:mod:`box_passes`) compute a convolution as a
valid convolution inside the image and pad its input only where it leaves
the image: with zeros, by reflection or by replication, the same on both
sides of each axis (a reflected or replicated border's reverse folds the
cotangent back onto the pixels it copied). A nonzero constant or uneven
padding still has a known receptive radius, which the generic crop and
lattice paths use. Circular padding (a pixel at one edge reads the other
edge) and strides (pixels computed differently by their position) are not
local in this sense.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

Reach = tuple[int, int]  # (rows, columns)
Padding = tuple[int, int, int, int]  # (left, right, top, bottom), F.pad's order

PAD_MODULES = (nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d)
_PAD_MODES = {"constant", "reflect", "replicate"}


class NotLocal(Exception):
    """The network is not made only of the local operations the saliency engine understands."""


@dataclass(frozen=True)
class ExplicitPadding:
    """A padding step before a convolution (``nn.ReflectionPad2d(1)``, ``F.pad(x, (1, 1, 1, 1), mode="reflect")``)."""

    amounts: Padding
    mode: str  # "constant", "reflect" or "replicate"
    value: float = 0.0  # of a constant padding


@dataclass(frozen=True)
class ConvReach:
    reach: Reach
    border: str  # how the image border is padded: "zeros", "reflect" or "replicate"
    off_rectangles: str | None  # why the rectangle passes cannot run it; None: they can


def module_padding(module: nn.Module) -> ExplicitPadding:
    """The padding a padding module adds."""
    if isinstance(module, nn.ReflectionPad2d):
        mode = "reflect"
    elif isinstance(module, nn.ReplicationPad2d):
        mode = "replicate"
    else:
        return ExplicitPadding(tuple(int(p) for p in module.padding), "constant", float(module.value))
    return ExplicitPadding(tuple(int(p) for p in module.padding), mode)


def function_padding(amounts, mode: str = "constant", value=None) -> ExplicitPadding:
    """The padding ``F.pad(x, amounts, mode, value)`` adds to an image tensor."""
    if mode not in _PAD_MODES:
        raise NotLocal(f"F.pad with mode {mode!r} is not local (circular padding reads the opposite edge)")
    amounts = tuple(amounts)
    if len(amounts) not in (2, 4) or not all(isinstance(p, int) for p in amounts):
        raise NotLocal(f"F.pad with amounts {amounts!r} pads more than the image's rows and columns")
    if not (value is None or isinstance(value, (int, float))):
        raise NotLocal(f"F.pad with value {value!r} pads with something other than a number")
    return ExplicitPadding(amounts + (0,) * (4 - len(amounts)), mode, float(value or 0.0))


def conv_reach(conv: nn.Conv2d, before: ExplicitPadding | None = None) -> ConvReach:
    """The reach of ``conv`` (after the padding step ``before``, if any); :class:`NotLocal` if it is not local."""
    if tuple(conv.stride) != (1, 1):
        raise NotLocal(f"convolution {conv} has a stride: pixels are not all computed alike")
    if conv.padding_mode == "circular":
        raise NotLocal(f"convolution {conv} pads circularly: a pixel at one edge reads the opposite edge")
    spans = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]  # rows, columns
    if conv.padding == "same":
        own = [(span // 2, span - span // 2) for span in spans]
    elif conv.padding == "valid":
        own = [(0, 0), (0, 0)]
    else:
        own = [(p, p) for p in conv.padding]
    extra = before.amounts if before is not None else (0, 0, 0, 0)
    # per axis (rows, columns): (before, after)
    sides = [(own[0][0] + extra[2], own[0][1] + extra[3]), (own[1][0] + extra[0], own[1][1] + extra[1])]
    if any(first + second != span for (first, second), span in zip(sides, spans)):
        raise NotLocal(f"convolution {conv} changes the image size (padding {sides} for a kernel spanning {spans} px)")
    reach = (max(sides[0]), max(sides[1]))
    if before is not None and any(own_side for axis in own for own_side in axis):
        return ConvReach(reach, "zeros", f"convolution {conv} pads both by itself and by a separate padding step")
    if before is not None and before.mode == "constant" and before.value != 0.0:
        return ConvReach(reach, "zeros", f"convolution {conv} reads a padding with the constant {before.value:g}")
    border = before.mode if before is not None and before.mode != "constant" else "zeros"
    if before is None and conv.padding_mode != "zeros":
        border = conv.padding_mode
    if any(first != second for first, second in sides):
        return ConvReach(reach, border, f"convolution {conv} pads one side more than the other")
    return ConvReach(reach, border, None)


def pooling_reach(kernel, stride, padding, dilation, name: str) -> Reach:
    """The reach of a pooling that keeps the image size (stride 1, padding kernel // 2, odd kernel)."""
    pair = lambda value: tuple(value) if isinstance(value, (tuple, list)) else (value, value)  # noqa: E731
    kernel, padding, dilation = pair(kernel), pair(padding), pair(dilation)
    stride = kernel if stride is None or stride == [] else pair(stride)  # torch's default stride is the kernel
    spans = [d * (k - 1) for d, k in zip(dilation, kernel)]
    if stride != (1, 1) or any(2 * p != span for p, span in zip(padding, spans)):
        raise NotLocal(f"{name} with kernel {kernel}, stride {stride}, padding {padding} changes the image size")
    return (padding[0], padding[1])
