"""tfq-lower-to-tf: lower quantized functions to plain TensorFlow ops with int32 accumulation.

Each `tfq.quantized_op` becomes
    Cast(x_i8 -> i32) - input zero point, Cast(w_i8 -> i32)
    -> Conv2D / MatMul / BatchMatMulV2 / Einsum in int32 (T = i32, the float op's attributes)
    [-> AddV2 int32 bias] -> requantize (f32 rescale, round, + output zero point, clip) -> i8;
DepthwiseConv2dNative has no int32 CPU kernel: it runs in f32 on the zero-point-corrected int8
values with the scales folded into its filter (see `_lowering.float_depthwise`), then quantizes.
GatherV2 runs on the int8 table. The weights stay int8
constants (the model is 4x smaller); quant.qcast/dcast/scast become TF quantize/dequantize ops.
"""
from __future__ import annotations


from tfquant.mlir import ir
from tfquant.pass_registry import register_pass
from tfquant.passes._lowering import QuantizedOp, centered_operands, lower_quantized_module, lower_with_product
from tfquant.passes._quant import retyped
from tfquant.passes._tf_arith import emit, i32
from tfquant.passes._tf_ops import named_loc

# kind -> the TensorFlow op computing its product on int32 operands.
INT32_OPS = {"conv2d": "tf.Conv2D", "matmul": "tf.MatMul", "batch_matmul": "tf.BatchMatMulV2", "einsum": "tf.Einsum"}


@register_pass("tfq-lower-to-tf",
               "Lower quantized functions and quant casts to plain TF ops with int32 accumulation")
def lower_to_tf(module_op: ir.Operation) -> None:
    lower_quantized_module(module_op, lower_with_product(emit_tf_product))


def emit_tf_product(q: QuantizedOp) -> ir.Value:
    """The int32 product of `q` with the input zero point subtracted before the op."""
    accumulator_type = retyped(q.result_type, i32())
    if q.kind not in INT32_OPS:
        raise q.error("no TF lowering for this kind")
    x, w = centered_operands(q, i32())
    return emit(INT32_OPS[q.kind], [x, w], accumulator_type, {**q.attrs, "T": ir.TypeAttr.get(i32())},
                named_loc(q.loc, q.kind))
