"""tfq-insert-calibration-stats: mark the float activations of lifted calls for calibration.

For every lifted call (`tf.PartitionedCall` with `_tfl_quant_trait = "fully_quantizable"`):
  * each float operand that is not a tf.Const (the activation; weights, biases, GatherV2 tables
    and axes are constants, GatherV2 indices are integers) gets
      %x2 = "tfq.calibration_point"(%x) {id = N : i64, method = "<method>"}
    placed right after the producer of %x (at the block's start for an argument), and the call
    uses %x2;
  * each float result %y gets a point after the call, and every user of %y uses the point instead.
A value has at most one point: a value feeding two lifted calls, or a call result feeding the next
call, shares one. Ids are renumbered 0, 1, 2, ... in module walk order. Calibration later writes
the range it chose onto each point as `min`/`max` f32 attributes (see passes/_quant.py).
"""
from __future__ import annotations

from tfquant.mlir import i64_attr, ir, ops_named, str_attr
from tfquant.pass_registry import PassOption, register_pass
from tfquant.passes._composite import is_lifted_call
from tfquant.passes._tf_ops import constant_value, create_op, defining_op, is_float, uses
from tfquant.passes._verify import FLOAT, INT, STRING, OpSpec, exactly, reading, verify_ops

CALIBRATION_POINT = "tfq.calibration_point"
# What the passes and calibration read from a point: one float tensor in, its range once calibrated.
CALIBRATION_POINT_SPEC = OpSpec(exactly(1), float_operands=(0,), required={"id": INT, "method": STRING},
                                optional={"min": FLOAT, "max": FLOAT})
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
    verify_ops(module_op, {**reading("tf.PartitionedCall"), CALIBRATION_POINT: CALIBRATION_POINT_SPEC})
    method_attr = str_attr(method)
    for call in lifted_calls(module_op):
        for index, operand in enumerate(call.operands):
            if is_float(operand) and constant_value(operand) is None:
                call.operands[index] = _point_for_operand(operand, call, method_attr)
        for result in call.results:
            if is_float(result) and _existing_point(result) is None:
                _add_result_point(result, call, method_attr)
    for index, point in enumerate(calibration_points(module_op)):
        point.attributes["id"] = i64_attr(index)


def lifted_calls(module_op: ir.Operation) -> list[ir.Operation]:
    """The calls made by tfq-lift-quantizable-spots-as-functions, in walk order."""
    return [op for op in ops_named(module_op, "tf.PartitionedCall")
            if is_lifted_call(op)]


def calibration_points(module_op: ir.Operation) -> list[ir.Operation]:
    """Every tfq.calibration_point of the module, in walk order (the order of their ids)."""
    return ops_named(module_op, CALIBRATION_POINT)


def _existing_point(value: ir.Value) -> ir.Value | None:
    """The result of the calibration point on `value` (or `value` itself if it is one), else None."""
    producer = defining_op(value)
    if producer is not None and producer.name == CALIBRATION_POINT:
        return value
    for user in uses(value):
        if user.name == CALIBRATION_POINT:
            return user.results[0]
    return None


def _create_point(value: ir.Value, method: ir.StringAttr, loc: ir.Location) -> ir.Value:
    # The id is a placeholder: points are numbered in walk order once all are in place.
    return create_op(CALIBRATION_POINT, [value], [value.type], {"id": i64_attr(-1), "method": method}, loc).result


def _point_for_operand(value: ir.Value, call: ir.Operation, method: ir.StringAttr) -> ir.Value:
    """The point on an activation operand, created after its producer so that every user can share it."""
    existing = _existing_point(value)
    if existing is not None:
        return existing
    producer = defining_op(value)
    if producer is None:
        # A block argument: after the points already at the block's start, to keep them in id order.
        block = value.owner
        first = next(op.operation for op in block.operations if op.operation.name != CALIBRATION_POINT)
        insertion_point = ir.InsertionPoint(first)
        loc = call.location
    else:
        insertion_point = ir.InsertionPoint.after(producer)
        loc = producer.location
    with insertion_point:
        return _create_point(value, method, loc)


def _add_result_point(result: ir.Value, call: ir.Operation, method: ir.StringAttr) -> None:
    with ir.InsertionPoint.after(call):
        point = _create_point(result, method, call.location)
    result.replace_all_uses_except(point, point.owner.operation)
