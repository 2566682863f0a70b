"""tfq-apply-calibration-stats: turn calibrated points into quantize/dequantize pairs.

Rewrites each `%y = "tfq.calibration_point"(%x) {min = A : f32, max = B : f32, ...}` into

    %q = quant.qcast %x : tensor<..xf32> to tensor<..x!quant.uniform<i8:f32, S:Z>>
    %y = quant.dcast %q : tensor<..x!quant.uniform<i8:f32, S:Z>> to tensor<..xf32>

with S and Z from `_quant.activation_params(A, B, bits)` at the point's `activation_bits`
(int8 asymmetric; int16 symmetric, `!quant.uniform<i16:f32, S>`), 0.0 exact. A point without
`min`/`max` (calibration data never reached it) is removed and its input used directly, so the
lifted calls next to it stay float.
"""
from __future__ import annotations

import math

from tfquant.mlir import CompileError, ir
from tfquant.pass_registry import register_pass
from tfquant.passes._quant import activation_params, quantized_tensor_type
from tfquant.passes._tf_ops import create_op, replace_op
from tfquant.passes._tfq import CalibrationPointOp
from tfquant.passes._points import calibration_points


@register_pass("tfq-apply-calibration-stats",
               "Replace each calibrated tfq.calibration_point by quant.qcast + quant.dcast of its range")
def apply_calibration_stats(module_op: ir.Operation) -> None:
    points = calibration_points(module_op)
    for point in points:
        point.verify()
    for point in points:
        value = point.operands[0]
        calibrated_range = _range(point)
        if calibrated_range is None:
            replace_op(point.operation, [value])
            continue
        with ir.InsertionPoint(point), point.location:  # building a tensor type needs a location
            params = activation_params(*calibrated_range, point.activation_bits)
            quantized_type = quantized_tensor_type(value.type, params)
            quantized = create_op("quant.qcast", [value], [quantized_type], {}, point.location).result
            dequantized = create_op("quant.dcast", [quantized], [value.type], {}, point.location).result
        replace_op(point.operation, [dequantized])


def _range(point: CalibrationPointOp) -> tuple[float, float] | None:
    """The point's calibrated (min, max), None when it has none; refuses a range that is not finite."""
    if point.range is None:
        return None
    low, high = point.range
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise CompileError(f"calibration point has an invalid range [{low}, {high}]", point.location)
    return low, high
