"""Shared by the lowering passes: quantized IR (contract step 5 in `_quant.py`) -> TensorFlow ops.

Lowers `quant.qcast` / `quant.dcast` / `quant.scast`, and drives the rewrite of every
`tfq.quantized_op`: each is decoded into a `QuantizedOp` (its parameters read from its types,
its operands as integer storage values) and handed to the opset's `lower_op`. For the opsets that
compute an int32 product (XLA, TF), `lower_with_product` does the rest in common: the bias add
(one constant with the product's zero-point offset where there is one), the requantize (or the
float output), the dynamic-range input quantized per batch, and the float depthwise. The
arithmetic ops themselves come from `_tf_arith`.
"""
from __future__ import annotations

from collections.abc import Callable
import math
from dataclasses import dataclass, replace

import numpy as np

from tfquant.mlir import CompileError, ir, ops_named, walk_ops
from tfquant.passes import _tfq
from tfquant.passes._op_specs import TF
from tfquant.passes._quant import QuantParams, parse_uniform, retyped, storage_type_of, tensor_params
from tfquant.passes._tf_arith import (along_axis, binary, cast, const, emit, emit_dequantize, emit_dynamic_quantize,
                                      emit_quantize, emit_requantize, f32, i32, integer, rank)
from tfquant.passes._tf_ops import CALL_OPS, constant_value, create_op, defining_op, named_loc, type_attr
from tfquant.passes._verify import reading, verify_ops

QUANT_CASTS = ("quant.qcast", "quant.dcast", "quant.scast")


@dataclass
class QuantizedOp:
    """One `tfq.quantized_op` being lowered: its parameters (from its types) and its operands as
    integer storage values (f32 for a dynamic-range input or bias)."""
    op: ir.Operation
    kind: str
    attrs: dict[str, ir.Attribute]
    input: QuantParams | None      # None: dynamic range (quantized per batch at run time) or gather
    weight: QuantParams
    output: QuantParams | None     # None: float output
    activation: str
    x: ir.Value
    w: ir.Value
    bias: ir.Value | None
    result_type: ir.Type           # storage, or f32 for a float output

    @property
    def float_output(self) -> bool:
        return self.output is None

    @property
    def dynamic(self) -> bool:
        return self.input is None and self.kind != "gather"

    @property
    def loc(self) -> ir.Location:
        return self.op.location

    def ints(self, name: str) -> list[int]:
        return [ir.IntegerAttr(a).value for a in ir.ArrayAttr(self.attrs[name])]

    def string(self, name: str, default: str = "") -> str:
        return ir.StringAttr(self.attrs[name]).value if name in self.attrs else default

    def flag(self, name: str) -> bool:
        return name in self.attrs and ir.BoolAttr(self.attrs[name]).value

    def weight_array(self) -> np.ndarray:
        """The constant integer weight; an error when the weight is not a constant."""
        value = constant_value(self.w)
        if value is None:
            raise CompileError(f"{self.kind}: the weight of this quantized op is not a constant", self.loc)
        return value

    def error(self, message: str) -> CompileError:
        return CompileError(f"{self.kind}: {message}", self.loc)


# The product of a quantized op: an int32 tensor shaped like the op's result, and the offset (an
# integer array broadcasting to it; None: no offset) that corrects it for the input zero point.
# `lower_with_product` adds the offset, with the bias where it can.
Product = tuple[ir.Value, np.ndarray | None]
# Emits the product of a quantized op at the current insertion point.
EmitProduct = Callable[[QuantizedOp], Product]
# The whole lowering of one op, emitted at the current insertion point: its result value
# (storage, or f32 for a float output).
LowerOp = Callable[[QuantizedOp], ir.Value]
# The lowering of one quant.qcast (f32 -> storage) or quant.dcast (storage -> f32).
LowerCast = Callable[[ir.Operation, QuantParams], ir.Value]


# ---- per-output-channel weight scales ------------------------------------------------------

def einsum_letters(q: QuantizedOp) -> tuple[str, str, str]:
    """(activation letters, weight letters, output letters) of an einsum's equation; no ellipsis or traces."""
    equation = q.string("equation").replace(" ", "")
    if "..." in equation or "->" not in equation or equation.count(",") != 1:
        raise q.error(f"equation {equation!r} is not supported (two operands, explicit output, no ellipsis)")
    inputs, out = equation.split("->")
    lhs, rhs = inputs.split(",")
    if any(len(set(s)) != len(s) for s in (lhs, rhs, out)):
        raise q.error(f"equation {equation!r} repeats an index within an operand")
    return lhs, rhs, out


def dot_letters(q: QuantizedOp) -> tuple[str, str, str]:
    """Einsum-style letters (activation, weight, output) for matmul, batch_matmul and einsum; a
    batch_matmul operand with fewer batch dimensions broadcasts along the leading ones."""
    if q.kind == "einsum":
        return einsum_letters(q)
    if q.kind == "matmul":
        return ("km" if q.flag("transpose_a") else "mk"), ("nk" if q.flag("transpose_b") else "kn"), "mn"
    x_rank, w_rank = rank(q.x), ir.RankedTensorType(q.w.type).rank
    batch = "abcdefgh"[:max(x_rank, w_rank) - 2]
    lhs = batch[len(batch) - (x_rank - 2):] + ("km" if q.flag("adj_x") else "mk")
    rhs = batch[len(batch) - (w_rank - 2):] + ("nk" if q.flag("adj_y") else "kn")
    return lhs, rhs, batch + "mn"


def channel_scales(q: QuantizedOp) -> tuple[np.ndarray, int | None]:
    """Weight scales per output channel and the output axis they run along (None: one scale)."""
    scales = np.asarray(q.weight.scales, np.float64)
    if q.weight.axis is None or scales.size == 1:
        return scales[:1], None
    out_rank = ir.RankedTensorType(q.result_type).rank
    w_shape = list(ir.RankedTensorType(q.w.type).shape)
    axis = q.weight.axis % len(w_shape)
    if q.kind == "depthwise_conv2d":
        # Output channel c * multiplier + m comes from filter[:, :, c, m]: broadcast the scales over both.
        if axis not in (2, 3):
            raise q.error(f"per-channel weight axis {axis} is not a channel axis")
        grid = np.broadcast_to(scales.reshape([-1, 1] if axis == 2 else [1, -1]), w_shape[2:])
        return grid.reshape(-1), out_rank - 1
    if q.kind == "einsum":
        lhs, rhs, out = einsum_letters(q)
        if rhs[axis] not in out:
            raise q.error("the per-channel weight axis is contracted")
        return scales, out.index(rhs[axis])
    channel_axis = {"conv2d": 3,
                    "matmul": 0 if q.flag("transpose_b") else 1,
                    "batch_matmul": len(w_shape) - (2 if q.flag("adj_y") else 1)}[q.kind]
    if axis != channel_axis:
        raise q.error(f"per-channel weight axis {axis} is not the output channel axis {channel_axis}")
    return scales, out_rank - 1


# ---- the driver ------------------------------------------------------------------------------

def _storage(value: ir.Value, loc: ir.Location) -> ir.Value:
    """The integer storage of a quantized value (the source of its scast, or a new scast); a float
    value as it is."""
    if tensor_params(value.type) is None:
        return value
    producer = defining_op(value)
    storage_type = storage_type_of(value.type)
    if producer is not None and producer.name == "quant.scast" and producer.operands[0].type == storage_type:
        return producer.operands[0]
    return create_op("quant.scast", [value], [storage_type], {}, loc).result


def _decode(typed: _tfq.QuantizedOp) -> QuantizedOp:
    """The op's parameters from its types and its operands as storage values (scasts inserted before it)."""
    op = typed.operation
    result = op.results[0]
    output = tensor_params(result.type)
    with ir.InsertionPoint(op):
        x, w = _storage(typed.input, op.location), _storage(typed.weight, op.location)
        bias = None if typed.bias is None else _storage(typed.bias, op.location)
    if typed.is_gather:  # (table, indices, axis): the indices play the activation's part
        x = typed.input
    return QuantizedOp(op, typed.kind, typed.op_attrs, typed.input_params, typed.weight_params, output,
                       typed.activation, x, w, bias,
                       result.type if output is None else storage_type_of(result.type))


def lower_quantized_ops(module_op: ir.Operation, lower_op: LowerOp) -> None:
    """Replace every `tfq.quantized_op` by what `lower_op` emits (a scast keeps a quantized result's type)."""
    for op in ops_named(module_op, _tfq.QuantizedOp.OPERATION_NAME):
        typed = _tfq.QuantizedOp(op)
        with ir.InsertionPoint(op), op.location:
            q = _decode(typed)
            lowered = lower_op(q)
            if q.output is not None:
                lowered = create_op("quant.scast", [lowered], [op.results[0].type], {}, op.location).result
        op.results[0].replace_all_uses_with(lowered)
        op.erase()


def lower_with_product(emit_product: EmitProduct) -> LowerOp:
    """The lowering of an opset computing int32 products: product [+ bias] -> requantize or dequantize."""
    def lower(q: QuantizedOp) -> ir.Value:
        if q.kind == "gather":
            return _lower_gather(q)
        if q.kind == "depthwise_conv2d":
            return _lower_depthwise(q)
        if q.dynamic:
            return _lower_dynamic(q, emit_product)
        # Wider than 8-bit inputs compute in f32 (exact below 2**24, within f32 rounding above):
        # XLA's int16 convolution on CPU is ~35x slower than float, the f32 kernels as fast as float.
        wide = q.input.storage_bits > 8
        accumulator, offset = (product_in(q, f32()), None) if wide else emit_product(q)
        # The lifted BiasAdd adds along the last axis; an int32 vector there broadcasts the same way.
        bias = q.bias
        if wide and bias is not None:
            bias = cast(bias, f32(), named_loc(q.loc, "bias"))
        accumulator = _add_offset_and_bias(accumulator, offset, bias, q.loc)
        scales, axis = channel_scales(q)
        if q.float_output:
            return _dequantize_accumulator(accumulator, const(along_axis(
                q.input.scale * scales, rank(accumulator), axis).astype(np.float32), named_loc(q.loc, "scale")),
                q.activation, named_loc(q.loc, "dequantize"))
        multiplier = along_axis(q.input.scale * scales / q.output.scale, rank(accumulator), axis)
        return emit_requantize(accumulator, multiplier, q.output, q.activation, named_loc(q.loc, "requantize"))
    return lower


def _add_offset_and_bias(accumulator: ir.Value, offset: np.ndarray | None, bias: ir.Value | None,
                         loc: ir.Location) -> ir.Value:
    """accumulator + the product's zero-point offset + bias: one AddV2 of their sum where the bias is
    an int32 constant and the sum fits int32 (integer adds reassociate exactly) and holds no more
    values than the two apart."""
    bias_loc = named_loc(loc, "bias")
    folded = None if offset is None or bias is None else _folded_offset(offset, constant_value(bias))
    if folded is not None:
        return binary("tf.AddV2", accumulator, const(folded, bias_loc), bias_loc)
    if offset is not None:
        accumulator = binary("tf.AddV2", accumulator, const(_leading_ones_dropped(offset).astype(np.int32),
                             named_loc(loc, "zero_point_offset")), named_loc(loc, "zero_point_offset"))
    return accumulator if bias is None else binary("tf.AddV2", accumulator, bias, bias_loc)


def _folded_offset(offset: np.ndarray, bias: np.ndarray | None) -> np.ndarray | None:
    """offset + bias as one int32 constant; None when the bias is not an int32 constant, when the
    sum does not fit int32, or when it holds more values than the two apart (an offset and a bias
    along different axes, as an einsum's output can have)."""
    if bias is None or bias.dtype != np.int32:
        return None
    folded = _leading_ones_dropped(offset.astype(np.int64) + bias)
    limits = np.iinfo(np.int32)
    if folded.size > offset.size + bias.size or folded.min(initial=0) < limits.min or folded.max(initial=0) > limits.max:
        return None
    return folded.astype(np.int32)


def _leading_ones_dropped(array: np.ndarray) -> np.ndarray:
    """`array` without its leading size-1 dimensions: it broadcasts against a value of higher rank the same way."""
    while array.ndim > 1 and array.shape[0] == 1:
        array = array[0]
    return array


def _lower_gather(q: QuantizedOp) -> ir.Value:
    """GatherV2 on the integer table: the output keeps the table's quantization parameters."""
    table, indices, axis = q.w, q.x, q.op.operands[2]
    batch_dims = q.attrs.get("batch_dims", ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 0))
    return emit("tf.GatherV2", [table, indices, axis], q.result_type,
                {"Tparams": type_attr(table), "Tindices": type_attr(indices), "Taxis": type_attr(axis),
                 "batch_dims": batch_dims}, q.loc)


def _lower_depthwise(q: QuantizedOp) -> ir.Value:
    if q.dynamic:  # the float input as it is: the product is in f32 anyway
        return float_depthwise(replace(q, input=QuantParams((1.0,), (0,))))
    value = float_depthwise(q)
    return value if q.float_output else emit_quantize(value, q.output, named_loc(q.loc, "quantize"))


def _lower_dynamic(q: QuantizedOp, emit_product: EmitProduct) -> ir.Value:
    """The f32 input quantized per batch, the int32 product, then f32 out: (acc - zero point x
    the weight's sums) x input scale x weight scale [+ f32 bias], then the activation.

    The input is quantized asymmetrically (255 steps over [min, max] holding 0); a convolution's
    padding is made explicit with the run-time zero point (the quantized real 0.0), so that the
    zero point's share of every output is the zero point times the weight's sums. Where that
    padding is unknown (SAME with a stride above 1 on dynamic sizes) the input is quantized
    symmetrically (zero point 0) instead.
    """
    loc = named_loc(q.loc, "dynamic")
    pads = spatial_pads(q) if q.kind == "conv2d" else []
    x, input_scale, zero_point = emit_dynamic_quantize(q.x, loc, asymmetric=pads is not None)
    product_input = replace(q, x=x, input=QuantParams((1.0,), (0,)))
    if zero_point is not None and any(p != (0, 0) for p in pads):
        padded = pad_spatially(x, pads, cast(zero_point, integer(8), loc), loc)
        attrs = {name: attr for name, attr in q.attrs.items() if name != "explicit_paddings"}
        product_input = replace(product_input, x=padded, attrs={**attrs, "padding": ir.StringAttr.get("VALID")})
    accumulator = _add_offset_and_bias(*emit_product(product_input), None, loc)
    value = cast(accumulator, f32(), loc)
    if zero_point is not None:
        offset = binary("tf.Mul", const(weight_sums(q).astype(np.float32), named_loc(loc, "weight_sums")),
                        zero_point, loc)
        value = binary("tf.Sub", value, offset, loc)
    scales, axis = channel_scales(q)
    weight_scale = const(along_axis(scales, rank(accumulator), axis).astype(np.float32), named_loc(loc, "weight_scale"))
    value = binary("tf.Mul", value, binary("tf.Mul", weight_scale, input_scale, loc), loc)
    if q.bias is not None:
        value = emit("tf.BiasAdd", [value, q.bias], value.type, {"T": type_attr(value),
                     "data_format": ir.StringAttr.get("NHWC")}, named_loc(loc, "bias_add"))
    return float_activation(value, q.activation, loc)


def weight_sums(q: QuantizedOp) -> np.ndarray:
    """The weight summed over what the product contracts (per output channel for a convolution),
    shaped to broadcast over the accumulator: what an input zero point z adds to each output
    (z times it), padding included when the input is padded with z."""
    weight = q.weight_array().astype(np.int64)
    if q.kind == "conv2d":
        return weight.sum(axis=(0, 1, 2))
    lhs, rhs, out = dot_letters(q)
    ones = np.ones([weight.shape[rhs.index(c)] if c in rhs else 1 for c in lhs], np.int64)
    return np.einsum(f"{lhs},{rhs}->{out}", ones, weight)


def spatial_pads(q: QuantizedOp) -> list[tuple[int, int]] | None:
    """(before, after) padding of H and W of a convolution for its padding mode; None where it
    depends on a dynamic size (SAME with a stride above 1)."""
    padding = q.string("padding")
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    if padding == "EXPLICIT":
        explicit = q.ints("explicit_paddings")
        if len(explicit) != 8:
            raise q.error(f"EXPLICIT padding needs 8 explicit_paddings (before and after each NHWC dimension), "
                          f"got {len(explicit)}")
        return [(explicit[2], explicit[3]), (explicit[4], explicit[5])]
    input_shape = list(ir.RankedTensorType(q.x.type).shape)
    kernel = list(ir.RankedTensorType(q.w.type).shape)[:2]
    strides, dilations = q.ints("strides")[1:3], q.ints("dilations")[1:3] if "dilations" in q.attrs else [1, 1]
    pads = []
    for size, k, stride, dilation in zip(input_shape[1:3], kernel, strides, dilations):
        effective = (k - 1) * dilation + 1
        if stride == 1:  # the same padding for every input size: dynamic sizes need no special case
            total = effective - 1
        elif ir.ShapedType.is_dynamic_size(size):
            return None
        else:
            total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def pad_spatially(value: ir.Value, pads: list[tuple[int, int]], fill: ir.Value, loc: ir.Location) -> ir.Value:
    """An NHWC `value` padded in H and W by `pads` with the scalar `fill` (tf.PadV2)."""
    paddings = np.array([(0, 0), *pads, (0, 0)], np.int32)
    shape = list(ir.RankedTensorType(value.type).shape)
    padded_shape = [d if ir.ShapedType.is_dynamic_size(d) else d + int(sum(p)) for d, p in zip(shape, paddings)]
    loc = named_loc(loc, "pad")
    return emit("tf.PadV2", [value, const(paddings, named_loc(loc, "paddings")), fill],
                ir.RankedTensorType.get(padded_shape, ir.ShapedType(value.type).element_type),
                {"T": type_attr(value), "Tpaddings": ir.TypeAttr.get(i32())}, loc)


def _dequantize_accumulator(accumulator: ir.Value, scale: ir.Value, activation: str, loc: ir.Location) -> ir.Value:
    """int32 accumulator -> f32: acc x (input scale x weight scale), then the fused activation in float."""
    value = binary("tf.Mul", cast(accumulator, f32(), loc), scale, loc)
    return float_activation(value, activation, loc)


def float_activation(value: ir.Value, activation: str, loc: ir.Location) -> ir.Value:
    if activation != "NONE":
        value = emit(TF.activation_op(activation), [value], value.type, {"T": type_attr(value)}, loc)
    return value


def default_lower_cast(op: ir.Operation, params: QuantParams) -> ir.Value:
    """qcast -> TF quantize ops; dcast -> TF dequantize ops."""
    if op.name == "quant.qcast":
        return emit_quantize(op.operands[0], params, op.location)
    return emit_dequantize(op.operands[0], params, op.location)


def lower_quant_casts(module_op: ir.Operation, lower_cast: LowerCast = default_lower_cast) -> None:
    """qcast and dcast -> `lower_cast`, scast -> its operand (all values are storage after this)."""
    casts = ops_named(module_op, *QUANT_CASTS)
    # Read every cast's parameters before rewriting: rewriting retypes the values they are read from.
    params = [parse_uniform(ir.ShapedType(op.results[0].type if op.name == "quant.qcast" else op.operands[0].type)
                            .element_type) for op in casts]
    for op, p in zip(casts, params):
        with ir.InsertionPoint(op), op.location:
            new_value = op.operands[0] if op.name == "quant.scast" else lower_cast(op, p)
        op.results[0].replace_all_uses_with(new_value)
        op.erase()


def check_no_quant_types(module_op: ir.Operation) -> None:
    """Raise if any value or function signature still has a `!quant` type."""
    def has_quant(op: ir.Operation) -> bool:
        types = [v.type for v in op.results] + [v.type for v in op.operands]
        if op.name == "func.func":
            types.append(ir.TypeAttr(op.attributes["function_type"]).value)
        return any("!quant." in str(t) for t in types)

    left = walk_ops(module_op, has_quant)
    if left:
        raise CompileError(f"a quantized type is left after lowering, on {left[0].name}", left[0].location)


def lower_quantized_module(module_op: ir.Operation, lower_op: LowerOp,
                           lower_cast: LowerCast = default_lower_cast) -> None:
    """The whole lowering: quantized ops, then quant casts; no `!quant` type may remain."""
    verify_ops(module_op, reading(*CALL_OPS))
    for op in ops_named(module_op, _tfq.QuantizedOp.OPERATION_NAME):
        _tfq.QuantizedOp(op).verify()
    lower_quantized_ops(module_op, lower_op)
    lower_quant_casts(module_op, lower_cast)
    check_no_quant_types(module_op)


# ---- products shared by the opsets -------------------------------------------------------------

def centered_operands(q: QuantizedOp, element: ir.Type) -> tuple[ir.Value, ir.Value]:
    """(x - input zero point, w) cast to `element`: with the offset removed first, zero padding stays exact."""
    x = cast(q.x, element, named_loc(q.loc, "input"))
    if q.input.zero_point:
        dtype = np.int32 if element == i32() else np.float32
        x = binary("tf.Sub", x, const(np.array(q.input.zero_point, dtype), named_loc(q.loc, "input_zero_point")),
                   named_loc(q.loc, "input"))
    return x, cast(q.w, element, named_loc(q.loc, "weight"))


# kind -> the TensorFlow op computing its product (on int32 or f32 operands).
PRODUCT_OPS = {"conv2d": "tf.Conv2D", "matmul": "tf.MatMul", "batch_matmul": "tf.BatchMatMulV2", "einsum": "tf.Einsum"}


def product_in(q: QuantizedOp, element: ir.Type) -> ir.Value:
    """The product of `q` computed by the float op's TensorFlow kernel on `element` (i32 or f32)
    casts of both operands, the input zero point subtracted first."""
    if q.kind not in PRODUCT_OPS:
        raise q.error(f"no {element} product for this kind")
    x, w = centered_operands(q, element)
    return emit(PRODUCT_OPS[q.kind], [x, w], retyped(q.result_type, element), {**q.attrs, "T": ir.TypeAttr.get(element)},
                named_loc(q.loc, q.kind))


def float_depthwise(q: QuantizedOp) -> ir.Value:
    """A depthwise conv on int8 values computed in f32, with its bias and activation: real-valued output.

    DepthwiseConv2dNative has no int32 kernel, and XLA's grouped int8 convolution on CPU is ~25x
    slower than the float kernel (7.4 ms vs 0.3 ms for a 32x32x32 3x3 depthwise). The weights
    stay int8 in the model; `(x - zp) * (w * input scale * weight scale) + bias` in f32 is
    constant-folded and fused (conv + bias + relu) by TensorFlow at load time, and its rounding
    error is far below one output step.
    """
    x, w = centered_operands(q, f32())
    scales, axis = channel_scales(q)
    real_scale = q.input.scale * scales
    kernel_h, kernel_w, channels, multiplier = ir.RankedTensorType(q.w.type).shape
    filter_scale = np.broadcast_to(real_scale, (channels * multiplier,)).reshape(channels, multiplier)
    w = binary("tf.Mul", w, const(filter_scale.astype(np.float32), named_loc(q.loc, "filter_scale")),
               named_loc(q.loc, "filter"))
    value = emit("tf.DepthwiseConv2dNative", [x, w], retyped(q.result_type, f32()),
                 {**q.attrs, "T": ir.TypeAttr.get(f32())}, named_loc(q.loc, "depthwise"))
    bias = q.bias
    if bias is not None and ir.ShapedType(bias.type).element_type != f32():  # int32 at the product's scale
        bias = binary("tf.Mul", cast(bias, f32(), named_loc(q.loc, "bias")),
                      const(np.broadcast_to(real_scale, (channels * multiplier,)).astype(np.float32),
                            named_loc(q.loc, "bias_scale")), named_loc(q.loc, "bias"))
    if bias is not None:
        value = emit("tf.BiasAdd", [value, bias], value.type, {"T": type_attr(value),
                     "data_format": ir.StringAttr.get("NHWC")}, named_loc(q.loc, "bias_add"))
    return float_activation(value, q.activation, q.loc)
