"""tfq-insert-calibration-stats: mark the float activations of lifted calls for calibration.

For every lifted call (`tf.PartitionedCall` with `_tfl_quant_trait = "fully_quantizable"`) whose
`tfq.spec` method takes calibrated ranges (static; a call without a spec counts as static int8),
and whose activation is not already quantized by a QAT qcast/dcast pair:
  * each float operand that is not a tf.Const (the activation; weights, biases, GatherV2 tables
    and axes are constants, GatherV2 indices are integers) gets
      %x2 = "tfq.calibration_point"(%x) {id = N : i64, method = "<method>", activation_bits = B : i64}
    placed right after the producer of %x (at the block's start for an argument), and the call
    uses %x2;
  * each float result %y gets a point after the call, and every user of %y uses the point instead.
A value has at most one point: a value feeding two lifted calls, or a call result feeding the next
call, shares one, with the widest activation bits of the calls it serves (a 16-bit call next to an
8-bit one reads or writes 16 bits on that edge). Ids are renumbered 0, 1, 2, ... in module walk order. Calibration later writes
the range it chose onto each point as `min`/`max` f32 attributes (see passes/_quant.py).
"""
from __future__ import annotations

from tfquant.mlir import ir
from tfquant.pass_registry import PassOption, register_pass
from tfquant.passes._composite import lifted_calls
from tfquant.passes._spec import takes_ranges, unit_spec
from tfquant.passes._tf_ops import constant_value, is_float
from tfquant.passes._points import (calibration_points, feeds_qcast, is_quantized, number_points, point_for_operand,
                                    point_for_result)
from tfquant.passes._verify import reading, verify_ops

DEFAULT_METHOD = "CALIBRATION_METHOD_MIN_MAX"
# The names of TensorFlow's CalibrationOptions.CalibrationMethod but UNSPECIFIED, spelled out so
# that tfquant-opt needs no TensorFlow (~4 s) to check them; a test compares them with the enum.
CALIBRATION_METHODS = ("CALIBRATION_METHOD_MIN_MAX", "CALIBRATION_METHOD_AVERAGE_MIN_MAX",
                       "CALIBRATION_METHOD_HISTOGRAM_PERCENTILE", "CALIBRATION_METHOD_HISTOGRAM_MSE_BRUTEFORCE",
                       "CALIBRATION_METHOD_HISTOGRAM_MSE_MAX_FREQUENCY", "CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC")


@register_pass("tfq-insert-calibration-stats",
               "Put a tfq.calibration_point on every float activation operand and result of lifted calls",
               options=(PassOption("method", str, DEFAULT_METHOD, "calibration method recorded on each point",
                                   choices=CALIBRATION_METHODS),))
def insert_calibration_stats(module_op: ir.Operation, method: str) -> None:
    verify_ops(module_op, reading("tf.PartitionedCall"))
    for point in calibration_points(module_op):
        point.verify()
    for call in lifted_calls(module_op):
        if not takes_ranges(call):
            continue
        spec = unit_spec(call)
        bits = spec.activation_bits if spec is not None else 8
        for index, operand in enumerate(call.operands):
            if is_float(operand) and constant_value(operand) is None and not is_quantized(operand):
                call.operands[index] = point_for_operand(operand, call.location, method, bits)
        for result in call.results:
            if is_float(result) and not feeds_qcast(result):
                point_for_result(result, call, method, bits)
    number_points(module_op)
