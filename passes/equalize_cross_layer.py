"""tfq-equalize-cross-layer: equalize the weight ranges of consecutive layers, channel by channel.

Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization
and Bias Absorption", section 4.1). For each pair of lifted calls A -> B where A's result is used
only as B's activation operand, and both are Conv2D (NHWC, not grouped), DepthwiseConv2dNative
(NHWC, channel multiplier 1) or MatMul (activation not transposed) units with constant float weights:

    A's output channel i (its weights and its bias) is divided by s_i,
    B's input channel i (its weights) is multiplied by s_i,   s_i = sqrt(r1_i / r2_i)

where r1_i = max |w| of A's output channel i and r2_i that of B's input channel i, so that both
become sqrt(r1_i r2_i). The model computes the same function (up to float rounding) because A's
activation is positive-homogeneous, f(x / s) = f(x) / s for s > 0: none or Relu. A Relu6 unit is
left alone: its clip at 6 does not scale with its input. After the pass, no channel of either
weight is tiny next to the others, so per-tensor weight quantization loses less; and A's output
channels span similar ranges, so its per-tensor activation quantization loses less too.

Each changed call gets new constants (a constant another call shares is never modified). Pairs
are equalized in walk order, so a chain A -> B -> C equalizes A-B then B-C; `iterations` sweeps
repeat this, since equalizing B-C changes B's output ranges again. Channels where either range
is 0, or whose scale is already 1 to float precision, are left as they are. A call is left alone
when anything does not fit: other users of its result, a weight or bias that is not a float
constant, another data format, a grouped conv, a depthwise channel multiplier other than 1.
The pass runs right after tfq-lift-quantizable-spots-as-functions, while calls read each other's
results directly (before calibration points come between them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfquant.mlir import ir, symbol_table
from tfquant.pass_registry import PassOption, register_pass
from tfquant.passes._composite import Composite, attribute_values, call_composite, is_lifted_call, lifted_calls, \
    weight_axis
from tfquant.passes._constants import replace_constant_operand
from tfquant.passes._tf_ops import constant_value, uses

EQUALIZABLE_KINDS = ("conv2d", "depthwise_conv2d", "matmul")
# Activations with f(x / s) = f(x) / s for every s > 0.
POSITIVE_HOMOGENEOUS = ("NONE", "RELU")
# A scale this close to 1 is rounding left over from an earlier sweep: applying it would only
# rewrite the constants (by about a float32 ulp), not change any range that matters.
SCALE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Layer:
    """A lifted call whose weight channels can be scaled: its weight and the axes of its channels."""
    call: ir.Operation
    composite: Composite
    weight: np.ndarray
    bias: np.ndarray | None
    in_axis: int
    out_axis: int


@register_pass("tfq-equalize-cross-layer",
               "Scale the output channels of each conv/matmul unit and the input channels of the unit reading "
               "it so that their weight ranges are equal (cross-layer equalization); the model computes the same",
               options=(PassOption("iterations", int, 2, "sweeps over the chains of equalizable pairs"),))
def equalize_cross_layer(module_op: ir.Operation, iterations: int) -> None:
    functions = symbol_table(module_op)
    pairs = [(call, reader) for call in lifted_calls(module_op) if (reader := _only_reader(call)) is not None]
    for _ in range(iterations):
        for producer, consumer in pairs:
            first, second = layer(producer, functions), layer(consumer, functions)
            if _equalizable(first, second):
                equalize(first, second)


def _only_reader(call: ir.Operation) -> ir.Operation | None:
    """The lifted call that is the only user of `call`'s single result, if there is one."""
    if len(call.results) != 1:
        return None
    users = uses(call.results[0])
    return users[0] if len(users) == 1 and is_lifted_call(users[0]) else None


def layer(call: ir.Operation, functions: dict[str, ir.Operation]) -> Layer | None:
    """`call` as a Layer, None when its weight channels cannot be scaled."""
    composite = call_composite(call, functions)
    if composite is None or composite.kind not in EQUALIZABLE_KINDS:
        return None
    attrs = attribute_values(composite.op_attrs)
    if attrs.get("data_format", "NHWC") != "NHWC" or attrs.get("transpose_a"):
        return None
    weight = constant_value(call.operands[composite.weight_index])
    if weight is None or weight.dtype.kind != "f" or weight.ndim != (2 if composite.kind == "matmul" else 4):
        return None
    out_axis = weight_axis(composite, weight, per_channel=True)
    if out_axis is None:  # a depthwise channel multiplier other than 1
        return None
    bias = None
    if composite.bias_index is not None:
        bias = constant_value(call.operands[composite.bias_index])
        if bias is None or bias.shape != (weight.shape[out_axis],):
            return None
    in_axis = {"conv2d": 2, "depthwise_conv2d": out_axis, "matmul": 1 - out_axis}[composite.kind]
    return Layer(call, composite, weight, bias, in_axis, out_axis)


def _equalizable(first: Layer | None, second: Layer | None) -> bool:
    """Whether `first`'s output channels are `second`'s input channels, one to one, through an
    activation that commutes with positive scaling."""
    return (first is not None and second is not None
            and first.composite.activation in POSITIVE_HOMOGENEOUS
            and second.call.operands[second.composite.input_index] == first.call.results[0]
            # A grouped conv's filter has fewer input channels than its input.
            and second.weight.shape[second.in_axis] == first.weight.shape[first.out_axis])


def channel_ranges(weight: np.ndarray, axis: int) -> np.ndarray:
    """max |w| of each channel along `axis`."""
    return np.max(np.abs(weight.astype(np.float64)), axis=tuple(a for a in range(weight.ndim) if a != axis))


def equalizing_scales(first: Layer, second: Layer) -> np.ndarray:
    """s_i = sqrt(r1_i / r2_i); 1 where either range is 0 or s_i is 1 to float precision."""
    r1 = channel_ranges(first.weight, first.out_axis)
    r2 = channel_ranges(second.weight, second.in_axis)
    scales = np.ones_like(r1)
    nonzero = (r1 > 0) & (r2 > 0)
    scales[nonzero] = np.sqrt(r1[nonzero] / r2[nonzero])
    scales[np.abs(scales - 1) < SCALE_TOLERANCE] = 1
    return scales


def equalize(first: Layer, second: Layer) -> None:
    """Divide `first`'s output channels by the equalizing scales and multiply `second`'s input
    channels by them, each call getting new constants; nothing changes where every scale is 1."""
    scales = equalizing_scales(first, second)
    if np.all(scales == 1):
        return
    replace_constant_operand(first.call, first.composite.weight_index,
                             first.weight / _along(scales, first.out_axis, first.weight.ndim))
    if first.bias is not None:
        replace_constant_operand(first.call, first.composite.bias_index, first.bias / scales)
    replace_constant_operand(second.call, second.composite.weight_index,
                             second.weight * _along(scales, second.in_axis, second.weight.ndim))


def _along(vector: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """`vector` shaped to broadcast along `axis` of an array of rank `ndim`."""
    shape = [1] * ndim
    shape[axis] = vector.size
    return vector.reshape(shape)
