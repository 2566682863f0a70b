"""tfq-quantize-weights: weight-only int8 and float16 units store their weights narrow.

For each lifted call whose `tfq.spec` method is
  * weight_only: its weight `%w = tf.Const f32` becomes
      %wi = "tf.Const"() {value = dense<...> : tensor<...xi8>}
      %wq = quant.scast %wi : ... to tensor<...x!quant.uniform<i8<-127:127>:f32[:axis], ...>>
      %wd = quant.dcast %wq : ... to tensor<...xf32>
    (symmetric int8, per output channel when the spec says so, per tensor for a gather's table);
  * float16: its weight becomes `tf.Cast(tf.Const f16) -> f32`.
The call itself stays float: it computes with the dequantized weight, so every opset runs it,
and the model stores the weight in a quarter (int8) or half (float16) of the bytes.
"""
from __future__ import annotations

import numpy as np

from tfquant.mlir import ir, symbol_table
from tfquant.pass_registry import register_pass
from tfquant.passes._composite import call_composite, lifted_calls, weight_axis
from tfquant.passes._quant import quantize_weight, quantized_tensor_type, weight_params
from tfquant.passes._spec import FLOAT16, WEIGHT_ONLY, leave_float, unit_spec
from tfquant.passes._tf_arith import cast, f32
from tfquant.passes._tf_ops import constant_value, create_const, create_op, defining_op


@register_pass("tfq-quantize-weights",
               "Store the weights of weight-only units as int8 (dequantized before use) and of float16 units "
               "as float16 (cast before use)")
def quantize_weights(module_op: ir.Operation) -> None:
    functions = symbol_table(module_op)
    for call in lifted_calls(module_op):
        spec = unit_spec(call)
        if spec is None or spec.method not in (WEIGHT_ONLY, FLOAT16):
            continue
        composite = call_composite(call, functions)
        weight_value = call.operands[composite.weight_index] if composite is not None else None
        weight = None if weight_value is None else constant_value(weight_value)
        if weight is None or weight.dtype != np.float32:
            leave_float(call, "its weight is not a float constant")
            continue
        loc = defining_op(weight_value).location
        with ir.InsertionPoint(call), loc:
            if spec.method == FLOAT16:
                narrow = cast(create_const(weight.astype(np.float16), loc), f32(), loc)
            else:
                params = weight_params(weight, weight_axis(composite, weight, spec.per_channel))
                storage = create_const(quantize_weight(weight, params), loc)
                quantized = create_op("quant.scast", [storage], [quantized_tensor_type(weight_value.type, params)],
                                      {}, loc).result
                narrow = create_op("quant.dcast", [quantized], [weight_value.type], {}, loc).result
        call.operands[composite.weight_index] = narrow
        if not list(weight_value.uses):
            defining_op(weight_value).erase()
