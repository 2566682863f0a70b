"""tfq-lower-to-uniform-quantized: lower quantized ops to TensorFlow's UniformQuantized* ops.

Each `tfq.quantized_op` with an int8 input becomes, on qint8 operands (a `tf.Bitcast` of the int8
storage; the weight a Bitcast of its int8 constant),
    conv2d           -> UniformQuantizedConvolution (NHWC)
    depthwise_conv2d -> UniformQuantizedConvolution with feature_group_count = input channels and
                        the [h, w, C, M] filter reshaped to [h, w, 1, C*M]
    matmul, batch_matmul, einsum -> UniformQuantizedDot on 2-D operands: the activation transposed
                        to (free, contracted) dimensions and flattened, the weight constant to
                        [contracted, free]; the result reshaped (and transposed) back
giving a qint32 accumulator at scale input scale x weight scale (per output channel), then
    [UniformQuantizedAdd of the int32 bias] -> UniformRequantize to qint8, the fused activation
    being the output clip range; or, for a float output, UniformDequantize and the activation in f32.
With an f32 input (dynamic range) the product is UniformQuantizedConvolutionHybrid /
UniformQuantizedDotHybrid (f32 x qint8 -> f32, the input quantized per batch row at run time), then
the f32 bias and the activation. GatherV2 runs on the int8 table. quant.qcast / quant.dcast of int8
become UniformQuantize / UniformDequantize plus a Bitcast to the int8 storage that the ops between
quantized ops (Reshape, MaxPool, ...) carry; a Bitcast of a Bitcast is folded away.

What TensorFlow's kernels accept (tensorflow/core/kernels/uniform_quant_ops, checked by running
them): qint8 operands and a qint32 product only; lhs per tensor; rhs per channel only along the
kernel's output feature axis (conv) or axis 1 of a 2-D rhs (dot), the output per tensor or along
that same axis; no Transpose kernel for qint types (transposes are done on the int8 storage).
Depthwise weights per channel work through the grouped convolution, whose output feature axis
is the flattened channel x multiplier. Where the kernels cannot express an op, it is lowered as
tfq-lower-to-tf lowers it (int32 TF ops): 16-bit activations (no qint16 kernels), an einsum or
batch matmul whose weight shares batch dimensions with the activation, or a bias along an
activation-side dimension. The kernels are naive loops (a 28x28x16 3x3 conv: 100 ms against 1 ms
in f32): this opset is TensorFlow's reference semantics, not a fast path.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfquant.mlir import i64_attr, ir
from tfquant.pass_registry import register_pass
from tfquant.passes import _lowering
from tfquant.passes._lowering import (QuantizedOp, channel_scales, default_lower_cast,
                                      lower_quantized_module, lower_with_product)
from tfquant.passes._dot2d import dot_plan, flat_size, leading_shape_and, reshape, tiled_weight_scales
from tfquant.passes._qint import as_storage, fold_bitcast_pairs, qint, to_quantized, to_storage
from tfquant.passes._quant import QuantParams, retyped
from tfquant.passes._tf_arith import activation_bounds, const, emit, f32, transpose
from tfquant.passes._tf_ops import constant_value, named_loc, type_attr
from tfquant.passes.lower_to_tf import emit_tf_product

INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1
CONVOLUTIONS = ("conv2d", "depthwise_conv2d")
DOTS = ("matmul", "batch_matmul", "einsum")


@register_pass("tfq-lower-to-uniform-quantized",
               "Lower quantized ops to TF UniformQuantized* ops (qint8 x qint8 -> qint32, requantize) and "
               "quant casts to UniformQuantize/UniformDequantize")
def lower_to_uniform_quantized(module_op: ir.Operation) -> None:
    lower_quantized_module(module_op, lower_uniform_quantized, lower_uniform_cast)
    fold_bitcast_pairs(module_op)


# What the UniformQuantized kernels cannot compute is lowered as tfq-lower-to-tf does (see above).
_lower_with_int32_ops = lower_with_product(emit_tf_product)


def _quantized_weight(q: QuantizedOp, perm: list[int], shape: list[int], loc: ir.Location) -> ir.Value:
    """The int8 weight constant as qint8 (a Bitcast, folded by grappler at load), its dims permuted by
    `perm` and reshaped to the layout the kernel takes: a new constant unless that is its own
    layout (the original, then dead, is erased with the other dead ops)."""
    if perm == sorted(perm) and shape == list(ir.RankedTensorType(q.w.type).shape):
        return to_quantized(q.w, loc)
    return to_quantized(const(np.transpose(q.weight_array(), perm).reshape(shape), loc), loc)


# ---- quantization parameters as operands and attributes ----------------------------------------

@dataclass(frozen=True)
class _Side:
    """One operand's (or the result's) quantization: scale and zero-point operands, axis, clip range."""
    scales: ir.Value
    zero_points: ir.Value
    axis: int
    low: int
    high: int

    def attrs(self, prefix: str) -> dict[str, ir.Attribute]:
        return {f"{prefix}quantization_axis": i64_attr(self.axis), f"{prefix}quantization_min_val": i64_attr(self.low),
                f"{prefix}quantization_max_val": i64_attr(self.high)}


def _side(scales: np.ndarray, zero_points: np.ndarray, axis: int | None, low: int, high: int,
          loc: ir.Location) -> _Side:
    """Scalar parameters for per-tensor (axis None), vectors along `axis` otherwise."""
    scales, zero_points = np.asarray(scales, np.float32), np.asarray(zero_points, np.int32)
    if axis is None:
        scales, zero_points = scales.reshape(-1)[0], zero_points.reshape(-1)[0]
    return _Side(const(scales, named_loc(loc, "scales")), const(zero_points, named_loc(loc, "zero_points")),
                 -1 if axis is None else axis, low, high)


def _input_side(params: QuantParams, loc: ir.Location) -> _Side:
    """The side of a per-tensor activation (the kernels take no other)."""
    return _side(np.asarray(params.scales), np.asarray(params.zero_points), None, params.storage_min,
                 params.storage_max, loc)


def _accumulator_side(q: QuantizedOp, scales: np.ndarray, axis: int | None, loc: ir.Location) -> _Side:
    """The qint32 product: scale input scale x weight scale, zero point 0, the whole int32 range."""
    real = q.input.scale * np.asarray(scales, np.float64)
    return _side(real, np.zeros(real.shape, np.int32), axis, INT32_MIN, INT32_MAX, loc)


# ---- the lowering of one quantized op ----------------------------------------------------------

@dataclass
class _Product:
    """A quantized op's product in the layout its kernel gives: a qint32 accumulator with its
    parameters and the int32 bias in that layout (static range), or f32 (dynamic range);
    `restore` maps a qint8 or f32 value in that layout to the op's result (int8 storage or f32)."""
    value: ir.Value
    restore: Callable[[ir.Value], ir.Value]
    side: _Side | None = None
    bias: ir.Value | None = None


def lower_uniform_quantized(q: QuantizedOp) -> ir.Value:
    """The UniformQuantized* lowering of `q` (its result: int8 storage, or f32 for a float output)."""
    if q.kind == "gather" or _needs_int32_ops(q):  # a gather is a GatherV2 on the int8 table either way
        return _lower_with_int32_ops(q)
    product = _convolution(q) if q.kind in CONVOLUTIONS else _dot(q)
    if q.dynamic:
        return _finish_hybrid(q, product)
    accumulator, acc_side, loc = product.value, product.side, q.loc
    if product.bias is not None:
        accumulator = _add_bias(accumulator, product.bias, acc_side, named_loc(loc, "bias"))
    if q.output is None:
        value = emit("tf.UniformDequantize", [accumulator, acc_side.scales, acc_side.zero_points],
                     retyped(accumulator.type, f32()),
                     {"Tin": type_attr(accumulator), "Tout": ir.TypeAttr.get(f32()), **acc_side.attrs("")},
                     named_loc(loc, "dequantize"))
        return _lowering.float_activation(product.restore(value), q.activation, loc)
    return product.restore(_requantize(q, accumulator, acc_side))


def _needs_int32_ops(q: QuantizedOp) -> bool:
    """Whether the UniformQuantized kernels cannot compute `q` (see the module docstring)."""
    if any(p is not None and p.storage_bits != 8 for p in (q.input, q.weight, q.output)):
        return True
    return q.kind in DOTS and dot_plan(q) is None


def _add_bias(accumulator: ir.Value, bias: ir.Value, side: _Side, loc: ir.Location) -> ir.Value:
    """accumulator + int32 bias, both at the accumulator's scales (the bias along its last axis)."""
    bias_side = _Side(side.scales, side.zero_points, -1 if side.axis == -1 else 0, side.low, side.high)
    return emit("tf.UniformQuantizedAdd", [accumulator, to_quantized(bias, loc), side.scales, side.zero_points,
                                           side.scales, side.zero_points, side.scales, side.zero_points],
                accumulator.type, {"T": type_attr(accumulator), **side.attrs("lhs_"), **bias_side.attrs("rhs_"),
                                   **side.attrs("output_")}, loc)


def _requantize(q: QuantizedOp, accumulator: ir.Value, acc_side: _Side) -> ir.Value:
    """qint32 accumulator -> qint8 at the output parameters, clipped to the fused activation's range."""
    loc = named_loc(q.loc, "requantize")
    low, high = activation_bounds(q.output, q.activation)
    out = _side(np.asarray(q.output.scale), np.asarray(q.output.zero_point), None, low, high, loc)
    return emit("tf.UniformRequantize", [accumulator, acc_side.scales, acc_side.zero_points, out.scales,
                                         out.zero_points],
                retyped(accumulator.type, qint(8)),
                {"Tin": type_attr(accumulator), "Tout": ir.TypeAttr.get(qint(8)), **acc_side.attrs("input_"),
                 **out.attrs("output_")}, loc)


def _finish_hybrid(q: QuantizedOp, product: _Product) -> ir.Value:
    """Dynamic range: the f32 product [+ f32 bias] -> activation."""
    value = product.restore(product.value)
    if q.bias is not None:
        value = emit("tf.BiasAdd", [value, q.bias], value.type, {"T": type_attr(value),
                                                                   "data_format": ir.StringAttr.get("NHWC")},
                     named_loc(q.loc, "bias"))
    return _lowering.float_activation(value, q.activation, q.loc)


# ---- convolutions ------------------------------------------------------------------------------

def _conv_dimension_numbers() -> bytes:
    from tensorflow.core.util.quantization import uniform_quant_ops_attr_pb2
    # NHWC input and output, HWIO kernel.
    return uniform_quant_ops_attr_pb2.UniformQuantizedConvolutionDimensionNumbersAttr(
        input_batch_dimension=0, input_feature_dimension=3, input_spatial_dimensions=[1, 2],
        kernel_input_feature_dimension=2, kernel_output_feature_dimension=3, kernel_spatial_dimensions=[0, 1],
        output_batch_dimension=0, output_feature_dimension=3, output_spatial_dimensions=[1, 2]).SerializeToString()


def _ints(values: list[int]) -> ir.ArrayAttr:
    return ir.ArrayAttr.get([i64_attr(v) for v in values])


def _window_attrs(q: QuantizedOp, groups: int) -> dict[str, ir.Attribute]:
    """The float conv's window as the UniformQuantized convolution's attributes (spatial dims only)."""
    if q.string("data_format", "NHWC") != "NHWC":
        raise q.error("only NHWC convolutions are supported")
    padding = q.string("padding")
    explicit = q.ints("explicit_paddings")[2:6] if padding == "EXPLICIT" else []
    dilations = q.ints("dilations")[1:3] if "dilations" in q.attrs else [1, 1]
    return {"window_strides": _ints(q.ints("strides")[1:3]), "padding": ir.StringAttr.get(padding),
            "explicit_padding": _ints(explicit), "lhs_dilation": _ints([1, 1]), "rhs_dilation": _ints(dilations),
            "batch_group_count": i64_attr(1), "feature_group_count": i64_attr(groups),
            "dimension_numbers": ir.StringAttr.get(_conv_dimension_numbers())}


def _convolution(q: QuantizedOp) -> _Product:
    """UniformQuantizedConvolution[Hybrid]; a depthwise conv is one group per input channel."""
    shape, groups = list(ir.RankedTensorType(q.w.type).shape), 1
    if q.kind == "depthwise_conv2d":
        kernel_h, kernel_w, channels, multiplier = shape
        # Output feature c * M + m reads input channel c: TF's depthwise order.
        shape, groups = [kernel_h, kernel_w, 1, channels * multiplier], channels
    scales, axis = channel_scales(q)
    rhs_axis = None if axis is None else 3
    loc = named_loc(q.loc, "conv")
    rhs = _quantized_weight(q, [0, 1, 2, 3], shape, named_loc(loc, "filter"))
    rhs_side = _side(scales, np.zeros(scales.shape, np.int32), rhs_axis, q.weight.storage_min,
                     q.weight.storage_max, named_loc(loc, "filter"))
    window = _window_attrs(q, groups)
    result_shape = list(ir.RankedTensorType(q.result_type).shape)
    if q.dynamic:
        value = emit("tf.UniformQuantizedConvolutionHybrid", [q.x, rhs, rhs_side.scales, rhs_side.zero_points],
                     ir.RankedTensorType.get(result_shape, f32()),
                     {"Tlhs": type_attr(q.x), "Trhs": type_attr(rhs), "Tout": ir.TypeAttr.get(f32()), **window,
                      **rhs_side.attrs("rhs_")}, loc)
        return _Product(value, _identity)
    restore = lambda value: as_storage(value, q.loc)  # noqa: E731
    lhs = to_quantized(q.x, named_loc(loc, "input"))
    lhs_side = _input_side(q.input, named_loc(loc, "input"))
    acc_side = _accumulator_side(q, scales, rhs_axis, named_loc(q.loc, "accumulator"))
    value = emit("tf.UniformQuantizedConvolution",
                 [lhs, rhs, lhs_side.scales, lhs_side.zero_points, rhs_side.scales, rhs_side.zero_points,
                  acc_side.scales, acc_side.zero_points],
                 ir.RankedTensorType.get(result_shape, qint(32)),
                 {"Tin": type_attr(lhs), "Tout": ir.TypeAttr.get(qint(32)), **window, **lhs_side.attrs("lhs_"),
                  **rhs_side.attrs("rhs_"), **acc_side.attrs("output_")}, loc)
    return _Product(value, restore, acc_side, q.bias)


def _identity(value: ir.Value) -> ir.Value:
    return value


# ---- dots --------------------------------------------------------------------------------------

def _dot(q: QuantizedOp) -> _Product:
    """UniformQuantizedDot[Hybrid] on the activation flattened to [free, contracted] and the weight to
    [contracted, free]; per-channel scales (and the bias) tiled over the weight's other free dims."""
    plan = dot_plan(q)
    loc = named_loc(q.loc, "dot")
    n = math.prod(plan.free_w)
    scales = tiled_weight_scales(q, plan)
    rhs_axis = None if plan.channel is None else 1
    rhs = _quantized_weight(q, plan.w_perm, [plan.contracted, n], named_loc(loc, "weight"))
    rhs_side = _side(scales, np.zeros(scales.shape, np.int32), rhs_axis, q.weight.storage_min,
                     q.weight.storage_max, named_loc(loc, "weight"))
    m = flat_size(plan.free_x)

    x = transpose(q.x, plan.x_perm, named_loc(loc, "input"))
    out_loc = named_loc(loc, "output")
    dynamic = ir.ShapedType.get_dynamic_size()
    out_shape = None
    if plan.free_x.count(dynamic) > 1:
        out_shape = leading_shape_and(x, len(plan.free_x), plan.free_w, out_loc)

    def restore(value: ir.Value) -> ir.Value:
        # Reshape takes qint8, Transpose does not.
        shaped = as_storage(reshape(value, plan.free_x + plan.free_w, out_loc, out_shape), loc)
        return transpose(shaped, plan.out_perm, out_loc)

    if q.dynamic:
        x = reshape(x, [m, plan.contracted], named_loc(loc, "input"))
        value = emit("tf.UniformQuantizedDotHybrid", [x, rhs, rhs_side.scales, rhs_side.zero_points],
                     ir.RankedTensorType.get([m, n], f32()),
                     {"Tlhs": type_attr(x), "Trhs": type_attr(rhs), "Tout": ir.TypeAttr.get(f32()),
                      **rhs_side.attrs("rhs_")}, loc)
        return _Product(value, restore)
    lhs = reshape(to_quantized(x, named_loc(loc, "input")), [m, plan.contracted], named_loc(loc, "input"))
    lhs_side = _input_side(q.input, named_loc(loc, "input"))
    acc_side = _accumulator_side(q, scales, rhs_axis, named_loc(q.loc, "accumulator"))
    value = emit("tf.UniformQuantizedDot",
                 [lhs, rhs, lhs_side.scales, lhs_side.zero_points, rhs_side.scales, rhs_side.zero_points,
                  acc_side.scales, acc_side.zero_points],
                 ir.RankedTensorType.get([m, n], qint(32)),
                 {"Tin": type_attr(lhs), "Tout": ir.TypeAttr.get(qint(32)), **lhs_side.attrs("lhs_"),
                  **rhs_side.attrs("rhs_"), **acc_side.attrs("output_")}, loc)
    return _Product(value, restore, acc_side, _tiled_bias(q, n, loc))


def _tiled_bias(q: QuantizedOp, n: int, loc: ir.Location) -> ir.Value | None:
    """The int32 bias along the dot's N = (weight free dims) axis: repeated over the free dims before
    the last (the bias's own axis, as `dot_plan` checked)."""
    if q.bias is None:
        return None
    channels = ir.RankedTensorType(q.bias.type).shape[0]
    if channels == n:
        return q.bias
    bias = constant_value(q.bias)
    if bias is None:
        raise q.error("a bias repeated over the weight's free dimensions must be a constant")
    return const(np.tile(bias, n // channels), named_loc(loc, "bias"))


# ---- quant.qcast / quant.dcast -----------------------------------------------------------------

def lower_uniform_cast(op: ir.Operation, params: QuantParams) -> ir.Value:
    """quant.qcast -> UniformQuantize, quant.dcast -> UniformDequantize, with a Bitcast from / to the
    int8 storage; 16-bit storage (no qint16 kernels) as plain TF ops."""
    if params.storage_bits != 8:
        return default_lower_cast(op, params)
    loc = op.location
    side = _side(np.asarray(params.scales), np.asarray(params.zero_points), params.axis, params.storage_min,
                 params.storage_max, loc)
    if op.name == "quant.qcast":
        value = op.operands[0]
        quantized = emit("tf.UniformQuantize", [value, side.scales, side.zero_points], retyped(value.type, qint(8)),
                         {"Tin": type_attr(value), "Tout": ir.TypeAttr.get(qint(8)), **side.attrs("")},
                         named_loc(loc, "quantize"))
        return to_storage(quantized, loc)
    quantized = to_quantized(op.operands[0], loc)
    return emit("tf.UniformDequantize", [quantized, side.scales, side.zero_points], retyped(quantized.type, f32()),
                {"Tin": type_attr(quantized), "Tout": ir.TypeAttr.get(f32()), **side.attrs("")},
                named_loc(loc, "dequantize"))
