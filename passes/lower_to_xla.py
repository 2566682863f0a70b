"""tfq-lower-to-xla: lower quantized functions to XlaConvV2 / XlaDotV2 with int8 operands.

Each `tfq.quantized_op` becomes an int8 x int8 -> int32 product (`preferred_element_type = i32`)
    conv2d -> tf.XlaConvV2 (a 1x1 convolution with unit strides: tf.XlaDotV2 over the channels)
    matmul, batch_matmul, einsum -> tf.XlaDotV2 (einsum: + tf.Transpose to the equation's output order)
minus the input zero point times the weight summed over the contracted dimensions (a precomputed
int32 constant per output channel, added with the int32 bias as one AddV2 of one constant, as
TensorFlow's output has it), then requantize -> i8. SAME/EXPLICIT padding with a non-zero input
zero point pads the int8 input with the zero point (tf.PadV2) and convolves VALID, so that the
correction stays one constant per channel. GatherV2 runs on the
int8 table; quant.qcast/dcast/scast become TF quantize/dequantize ops. A 16-bit input computes
in f32 (`_lowering.lower_with_product`): XLA's int16 convolution on CPU is ~35x slower than float. depthwise_conv2d runs as
a DepthwiseConv2dNative in f32 on the int8 values (`_lowering.float_depthwise`): XLA's grouped
int8 convolution is ~25x slower on CPU.
The dimension numbers and precision config are serialized XLA protos held as raw bytes in
string attributes.
"""
from __future__ import annotations

import numpy as np

from tfquant.mlir import ir
from tfquant.pass_registry import register_pass
from tfquant.passes._lowering import (Product, QuantizedOp, dot_letters, lower_quantized_module, lower_with_product,
                                      pad_spatially, spatial_pads, weight_sums)
from tfquant.passes._quant import retyped
from tfquant.passes._tf_arith import const, emit, i32, transpose
from tfquant.passes._tf_ops import named_loc, type_attr


@register_pass("tfq-lower-to-xla",
               "Lower quantized functions to XlaConvV2/XlaDotV2 (int8 x int8 -> int32) and quant casts to TF ops")
def lower_to_xla(module_op: ir.Operation) -> None:
    lower_quantized_module(module_op, lower_with_product(emit_xla_product))


def emit_xla_product(q: QuantizedOp) -> Product:
    """The int32 product of `q` on the int8 values and its input zero point's offset (`EmitProduct`)."""
    if q.kind == "conv2d":
        return _convolution(q)
    if q.kind in ("matmul", "batch_matmul", "einsum"):
        return _dot(q)
    raise q.error("no XLA lowering for this kind")


def _product_attrs(lhs: ir.Value, rhs: ir.Value, dimension_numbers, precision_config: bytes = b"") \
        -> dict[str, ir.Attribute]:
    """Attributes shared by XlaConvV2 and XlaDotV2; the protos' bytes go into string attributes as they are."""
    return {"LhsT": type_attr(lhs), "RhsT": type_attr(rhs),
            "dimension_numbers": ir.StringAttr.get(dimension_numbers.SerializeToString()),
            "precision_config": ir.StringAttr.get(precision_config),
            "preferred_element_type": ir.TypeAttr.get(i32())}


def _with_zero_point_offset(q: QuantizedOp, accumulator: ir.Value) -> Product:
    """(acc, -input_zero_point * the weight's sums): sum((x - zp) * w) = sum(x * w) - zp * sum(w)."""
    return accumulator, (-q.input.zero_point * weight_sums(q) if q.input.zero_point else None)


# ---- convolutions ------------------------------------------------------------------------------

def _conv_dimension_numbers():
    from tensorflow.compiler.xla import xla_data_pb2
    # NHWC input and output, HWIO kernel.
    return xla_data_pb2.ConvolutionDimensionNumbers(
        input_batch_dimension=0, input_feature_dimension=3, input_spatial_dimensions=[1, 2],
        kernel_input_feature_dimension=2, kernel_output_feature_dimension=3, kernel_spatial_dimensions=[0, 1],
        output_batch_dimension=0, output_feature_dimension=3, output_spatial_dimensions=[1, 2])


def _is_pointwise(q: QuantizedOp, weight: np.ndarray) -> bool:
    """A 1x1 convolution with unit strides and no padding: a dot over the channels."""
    return weight.shape[:2] == (1, 1) and q.ints("strides")[1:3] == [1, 1] and spatial_pads(q) == [(0, 0), (0, 0)]


def _pointwise(q: QuantizedOp, weight: np.ndarray) -> Product:
    """A 1x1 convolution as XlaDotV2 of [N, H, W, Cin] with [Cin, Cout] over Cin.

    XlaConvV2 on this CPU returns garbage for a 1x1 convolution of a [1, 1, 1, C] input (batch 1,
    as squeeze-and-excite blocks have; TensorFlow's own XLA output too); the dot is exact.
    """
    from tensorflow.compiler.xla import xla_data_pb2
    loc = named_loc(q.loc, "pointwise")
    w = const(weight.reshape(weight.shape[2:]), named_loc(loc, "weight"))
    numbers = xla_data_pb2.DotDimensionNumbers(lhs_contracting_dimensions=[3], rhs_contracting_dimensions=[0])
    accumulator = emit("tf.XlaDotV2", [q.x, w], retyped(q.result_type, i32()), _product_attrs(q.x, w, numbers), loc)
    return _with_zero_point_offset(q, accumulator)


def _convolution(q: QuantizedOp) -> Product:
    if q.string("data_format", "NHWC") != "NHWC":
        raise q.error("only NHWC convolutions are supported")
    weight = q.weight_array()
    if _is_pointwise(q, weight):
        return _pointwise(q, weight)
    kernel_h, kernel_w = weight.shape[:2]
    pads = spatial_pads(q)
    if pads is None:
        raise q.error("SAME padding with a stride above 1 needs static spatial dimensions")
    lhs = q.x
    if q.input.zero_point and any(p != (0, 0) for p in pads):
        zero_point = const(np.array(q.input.zero_point, q.input.storage_dtype), named_loc(q.loc, "zero_point"))
        lhs, pads = pad_spatially(q.x, pads, zero_point, q.loc), [(0, 0), (0, 0)]
    dilations = q.ints("dilations")[1:3] if "dilations" in q.attrs else [1, 1]
    loc = named_loc(q.loc, "conv")
    operands = [lhs, q.w,
                const(np.array(q.ints("strides")[1:3], np.int32), named_loc(loc, "window_strides")),
                const(np.array(pads, np.int32), named_loc(loc, "padding")),
                const(np.array([1, 1], np.int32), named_loc(loc, "lhs_dilation")),
                const(np.array(dilations, np.int32), named_loc(loc, "rhs_dilation")),
                const(np.array(1, np.int32), named_loc(loc, "feature_group_count"))]
    attrs = {**_product_attrs(lhs, q.w, _conv_dimension_numbers()), "Tindices": ir.TypeAttr.get(i32()),
             "batch_group_count": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 1)}
    accumulator = emit("tf.XlaConvV2", operands, retyped(q.result_type, i32()), attrs, loc)
    return _with_zero_point_offset(q, accumulator)


# ---- dots --------------------------------------------------------------------------------------

def _dot_letters(q: QuantizedOp) -> tuple[str, str, str]:
    """`dot_letters`, for operands XlaDotV2 takes: it does not broadcast, so a batch_matmul weight has
    no batch dimensions or exactly the activation's."""
    if q.kind == "batch_matmul":
        x_shape, w_shape = list(ir.RankedTensorType(q.x.type).shape), list(ir.RankedTensorType(q.w.type).shape)
        if len(w_shape) > 2 and w_shape[:-2] != x_shape[:-2]:
            raise q.error("a weight with broadcast batch dimensions is not supported")
    return dot_letters(q)


def _dot(q: QuantizedOp) -> Product:
    from tensorflow.compiler.xla import xla_data_pb2
    lhs, rhs, out = _dot_letters(q)
    batch = [c for c in lhs if c in rhs and c in out]
    contract = [c for c in lhs if c in rhs and c not in out]
    unsummed = [c for c in lhs + rhs if c not in out and c not in contract]
    if unsummed:
        raise q.error(f"index {unsummed[0]!r} is summed within one operand")
    numbers = xla_data_pb2.DotDimensionNumbers(
        lhs_batch_dimensions=[lhs.index(c) for c in batch], rhs_batch_dimensions=[rhs.index(c) for c in batch],
        lhs_contracting_dimensions=[lhs.index(c) for c in contract],
        rhs_contracting_dimensions=[rhs.index(c) for c in contract])
    # XlaDotV2's output: batch dims, then the activation's free dims, then the weight's.
    dot_order = batch + [c for c in lhs if c not in rhs] + [c for c in rhs if c not in lhs]
    out_shape = list(ir.RankedTensorType(q.result_type).shape)
    dot_type = ir.RankedTensorType.get([out_shape[out.index(c)] for c in dot_order], i32())
    loc = named_loc(q.loc, "dot")
    accumulator = emit("tf.XlaDotV2", [q.x, q.w], dot_type, _product_attrs(q.x, q.w, numbers), loc)
    if dot_order != list(out):
        accumulator = transpose(accumulator, [dot_order.index(c) for c in out], loc)
    return _with_zero_point_offset(q, accumulator)
