"""tfq-correct-bias: subtract the mean output shift quantization introduces from each unit's bias.

Empirical bias correction (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization
and Bias Absorption", section 4.2; Finkelstein et al. 2019). The accuracy driver measures, on
calibration data, the mean of (quantized output - float output) of each unit per output channel
(the last axis; before a fused Relu/Relu6) and writes it on the lifted call as

    tfq.bias_shift = dense<[...]> : tensor<Cxf32>

This pass makes the call's bias operand (the constant its composite's BiasAdd reads) a new
constant `bias - shift`, so that the quantized unit's output is centred on the float one, and
removes the attribute. The old constant stays for any other call that shares it.

A call with a shift and no bias loses the attribute, with a remark at its location saying its
shift could not be corrected; a shift whose length is not its bias's is an error at the call.
It runs at the start of the quantize stage (after tfq-apply-calibration-stats, before
tfq-quantize-weights and tfq-quantize-composite-functions), while the bias is still float.
"""
from __future__ import annotations

import numpy as np

from tfquant.mlir import CompileError, emit_remark, ir, symbol_table
from tfquant.pass_registry import register_pass
from tfquant.passes._composite import call_composite, lifted_calls
from tfquant.passes._constants import replace_constant_operand
from tfquant.passes._tf_ops import constant_value

BIAS_SHIFT = "tfq.bias_shift"


@register_pass("tfq-correct-bias",
               f"Subtract each lifted call's measured mean output shift ({BIAS_SHIFT}) from its bias "
               "(empirical bias correction)")
def correct_bias(module_op: ir.Operation) -> None:
    functions = symbol_table(module_op)
    for call in lifted_calls(module_op):
        if BIAS_SHIFT not in call.attributes:
            continue
        shift = bias_shift(call)
        del call.attributes[BIAS_SHIFT]
        composite = call_composite(call, functions)
        bias_index = composite.bias_index if composite is not None else None
        bias = constant_value(call.operands[bias_index]) if bias_index is not None else None
        if bias is None or bias.dtype.kind != "f":
            why = "it has no bias" if bias_index is None else "its bias is not a float constant"
            emit_remark(call.location, f"its output's mean shift could not be corrected: {why}")
            continue
        if bias.shape != shift.shape:
            raise CompileError(f"{BIAS_SHIFT} has {shift.size} values but the bias has {bias.size}", call.location)
        replace_constant_operand(call, bias_index, bias.astype(np.float64) - shift)


def bias_shift(call: ir.Operation) -> np.ndarray:
    """The call's `tfq.bias_shift` as a vector; a CompileError at the call unless it is one of floats."""
    attr = call.attributes[BIAS_SHIFT]
    if not isinstance(attr, ir.DenseFPElementsAttr) or ir.ShapedType(attr.type).rank != 1:
        raise CompileError(f"{BIAS_SHIFT} must be a rank-1 dense float tensor, got {attr}", call.location)
    return np.asarray(attr, dtype=np.float64)
