"""Convolution kernels prepared once per model for the cone paths, and the convolution routine each call gets.

Reverse passes. A convolution's reverse pass is a transposed convolution. An
eval-mode BatchNorm right after a convolution is a per-channel scale s and
shift t, folded into that convolution's kernel (w s) so the reverse pass
skips it, and for the Jacobian's forward pass on rectangles into its bias
too (b s + t): the Jacobians stay as near the float64 network as with the
BatchNorm applied after the convolution. Two forms:

- windows (guidance images, thousands of them batched): a plain convolution
  with the flipped, transposed kernel, whose padding crops each window;
- rectangles (one Jacobian image): a transposed convolution that scatters
  each cotangent pixel over the kernel's footprint, so it never multiplies
  the zeros around a small rectangle (a plain convolution of a 5x5 cotangent
  with a 9x9 kernel would compute 13x13 outputs from mostly zero padding).

The convolutions that read the inputs directly end the reverse pass: each of
their outputs is one long dot product over all channels and taps that
yields a final Jacobian or guidance value. Float32 accumulates those least
accurately (about 1e-6 for trained MaskNet, against 2e-7 for autograd's own
backward pass), so they run in float64, at next to no cost: they have one or
two output channels.

Which routine for a reverse pass on a rectangle (CPU, one thread, measured
on the four networks at 256x256): oneDNN needs channels-last tensors *and*
kernels (a kernel in any other layout is copied on every call) and then
wins, but spends about 50 us setting up each call; ATen's native routine
wins for a one-pixel rectangle (the layer next to the output pixel, 71 -> 8
us) and is the only one for float64. The forward pass on rectangles runs
channels-last too (5-15% faster over a whole Jacobian, measured interleaved
on the four networks), and its activations stay so, which is the layout the
reverse pass reads them in; small convolutions with kernels wider than 3x3
go to ATen's im2col routine instead of oneDNN (see
:func:`_im2col_is_faster`). Either routine
rounds a little differently from the whole-image pass: the Jacobians move
by a few 1e-7, and measured against the same network in float64 they stay
nearer than autograd's own float32 ones (``fusevis bench``,
``max_abs_error_float64``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .local_graph import Affine, Conv, LocalGraph


@dataclass(frozen=True)
class ConvKernels:
    kernels: dict[int, torch.Tensor]  # convolution step -> flipped, transposed kernel (BatchNorm folded in), windows
    weights: dict[int, torch.Tensor]  # convolution step -> its own kernel (BatchNorm folded in), rectangles
    forward_weights: dict[int, torch.Tensor]  # convolution step -> its own kernel (BatchNorm folded in), for the forward pass (im2col)
    channels_last_weights: dict[int, torch.Tensor]  # the same kernels channels-last, for the forward pass (oneDNN)
    biases: dict[int, torch.Tensor | None]  # convolution step -> its bias (BatchNorm folded in)
    groups: dict[int, int]  # convolution step -> its groups
    dilations: dict[int, tuple[int, int]]  # convolution step -> its dilation (rows, columns)
    folded_affines: set[int]  # affine steps folded into the convolution before them: values and cotangents pass through
    precise: set[int]  # convolution steps reading the inputs directly: float64 in reverse
    # convolution step -> (kh, kw) as plain ints: read off a kernel inside a traced pass, they would be
    # recorded as three operations each
    kernel_sizes: dict[int, tuple[int, int]]

    def transposed_convolution(self, step: int, groups: int, cotangent: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
        """The reverse pass of convolution ``step`` on windows, widened by ``padding`` minus the kernel radius."""
        dilation = self.dilations[step]
        if step in self.precise:
            return F.conv2d(cotangent.double(), self.kernels[step], padding=padding, dilation=dilation, groups=groups).to(cotangent.dtype)
        return F.conv2d(cotangent, self.kernels[step], padding=padding, dilation=dilation, groups=groups)

    def scattered(self, step: int, cotangent: torch.Tensor) -> torch.Tensor:
        """The reverse pass of convolution ``step`` on a rectangle, over the rectangle widened by the kernel radius."""
        weight, groups, dilation = self.weights[step], self.groups[step], self.dilations[step]
        precise = step in self.precise
        value = cotangent.double() if precise else cotangent
        if groups == 1 and value.device.type == "cpu" and (precise or value.shape[-2] * value.shape[-1] == 1):
            result = torch._C._nn.slow_conv_transpose2d(value, weight, self.kernel_sizes[step], dilation=dilation)
        else:
            # Channels-last is what makes ATen hand a transposed convolution to oneDNN.
            result = F.conv_transpose2d(in_layout(value, torch.channels_last), weight, groups=groups, dilation=dilation)
        return result.to(cotangent.dtype) if precise else result

    def valid(self, step: int, value: torch.Tensor) -> torch.Tensor:
        """Convolution ``step`` without padding: ``value`` already holds the border's zeros."""
        weight, bias, groups, dilation = self.forward_weights[step], self.biases[step], self.groups[step], self.dilations[step]
        if groups == 1 and dilation == (1, 1) and value.device.type == "cpu" and _im2col_is_faster(value, weight):
            return torch.ops.aten._slow_conv2d_forward(in_layout(value, torch.contiguous_format), weight, self.kernel_sizes[step], bias, (1, 1), (0, 0))
        return F.conv2d(in_layout(value, torch.channels_last), self.channels_last_weights[step], bias, dilation=dilation, groups=groups)


def in_layout(value: torch.Tensor, layout: torch.memory_format) -> torch.Tensor:
    """``value`` in ``layout``, converted only if it is not: a traced pass then records no conversion
    that does nothing (a few dozen per Jacobian, each still a dispatched operation)."""
    return value if value.is_contiguous(memory_format=layout) else value.contiguous(memory_format=layout)


def _im2col_is_faster(value: torch.Tensor, weight: torch.Tensor) -> bool:
    # For kernels wider than 3x3 ATen hands every convolution to oneDNN, whose
    # set-up (50-70 us) dwarfs a small rectangle's work: ATen's own im2col
    # routine takes 22 us for DeepFuse's 1 -> 16 channel 5x5 kernel on a 21x21
    # output (oneDNN 74 us) and 49 us for 32 -> 16 channels on 5x5 (86 us);
    # from about 4 M multiply-adds on (64 -> 32 channels, 5x5, 9x9 output:
    # 208 against 187 us) oneDNN is faster. Measured on one thread.
    rows, cols = value.shape[-2] - weight.shape[-2] + 1, value.shape[-1] - weight.shape[-1] + 1
    return weight.shape[-1] * weight.shape[-2] > 9 and rows * cols * weight.numel() <= IM2COL_MULTIPLY_ADDS


IM2COL_MULTIPLY_ADDS = 3_000_000


def prepare_conv_kernels(graph: LocalGraph) -> ConvKernels:
    weights: dict[int, torch.Tensor] = {}
    forward_weights, biases, groups, dilations = {}, {}, {}, {}
    folded: set[int] = set()
    for index, step in enumerate(graph.steps):
        if isinstance(step, Conv):
            weight = step.module.weight.detach()
            weights[index] = weight
            forward_weights[index] = weight
            biases[index] = None if step.module.bias is None else step.module.bias.detach()
            groups[index] = step.module.groups
            dilations[index] = tuple(int(d) for d in step.module.dilation)
    for index, step in enumerate(graph.steps):
        if isinstance(step, Affine) and step.channel_scale is not None:
            source = step.sources[0]
            if isinstance(graph.steps[source], Conv) and graph.users[source] == [index]:
                scale = step.channel_scale().detach()
                # Both passes: conv(x, w s) + (b s + t), with t the map's value at zero.
                weights[source] = forward_weights[source] = weights[source] * scale.view(-1, *([1] * (weights[source].dim() - 1)))
                with torch.no_grad():
                    shift = step.forward(weights[source].new_zeros(1, scale.numel(), 1, 1)).flatten()
                bias = biases[source]
                biases[source] = shift if bias is None else bias * scale + shift
                folded.add(index)
    from_inputs = graph.reach_from_inputs()
    precise = {index for index in weights if from_inputs[graph.steps[index].sources[0]] == (0, 0)}
    kernels = {}
    for index, weight in weights.items():
        if index in precise:
            weight = weight.double()
        kernels[index] = _transposed_kernel(weight, groups[index])
        weights[index] = weight.contiguous() if index in precise else weight.contiguous(memory_format=torch.channels_last)
    # Folded or not, a convolution's forward kernel is its reverse one (above): one tensor for both keeps
    # a Jacobian's kernels in the core's own cache (FunFuseAn's come to 0.5 MB, the L2 is 1 MB).
    channels_last = {
        index: weights[index] if index not in precise else weight.contiguous(memory_format=torch.channels_last)
        for index, weight in forward_weights.items()
    }
    kernel_sizes = {index: (int(weight.shape[2]), int(weight.shape[3])) for index, weight in forward_weights.items()}
    return ConvKernels(kernels, weights, forward_weights, channels_last, biases, groups, dilations, folded, precise, kernel_sizes)


def _transposed_kernel(weight: torch.Tensor, groups: int) -> torch.Tensor:
    out_channels, in_per_group = weight.shape[:2]
    grouped = weight.reshape(groups, out_channels // groups, in_per_group, *weight.shape[2:])
    return grouped.transpose(1, 2).flip(-1, -2).reshape(groups * in_per_group, out_channels // groups, *weight.shape[2:]).contiguous()
