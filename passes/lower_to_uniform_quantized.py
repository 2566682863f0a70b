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

from tfquant.mlir import ir, ops_named, parse_type_cached
from tfquant.pass_registry import register_pass
from tfquant.passes import _lowering
from tfquant.passes._lowering import (QuantizedOp, channel_scales, default_lower_cast,
                                      lower_quantized_module, lower_with_product)
from tfquant.passes._quant import QuantParams, retyped
from tfquant.passes._tf_arith import activation_bounds, const, emit, f32, i32, rank
from tfquant.passes._tf_ops import constant_value, defining_op, erase_dead_ops, function_blocks, named_loc, type_attr
from tfquant.passes.lower_to_tf import emit_tf_product

INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1
# The storage integer type of each quantized TensorFlow type.
STORAGE_BITS = {"!tf_type.qint8": 8, "!tf_type.qint32": 32}
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


# ---- qint <-> integer storage ------------------------------------------------------------------

def _qint(bits: int) -> ir.Type:
    return parse_type_cached(f"!tf_type.qint{bits}", ir.Context.current)


def _bitcast(value: ir.Value, element: ir.Type, loc: ir.Location) -> ir.Value:
    return emit("tf.Bitcast", [value], retyped(value.type, element),
                {"T": type_attr(value), "type": ir.TypeAttr.get(element)}, named_loc(loc, "bitcast"))


def _to_quantized(value: ir.Value, loc: ir.Location) -> ir.Value:
    """An int8 / int32 storage value as qint8 / qint32."""
    return _bitcast(value, _qint(ir.IntegerType(ir.ShapedType(value.type).element_type).width), loc)


def _to_storage(value: ir.Value, loc: ir.Location) -> ir.Value:
    """A qint8 / qint32 value as its int8 / int32 storage."""
    return _bitcast(value, ir.IntegerType.get_signless(STORAGE_BITS[str(ir.ShapedType(value.type).element_type)]),
                    loc)


def _as_storage(value: ir.Value, loc: ir.Location) -> ir.Value:
    """A qint value as its integer storage, any other value as it is."""
    quantized = str(ir.ShapedType(value.type).element_type) in STORAGE_BITS
    return _to_storage(value, loc) if quantized else value


def fold_bitcast_pairs(module_op: ir.Operation) -> None:
    """Bitcast(Bitcast(v)) back to v's type -> v: between two quantized ops (or a qcast and a
    quantized op) the int8 storage is converted out and back; then drop the dead Bitcasts and the
    weight constants that were rearranged into new ones."""
    for op in ops_named(module_op, "tf.Bitcast"):
        inner = defining_op(op.operands[0])
        if inner is not None and inner.name == "tf.Bitcast" and inner.operands[0].type == op.results[0].type:
            op.results[0].replace_all_uses_with(inner.operands[0])
    for block in function_blocks(module_op):
        erase_dead_ops(block, frozenset({"tf.Bitcast", "tf.Const"}))


def _quantized_weight(q: QuantizedOp, perm: list[int], shape: list[int], loc: ir.Location) -> ir.Value:
    """The int8 weight constant as qint8 (a Bitcast, folded by grappler at load), its dims permuted by
    `perm` and reshaped to the layout the kernel takes: a new constant unless that is its own
    layout (the original, then dead, is erased with the other dead ops)."""
    if perm == sorted(perm) and shape == list(ir.RankedTensorType(q.w.type).shape):
        return _to_quantized(q.w, loc)
    return _to_quantized(const(np.transpose(q.weight_array(), perm).reshape(shape), loc), loc)


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
        return {f"{prefix}quantization_axis": _i64(self.axis), f"{prefix}quantization_min_val": _i64(self.low),
                f"{prefix}quantization_max_val": _i64(self.high)}


def _i64(value: int) -> ir.IntegerAttr:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value)


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
    return q.kind in DOTS and _dot_plan(q) is None


def _add_bias(accumulator: ir.Value, bias: ir.Value, side: _Side, loc: ir.Location) -> ir.Value:
    """accumulator + int32 bias, both at the accumulator's scales (the bias along its last axis)."""
    bias_side = _Side(side.scales, side.zero_points, -1 if side.axis == -1 else 0, side.low, side.high)
    return emit("tf.UniformQuantizedAdd", [accumulator, _to_quantized(bias, loc), side.scales, side.zero_points,
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
                retyped(accumulator.type, _qint(8)),
                {"Tin": type_attr(accumulator), "Tout": ir.TypeAttr.get(_qint(8)), **acc_side.attrs("input_"),
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
    return ir.ArrayAttr.get([_i64(v) for v in values])


def _window_attrs(q: QuantizedOp, groups: int) -> dict[str, ir.Attribute]:
    """The float conv's window as the UniformQuantized convolution's attributes (spatial dims only)."""
    if q.string("data_format", "NHWC") != "NHWC":
        raise q.error("only NHWC convolutions are supported")
    padding = q.string("padding")
    explicit = q.ints("explicit_paddings")[2:6] if padding == "EXPLICIT" else []
    dilations = q.ints("dilations")[1:3] if "dilations" in q.attrs else [1, 1]
    return {"window_strides": _ints(q.ints("strides")[1:3]), "padding": ir.StringAttr.get(padding),
            "explicit_padding": _ints(explicit), "lhs_dilation": _ints([1, 1]), "rhs_dilation": _ints(dilations),
            "batch_group_count": _i64(1), "feature_group_count": _i64(groups),
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
    restore = lambda value: _as_storage(value, q.loc)  # noqa: E731
    lhs = _to_quantized(q.x, named_loc(loc, "input"))
    lhs_side = _input_side(q.input, named_loc(loc, "input"))
    acc_side = _accumulator_side(q, scales, rhs_axis, named_loc(q.loc, "accumulator"))
    value = emit("tf.UniformQuantizedConvolution",
                 [lhs, rhs, lhs_side.scales, lhs_side.zero_points, rhs_side.scales, rhs_side.zero_points,
                  acc_side.scales, acc_side.zero_points],
                 ir.RankedTensorType.get(result_shape, _qint(32)),
                 {"Tin": type_attr(lhs), "Tout": ir.TypeAttr.get(_qint(32)), **window, **lhs_side.attrs("lhs_"),
                  **rhs_side.attrs("rhs_"), **acc_side.attrs("output_")}, loc)
    return _Product(value, restore, acc_side, q.bias)


def _identity(value: ir.Value) -> ir.Value:
    return value


# ---- dots --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _DotPlan:
    """A matmul / batch matmul / einsum as one 2-D dot: [free_x, contracted] x [contracted, free_w]."""
    x_perm: list[int]          # the activation's dims in (free_x, contracted) order
    w_perm: list[int]          # the weight's dims in (contracted, free_w) order
    free_x: list[int]          # sizes (dynamic: ShapedType.get_dynamic_size())
    free_w: list[int]
    contracted: int
    out_perm: list[int]        # (free_x, free_w) layout -> the result's dims
    channel: int | None        # the per-channel weight letter's index in free_w


def _dot_plan(q: QuantizedOp) -> _DotPlan | None:
    """How `q` maps onto a 2-D dot; None where it does not (a weight dimension shared with the
    activation but not contracted, a dimension summed within one operand, a bias along the
    activation's side)."""
    lhs, rhs, out = _lowering.dot_letters(q)
    contracted = [c for c in lhs if c in rhs and c not in out]
    free_x, free_w = [c for c in out if c in lhs], [c for c in out if c in rhs]
    if set(free_x) & set(free_w) or len(contracted) + len(free_x) != len(lhs) or \
            len(contracted) + len(free_w) != len(rhs):
        return None
    if q.bias is not None and (not free_w or out[-1] != free_w[-1]):
        return None
    x_shape, w_shape = list(ir.RankedTensorType(q.x.type).shape), list(ir.RankedTensorType(q.w.type).shape)
    k_sizes = [w_shape[rhs.index(c)] for c in contracted]
    free_x_sizes = [x_shape[lhs.index(c)] for c in free_x]
    layout = free_x + free_w
    channel = None
    if q.weight.axis is not None and len(q.weight.scales) > 1:
        if rhs[q.weight.axis] not in free_w:
            raise q.error("the per-channel weight axis is contracted")
        channel = free_w.index(rhs[q.weight.axis])
    return _DotPlan([lhs.index(c) for c in free_x + contracted], [rhs.index(c) for c in contracted + free_w],
                    free_x_sizes, [w_shape[rhs.index(c)] for c in free_w], math.prod(k_sizes),
                    [layout.index(c) for c in out], channel)


def _transpose(value: ir.Value, perm: list[int], loc: ir.Location) -> ir.Value:
    if perm == sorted(perm):
        return value
    shape = ir.RankedTensorType(value.type).shape
    return emit("tf.Transpose", [value, const(np.array(perm, np.int32), named_loc(loc, "perm"))],
                ir.RankedTensorType.get([shape[p] for p in perm], ir.ShapedType(value.type).element_type),
                {"T": type_attr(value), "Tperm": ir.TypeAttr.get(i32())}, named_loc(loc, "transpose"))


def _reshape(value: ir.Value, sizes: list[int], loc: ir.Location, shape: ir.Value | None = None) -> ir.Value:
    """tf.Reshape to `sizes`: a constant shape (a dynamic size as -1) unless `shape` is given."""
    dynamic = ir.ShapedType.get_dynamic_size()
    if list(ir.RankedTensorType(value.type).shape) == sizes:
        return value
    if shape is None:
        shape = const(np.array([-1 if d == dynamic else d for d in sizes], np.int32), named_loc(loc, "shape"))
    return emit("tf.Reshape", [value, shape], ir.RankedTensorType.get(sizes, ir.ShapedType(value.type).element_type),
                {"T": type_attr(value), "Tshape": ir.TypeAttr.get(i32())}, named_loc(loc, "reshape"))


def _i32s(values: list[int], loc: ir.Location, name: str) -> ir.Value:
    return const(np.array(values, np.int32), named_loc(loc, name))


def _leading_shape_and(value: ir.Value, count: int, tail: list[int], loc: ir.Location) -> ir.Value:
    """The run-time shape [value's first `count` dims..., tail...] (int32): for a reshape back to
    more than one dynamic dimension, which a -1 cannot express."""
    shape = emit("tf.Shape", [value], ir.RankedTensorType.get([rank(value)], i32()),
                 {"T": type_attr(value), "out_type": ir.TypeAttr.get(i32())}, named_loc(loc, "shape"))
    leading = emit("tf.StridedSlice", [shape, _i32s([0], loc, "begin"), _i32s([count], loc, "end"),
                                        _i32s([1], loc, "strides")],
                   ir.RankedTensorType.get([count], i32()),
                   {"T": ir.TypeAttr.get(i32()), "Index": ir.TypeAttr.get(i32()),
                    **{mask: _i64(0) for mask in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                                                  "shrink_axis_mask")}}, named_loc(loc, "leading"))
    return emit("tf.ConcatV2", [leading, _i32s(tail, loc, "tail"), const(np.int32(0), named_loc(loc, "axis"))],
                ir.RankedTensorType.get([count + len(tail)], i32()),
                {"N": _i64(2), "T": ir.TypeAttr.get(i32()), "Tidx": ir.TypeAttr.get(i32())},
                named_loc(loc, "concat"))


def _flat_size(sizes: list[int]) -> int:
    dynamic = ir.ShapedType.get_dynamic_size()
    return dynamic if dynamic in sizes else math.prod(sizes)


def _dot(q: QuantizedOp) -> _Product:
    """UniformQuantizedDot[Hybrid] on the activation flattened to [free, contracted] and the weight to
    [contracted, free]; per-channel scales (and the bias) tiled over the weight's other free dims."""
    plan = _dot_plan(q)
    loc = named_loc(q.loc, "dot")
    n = math.prod(plan.free_w)
    scales = np.asarray(q.weight.scales, np.float64)
    if plan.channel is not None:
        along = [1] * len(plan.free_w)
        along[plan.channel] = -1
        scales = np.broadcast_to(scales.reshape(along), plan.free_w).reshape(-1)
    else:
        scales = scales[:1]
    rhs_axis = None if plan.channel is None else 1
    rhs = _quantized_weight(q, plan.w_perm, [plan.contracted, n], named_loc(loc, "weight"))
    rhs_side = _side(scales, np.zeros(scales.shape, np.int32), rhs_axis, q.weight.storage_min,
                     q.weight.storage_max, named_loc(loc, "weight"))
    m = _flat_size(plan.free_x)

    x = _transpose(q.x, plan.x_perm, named_loc(loc, "input"))
    out_loc = named_loc(loc, "output")
    dynamic = ir.ShapedType.get_dynamic_size()
    out_shape = None
    if plan.free_x.count(dynamic) > 1:
        out_shape = _leading_shape_and(x, len(plan.free_x), plan.free_w, out_loc)

    def restore(value: ir.Value) -> ir.Value:
        # Reshape takes qint8, Transpose does not.
        shaped = _as_storage(_reshape(value, plan.free_x + plan.free_w, out_loc, out_shape), loc)
        return _transpose(shaped, plan.out_perm, out_loc)

    if q.dynamic:
        x = _reshape(x, [m, plan.contracted], named_loc(loc, "input"))
        value = emit("tf.UniformQuantizedDotHybrid", [x, rhs, rhs_side.scales, rhs_side.zero_points],
                     ir.RankedTensorType.get([m, n], f32()),
                     {"Tlhs": type_attr(x), "Trhs": type_attr(rhs), "Tout": ir.TypeAttr.get(f32()),
                      **rhs_side.attrs("rhs_")}, loc)
        return _Product(value, restore)
    lhs = _reshape(_to_quantized(x, named_loc(loc, "input")), [m, plan.contracted], named_loc(loc, "input"))
    lhs_side = _input_side(q.input, named_loc(loc, "input"))
    acc_side = _accumulator_side(q, scales, rhs_axis, named_loc(q.loc, "accumulator"))
    value = emit("tf.UniformQuantizedDot",
                 [lhs, rhs, lhs_side.scales, lhs_side.zero_points, rhs_side.scales, rhs_side.zero_points,
                  acc_side.scales, acc_side.zero_points],
                 ir.RankedTensorType.get([m, n], _qint(32)),
                 {"Tin": type_attr(lhs), "Tout": ir.TypeAttr.get(_qint(32)), **lhs_side.attrs("lhs_"),
                  **rhs_side.attrs("rhs_"), **acc_side.attrs("output_")}, loc)
    return _Product(value, restore, acc_side, _tiled_bias(q, n, loc))


def _tiled_bias(q: QuantizedOp, n: int, loc: ir.Location) -> ir.Value | None:
    """The int32 bias along the dot's N = (weight free dims) axis: repeated over the free dims before
    the last (the bias's own axis, as `_dot_plan` checked)."""
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
        quantized = emit("tf.UniformQuantize", [value, side.scales, side.zero_points], retyped(value.type, _qint(8)),
                         {"Tin": type_attr(value), "Tout": ir.TypeAttr.get(_qint(8)), **side.attrs("")},
                         named_loc(loc, "quantize"))
        return _to_storage(quantized, loc)
    quantized = _to_quantized(op.operands[0], loc)
    return emit("tf.UniformDequantize", [quantized, side.scales, side.zero_points], retyped(quantized.type, f32()),
                {"Tin": type_attr(quantized), "Tout": ir.TypeAttr.get(f32()), **side.attrs("")},
                named_loc(loc, "dequantize"))
