"""tfq-lower-to-tf: lower quantized functions to plain TensorFlow ops with int32 accumulation.

Each `tfq.quantized_op` becomes
    Cast(x_i8 -> i32) - input zero point, Cast(w_i8 -> i32)
    -> Conv2D / MatMul / BatchMatMulV2 / Einsum in int32 (T = i32, the float op's attributes)
    [-> AddV2 int32 bias] -> requantize (f32 rescale, round, + output zero point, clip) -> i8;
DepthwiseConv2dNative has no int32 CPU kernel, so it runs in f32 on the zero-point-corrected
values and is cast back to int32. GatherV2 runs on the int8 table. The weights stay int8
constants (the model is 4x smaller); quant.qcast/dcast/scast become TF quantize/dequantize ops.
"""
from __future__ import annotations

import numpy as np

from tfquant.mlir import ir
from tfquant.pass_registry import register_pass
from tfquant.passes._lowering import (QuantizedOp, binary, cast, const, emit, f32, i32, lower_quantized_module,
                                      retyped)
from tfquant.passes._tf_ops import named_loc

# kind -> the TensorFlow op computing its product on int32 operands.
INT32_OPS = {"conv2d": "tf.Conv2D", "matmul": "tf.MatMul", "batch_matmul": "tf.BatchMatMulV2", "einsum": "tf.Einsum"}


@register_pass("tfq-lower-to-tf",
               "Lower quantized functions and quant casts to plain TF ops with int32 accumulation")
def lower_to_tf(module_op: ir.Operation) -> None:
    lower_quantized_module(module_op, emit_tf_product)


def _centered(q: QuantizedOp, element: ir.Type) -> tuple[ir.Value, ir.Value]:
    """(x - input zero point, w) cast to `element`: with the offset removed first, zero padding stays exact."""
    x = cast(q.x, element, named_loc(q.loc, "input"))
    if q.input.zero_point:
        dtype = np.int32 if element == i32() else np.float32
        x = binary("tf.Sub", x, const(np.array(q.input.zero_point, dtype), named_loc(q.loc, "input_zero_point")),
                   named_loc(q.loc, "input"))
    return x, cast(q.w, element, named_loc(q.loc, "weight"))


def _op_attrs(q: QuantizedOp, element: ir.Type) -> dict[str, ir.Attribute]:
    """The float op's attributes with T retyped."""
    return {**q.attrs, "T": ir.TypeAttr.get(element)}


def emit_tf_product(q: QuantizedOp) -> ir.Value:
    """The int32 product of `q` with the input zero point subtracted before the op."""
    accumulator_type = retyped(q.result_type, i32())
    if q.kind == "depthwise_conv2d":
        # No int32 kernel: run in f32. Exact, since every product and partial sum is an integer
        # below 2^24 (|x - zp| <= 255, |w| <= 127: up to ~500 taps per window).
        x, w = _centered(q, f32())
        product = emit("tf.DepthwiseConv2dNative", [x, w], retyped(q.result_type, f32()), _op_attrs(q, f32()),
                       named_loc(q.loc, "depthwise"))
        return cast(product, i32(), named_loc(q.loc, "accumulator"))
    if q.kind not in INT32_OPS:
        raise q.error("no TF lowering for this kind")
    x, w = _centered(q, i32())
    return emit(INT32_OPS[q.kind], [x, w], accumulator_type, _op_attrs(q, i32()), named_loc(q.loc, q.kind))
