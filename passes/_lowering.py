"""Shared by tfq-lower-to-xla and tfq-lower-to-tf: quantized IR (contract step 4 in `_quant.py`) -> plain TF ops.

Lowers `quant.qcast` / `quant.dcast` / `quant.scast`, and drives the rewrite of every
`tfq.quantized_op`: the opset-specific integer product comes from a callback; the bias add, the
requantize (or the float output) and the float depthwise are common. The arithmetic ops
themselves come from `_tf_arith`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfquant.mlir import CompileError, ir, module_funcs, ops_named, walk_ops
from tfquant.passes._composite import KINDS
from tfquant.passes._quant import INT8_MAX, QUANTIZED_OP, QUANTIZED_OP_SPEC, QuantParams, parse_uniform, retyped
from tfquant.passes._tf_arith import (along_axis, binary, cast, const, emit, emit_dequantize, emit_quantize,
                                      emit_requantize, f32, i32, rank)
from tfquant.passes._tf_ops import CALL_OPS, bool_attribute, callee_name, constant_value, named_loc, type_attr
from tfquant.passes._verify import TF_OPS, check_attributes, check_count, check_ranks, reading, verify, verify_ops

QUANT_CASTS = ("quant.qcast", "quant.dcast", "quant.scast")


@dataclass
class QuantizedOp:
    """One `tfq.quantized_op` with its attributes decoded; `weight_value` is the constant weight, if known."""
    op: ir.Operation
    kind: str
    attrs: dict[str, ir.Attribute]
    input: QuantParams
    weight: QuantParams
    output: QuantParams
    activation: str
    weight_value: np.ndarray | None
    float_output: bool = False

    @property
    def x(self) -> ir.Value:
        return self.op.operands[0]

    @property
    def w(self) -> ir.Value:
        return self.op.operands[1]

    @property
    def loc(self) -> ir.Location:
        return self.op.location

    @property
    def result_type(self) -> ir.Type:
        return self.op.results[0].type

    def ints(self, name: str) -> list[int]:
        return [ir.IntegerAttr(a).value for a in ir.ArrayAttr(self.attrs[name])]

    def string(self, name: str, default: str = "") -> str:
        return ir.StringAttr(self.attrs[name]).value if name in self.attrs else default

    def flag(self, name: str) -> bool:
        return name in self.attrs and ir.BoolAttr(self.attrs[name]).value

    def weight_array(self) -> np.ndarray:
        """The constant weight (int8); an error when the weight is not a constant at its call site."""
        if self.weight_value is None:
            raise CompileError(f"{self.kind}: the weight of this quantized op is not a constant", self.loc)
        return self.weight_value

    def error(self, message: str) -> CompileError:
        return CompileError(f"{self.kind}: {message}", self.loc)


# The product of a quantized op, emitted at the current insertion point: an int32 tensor shaped
# like the op's result, with the zero-point offsets already corrected.
EmitProduct = Callable[[QuantizedOp], ir.Value]


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

def _params(q_op: ir.Operation, prefix: str) -> QuantParams:
    return QuantParams((ir.FloatAttr(q_op.attributes[f"{prefix}_scale"]).value,),
                       (ir.IntegerAttr(q_op.attributes[f"{prefix}_zero_point"]).value,))


def _weight_params(q_op: ir.Operation) -> QuantParams:
    scales = tuple(float(s) for s in np.asarray(q_op.attributes["weight_scales"]).reshape(-1))
    axis = ir.IntegerAttr(q_op.attributes["weight_axis"]).value
    return QuantParams(scales, (0,) * len(scales), None if axis < 0 else axis, -INT8_MAX, INT8_MAX)


def _call_sites(module_op: ir.Operation, name: str) -> list[ir.Operation]:
    return [call for call in ops_named(module_op, *CALL_OPS) if callee_name(call) == name]


def _weight_value(weight: ir.Value, calls: list[ir.Operation]) -> np.ndarray | None:
    """The constant feeding `weight`: a tf.Const in the function, or the same tf.Const at every call site."""
    inner = constant_value(weight)
    if inner is not None or not isinstance(weight, ir.BlockArgument):
        return inner
    values = [constant_value(call.operands[ir.BlockArgument(weight).arg_number]) for call in calls]
    if not values or any(v is None for v in values):
        return None
    if any(not np.array_equal(values[0], v) for v in values[1:]):
        return None
    return values[0]


# kind -> the float op a tfq.quantized_op of that kind computes.
FLOAT_OPS = {kind: name for name, kind in KINDS.items()}


def verify_quantized_op(q_op: ir.Operation) -> None:
    """Raise at `q_op` unless it has the attributes the lowering reads, and the operands and
    `op_attrs` its kind's float op needs."""
    verify(q_op, QUANTIZED_OP_SPEC)
    kind = ir.StringAttr(q_op.attributes["kind"]).value
    if kind not in FLOAT_OPS:
        raise CompileError(f"'{QUANTIZED_OP}' op has unknown kind '{kind}'; the kinds are {', '.join(FLOAT_OPS)}",
                           q_op.location)
    what = f"'{QUANTIZED_OP}' op of kind {kind}"
    float_spec = TF_OPS[FLOAT_OPS[kind]]
    if kind == "gather":  # (table, indices, axis), as GatherV2; the other kinds add an optional bias
        check_count(q_op, "operand", len(q_op.operands), float_spec.operands, what)
    check_ranks(q_op, float_spec.ranks, what)
    check_attributes(ir.DictAttr(q_op.attributes["op_attrs"]), float_spec, f"{what}: op_attrs", q_op.location)


def _decode(q_op: ir.Operation, calls: list[ir.Operation]) -> QuantizedOp:
    attrs = q_op.attributes
    kind = ir.StringAttr(attrs["kind"]).value
    op_attrs = {named.name: named.attr for named in ir.DictAttr(attrs["op_attrs"])}
    return QuantizedOp(q_op, kind, op_attrs, _params(q_op, "input"), _weight_params(q_op), _params(q_op, "output"),
                       ir.StringAttr(attrs["activation"]).value, _weight_value(q_op.operands[1], calls),
                       bool_attribute(q_op, "float_output"))


def _lower_gather(q: QuantizedOp) -> ir.Value:
    """GatherV2 on the int8 table: the output keeps the table's quantization parameters."""
    table, indices, axis = q.op.operands[0], q.op.operands[1], q.op.operands[2]
    batch_dims = q.attrs.get("batch_dims", ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 0))
    return emit("tf.GatherV2", [table, indices, axis], q.result_type,
                {"Tparams": type_attr(table), "Tindices": type_attr(indices), "Taxis": type_attr(axis),
                 "batch_dims": batch_dims}, q.loc)


def _lower_quantized_op(q: QuantizedOp, emit_product: EmitProduct) -> ir.Value:
    """product [+ bias] -> requantize with the fused activation."""
    if q.kind == "gather":
        return _lower_gather(q)
    if q.kind == "depthwise_conv2d":
        value = float_depthwise(q)
        return value if q.float_output else emit_quantize(value, q.output, named_loc(q.loc, "quantize"))
    accumulator = emit_product(q)
    if len(q.op.operands) > 2:
        # The lifted BiasAdd adds along the last axis; an int32 vector there broadcasts the same way.
        accumulator = binary("tf.AddV2", accumulator, q.op.operands[2], named_loc(q.loc, "bias"))
    scales, axis = channel_scales(q)
    if q.float_output:
        return _dequantize_accumulator(accumulator, along_axis(q.input.scale * scales, rank(accumulator), axis),
                                       q.activation, named_loc(q.loc, "dequantize"))
    multiplier = along_axis(q.input.scale * scales / q.output.scale, rank(accumulator), axis)
    return emit_requantize(accumulator, multiplier, q.output, q.activation, named_loc(q.loc, "requantize"))


FLOAT_ACTIVATIONS = {"RELU": "tf.Relu", "RELU6": "tf.Relu6"}


def _dequantize_accumulator(accumulator: ir.Value, scale: np.ndarray, activation: str, loc: ir.Location) -> ir.Value:
    """int32 accumulator -> f32: acc x (input scale x weight scale), then the fused activation in float."""
    value = binary("tf.Mul", cast(accumulator, f32(), loc), const(np.asarray(scale, np.float32), loc), loc)
    return _float_activation(value, activation, loc)


def _float_activation(value: ir.Value, activation: str, loc: ir.Location) -> ir.Value:
    if activation in FLOAT_ACTIVATIONS:
        value = emit(FLOAT_ACTIVATIONS[activation], [value], value.type, {"T": type_attr(value)}, loc)
    return value


def lower_quantized_functions(module_op: ir.Operation, emit_product: EmitProduct) -> None:
    """Replace every `tfq.quantized_op` by TF ops: product, bias, requantize."""
    for fn in module_funcs(module_op):
        name = ir.StringAttr(fn.attributes["sym_name"]).value
        quantized = ops_named(fn, QUANTIZED_OP)
        if not quantized:
            continue
        calls = _call_sites(module_op, name)
        for q_op in quantized:
            q = _decode(q_op, calls)
            with ir.InsertionPoint(q_op), q_op.location:
                lowered = _lower_quantized_op(q, emit_product)
            q_op.results[0].replace_all_uses_with(lowered)
            q_op.erase()


def lower_quant_casts(module_op: ir.Operation) -> None:
    """qcast -> quantize, dcast -> dequantize, scast -> its operand (all values are int8 storage after this)."""
    casts = ops_named(module_op, *QUANT_CASTS)
    # Read every cast's parameters before rewriting: rewriting retypes the values they are read from.
    params = [parse_uniform(ir.ShapedType(op.results[0].type if op.name == "quant.qcast" else op.operands[0].type)
                            .element_type) for op in casts]
    for op, p in zip(casts, params):
        with ir.InsertionPoint(op), op.location:
            if op.name == "quant.qcast":
                new_value = emit_quantize(op.operands[0], p, op.location)
            elif op.name == "quant.dcast":
                new_value = emit_dequantize(op.operands[0], p, op.location)
            else:
                new_value = op.operands[0]
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


def lower_quantized_module(module_op: ir.Operation, emit_product: EmitProduct) -> None:
    """The whole lowering: quantized ops, then quant casts; no `!quant` type may remain."""
    verify_ops(module_op, reading(*CALL_OPS))
    for q_op in ops_named(module_op, QUANTIZED_OP):
        verify_quantized_op(q_op)
    lower_quantized_functions(module_op, emit_product)
    lower_quant_casts(module_op)
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
    if len(q.op.operands) > 2:
        bias = binary("tf.Mul", cast(q.op.operands[2], f32(), named_loc(q.loc, "bias")),
                      const(np.broadcast_to(real_scale, (channels * multiplier,)).astype(np.float32),
                            named_loc(q.loc, "bias_scale")), named_loc(q.loc, "bias"))
        value = emit("tf.BiasAdd", [value, bias], value.type, {"T": type_attr(value),
                     "data_format": ir.StringAttr.get("NHWC")}, named_loc(q.loc, "bias_add"))
    return _float_activation(value, q.activation, q.loc)
