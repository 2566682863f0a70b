"""tfq-lower-to-tf: lower quantized functions to plain TensorFlow ops with int32 accumulation.

Each `tfq.quantized_op` becomes
    Cast(x_i8 -> i32) - input zero point, Cast(w_i8 -> i32)
    -> Conv2D / MatMul / BatchMatMulV2 / Einsum in int32 (T = i32, the float op's attributes)
    [-> AddV2 int32 bias] -> requantize (f32 rescale, round, + output zero point, clip) -> i8;
DepthwiseConv2dNative has no int32 CPU kernel: it runs in f32 on the zero-point-corrected int8
values with the scales folded into its filter (see `_lowering.float_depthwise`), then quantizes.
A 16-bit input computes in f32 instead (`_lowering.lower_with_product`). GatherV2 runs on the
int8 table. The weights stay int8
constants (the model is 4x smaller); quant.qcast/dcast/scast become TF quantize/dequantize ops.
"""
from __future__ import annotations


from tfquant.mlir import ir
from tfquant.pass_registry import register_pass
from tfquant.passes._lowering import Product, QuantizedOp, lower_quantized_module, lower_with_product, product_in
from tfquant.passes._tf_arith import i32


@register_pass("tfq-lower-to-tf",
               "Lower quantized functions and quant casts to plain TF ops with int32 accumulation")
def lower_to_tf(module_op: ir.Operation) -> None:
    lower_quantized_module(module_op, lower_with_product(emit_tf_product))


def emit_tf_product(q: QuantizedOp) -> Product:
    """The int32 product of `q` with the input zero point subtracted before the op (no offset left;
    the padding of a SAME convolution stays exact)."""
    return product_in(q, i32()), None
