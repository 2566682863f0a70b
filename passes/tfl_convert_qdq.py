"""tfq-tfl-convert-qdq: a QAT model's quantize/dequantize pairs become quant.qcast/quant.dcast.

TensorFlow's float conversion of a model trained with fake-quant ops keeps each fake quant as

    %q = "tfl.quantize"(%x) : (tensor<..xf32>) -> tensor<..x!quant.uniform<u8:f32, S:Z>>
    %y = "tfl.dequantize"(%q) : (..) -> tensor<..xf32>

with uint8 parameters (TensorFlow's nudged trained range; per channel on weights). Each pair on
a float value becomes `quant.qcast`/`quant.dcast` of the int8 twin of that type (zero point - 128,
same scale and range), which the TFLite passes read as a trained range, as they read a
calibrated one: no calibration point goes there, and a weight keeps its trained scales.
"""
from __future__ import annotations

from tfquant.mlir import ir, ops_named
from tfquant.pass_registry import register_pass
from tfquant.passes._quant import eight_bit_twin, quantized_tensor_type, tensor_params
from tfquant.passes._tf_ops import create_op, defining_op, is_float, replace_op
from tfquant.passes._tfl import DEQUANTIZE, QUANTIZE


@register_pass("tfq-tfl-convert-qdq",
               "Turn the tfl.quantize/tfl.dequantize pairs of a QAT model's float conversion into "
               "quant.qcast/quant.dcast of int8 types")
def tfl_convert_qdq(module_op: ir.Operation) -> None:
    for dequantize in ops_named(module_op, DEQUANTIZE):
        quantize = defining_op(dequantize.operands[0])
        if quantize is None or quantize.name != QUANTIZE or not is_float(quantize.operands[0]):
            continue
        value = quantize.operands[0]
        params = eight_bit_twin(tensor_params(quantize.results[0].type), signed=True)
        with ir.InsertionPoint(dequantize), dequantize.location:
            quantized_type = quantized_tensor_type(value.type, params)
            qcast = create_op("quant.qcast", [value], [quantized_type], {}, quantize.location)
            # The float type of the quantize's input: the pair's own types may disagree on what is known of
            # the shape (ranked against unranked), which quant.dcast does not allow.
            dcast = create_op("quant.dcast", [qcast.result], [value.type], {}, dequantize.location)
        replace_op(dequantize, [dcast.result])
        if not list(quantize.results[0].uses):
            quantize.erase()

