"""tfq-lower-to-xla: lower quantized functions to XlaConvV2 / XlaDotV2 with int8 operands.

Each `tfq.quantized_op` becomes an int8 x int8 -> int32 product (`preferred_element_type = i32`)
    conv2d -> tf.XlaConvV2
    matmul, batch_matmul, einsum -> tf.XlaDotV2 (einsum: + tf.Transpose to the equation's output order)
minus the input zero point times the weight summed over the contracted dimensions (a precomputed
int32 constant per output channel), then [AddV2 int32 bias] -> requantize -> i8. SAME/EXPLICIT
padding with a non-zero input zero point pads the int8 input with the zero point (tf.PadV2) and
convolves VALID, so that the correction stays one constant per channel. GatherV2 runs on the
int8 table; quant.qcast/dcast/scast become TF quantize/dequantize ops. depthwise_conv2d runs as
a DepthwiseConv2dNative in f32 on the int8 values (`_lowering.float_depthwise`): XLA's grouped
int8 convolution is ~25x slower on CPU.
The dimension numbers and precision config are serialized XLA protos held as raw bytes in
string attributes.
"""
from __future__ import annotations

import math

import numpy as np

from tfquant.mlir import ir
from tfquant.pass_registry import register_pass
from tfquant.passes._lowering import QuantizedOp, dot_letters, lower_quantized_module, lower_with_product
from tfquant.passes._quant import retyped
from tfquant.passes._tf_arith import binary, const, emit, i32, transpose
from tfquant.passes._tf_ops import named_loc, type_attr


@register_pass("tfq-lower-to-xla",
               "Lower quantized functions to XlaConvV2/XlaDotV2 (int8 x int8 -> int32) and quant casts to TF ops")
def lower_to_xla(module_op: ir.Operation) -> None:
    lower_quantized_module(module_op, lower_with_product(emit_xla_product))


def emit_xla_product(q: QuantizedOp) -> ir.Value:
    """The int32 product of `q`, corrected for the input zero point."""
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


def _subtract_correction(q: QuantizedOp, accumulator: ir.Value, weight_sum: np.ndarray) -> ir.Value:
    """acc - input_zero_point * weight_sum: sum((x - zp) * w) = sum(x * w) - zp * sum(w)."""
    if not q.input.zero_point:
        return accumulator
    correction = (q.input.zero_point * weight_sum.astype(np.int64)).astype(np.int32)
    return binary("tf.Sub", accumulator, const(correction, named_loc(q.loc, "zero_point_correction")),
                  named_loc(q.loc, "zero_point_correction"))


# ---- convolutions ------------------------------------------------------------------------------

def _spatial_pads(q: QuantizedOp, input_shape: list[int], kernel: list[int]) -> list[tuple[int, int]]:
    """(before, after) padding of H and W for the float op's padding mode."""
    padding = q.string("padding")
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    if padding == "EXPLICIT":
        explicit = q.ints("explicit_paddings")
        if len(explicit) != 8:
            raise q.error(f"EXPLICIT padding needs 8 explicit_paddings (before and after each NHWC dimension), "
                          f"got {len(explicit)}")
        return [(explicit[2], explicit[3]), (explicit[4], explicit[5])]
    strides, dilations = q.ints("strides")[1:3], q.ints("dilations")[1:3] if "dilations" in q.attrs else [1, 1]
    pads = []
    for size, k, stride, dilation in zip(input_shape[1:3], kernel, strides, dilations):
        effective = (k - 1) * dilation + 1
        if stride == 1:  # the same padding for every input size: dynamic sizes need no special case
            total = effective - 1
        elif size < 0:
            raise q.error("SAME padding with a stride above 1 needs static spatial dimensions")
        else:
            total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _pad_with_zero_point(q: QuantizedOp, pads: list[tuple[int, int]]) -> ir.Value:
    """The int8 input padded with its zero point (the quantized value of real 0.0)."""
    paddings = np.array([(0, 0), *pads, (0, 0)], np.int32)
    shape = list(ir.RankedTensorType(q.x.type).shape)
    dynamic = ir.ShapedType.get_dynamic_size()
    padded_shape = [d if d == dynamic else d + int(sum(p)) for d, p in zip(shape, paddings)]
    loc = named_loc(q.loc, "pad")
    return emit("tf.PadV2", [q.x, const(paddings, named_loc(loc, "paddings")),
                             const(np.array(q.input.zero_point, q.input.storage_dtype), named_loc(loc, "zero_point"))],
                ir.RankedTensorType.get(padded_shape, ir.ShapedType(q.x.type).element_type),
                {"T": type_attr(q.x), "Tpaddings": ir.TypeAttr.get(i32())}, loc)


def _conv_dimension_numbers():
    from tensorflow.compiler.xla import xla_data_pb2
    # NHWC input and output, HWIO kernel.
    return xla_data_pb2.ConvolutionDimensionNumbers(
        input_batch_dimension=0, input_feature_dimension=3, input_spatial_dimensions=[1, 2],
        kernel_input_feature_dimension=2, kernel_output_feature_dimension=3, kernel_spatial_dimensions=[0, 1],
        output_batch_dimension=0, output_feature_dimension=3, output_spatial_dimensions=[1, 2])


def _convolution(q: QuantizedOp) -> ir.Value:
    if q.string("data_format", "NHWC") != "NHWC":
        raise q.error("only NHWC convolutions are supported")
    weight = q.weight_array()
    kernel_h, kernel_w = weight.shape[:2]
    pads = _spatial_pads(q, list(ir.RankedTensorType(q.x.type).shape), [kernel_h, kernel_w])
    lhs = q.x
    if q.input.zero_point and any(p != (0, 0) for p in pads):
        lhs, pads = _pad_with_zero_point(q, pads), [(0, 0), (0, 0)]
    weight_sum = weight.astype(np.int64).sum(axis=(0, 1, 2))
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
    return _subtract_correction(q, accumulator, weight_sum)


# ---- dots --------------------------------------------------------------------------------------

def _dot_letters(q: QuantizedOp) -> tuple[str, str, str]:
    """`dot_letters`, for operands XlaDotV2 takes: it does not broadcast, so a batch_matmul weight has
    no batch dimensions or exactly the activation's."""
    if q.kind == "batch_matmul":
        x_shape, w_shape = list(ir.RankedTensorType(q.x.type).shape), list(ir.RankedTensorType(q.w.type).shape)
        if len(w_shape) > 2 and w_shape[:-2] != x_shape[:-2]:
            raise q.error("a weight with broadcast batch dimensions is not supported")
    return dot_letters(q)


def _dot(q: QuantizedOp) -> ir.Value:
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
    if not q.input.zero_point:
        return accumulator
    weight = q.weight_array().astype(np.int64)
    kept = [c for c in rhs if c not in contract]
    weight_sum = weight.sum(axis=tuple(rhs.index(c) for c in contract))
    weight_sum = np.transpose(weight_sum, sorted(range(len(kept)), key=lambda i: out.index(kept[i])))
    weight_sum = weight_sum.reshape([weight.shape[rhs.index(c)] if c in kept else 1 for c in out])
    return _subtract_correction(q, accumulator, weight_sum)
