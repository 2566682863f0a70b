"""Calibration points (`tfq.calibration_point`) on activation edges, shared by the passes that
place them (tfq-insert-calibration-stats on lifted calls, tfq-tfl-prepare-quantize on tfl ops).

A value has at most one point, shared by every user, with the widest activation bits of the
units it serves.
"""
from __future__ import annotations

from tfquant.mlir import ir, ops_named
from tfquant.passes._tf_ops import defining_op, uses
from tfquant.passes._tfq import CalibrationPointOp

CALIBRATION_POINT = CalibrationPointOp.OPERATION_NAME


def calibration_points(module_op: ir.Operation) -> list[CalibrationPointOp]:
    """Every tfq.calibration_point of the module, in walk order (the order of their ids)."""
    return [CalibrationPointOp(op) for op in ops_named(module_op, CALIBRATION_POINT)]


def number_points(module_op: ir.Operation) -> None:
    """Renumber the points' ids 0, 1, 2, ... in walk order."""
    for index, point in enumerate(calibration_points(module_op)):
        point.id = index


def is_quantized(value: ir.Value) -> bool:
    """Whether `value` comes from a qcast/dcast pair already (a QAT model's fake-quant range)."""
    producer = defining_op(value)
    return producer is not None and producer.name == "quant.dcast"


def feeds_qcast(value: ir.Value) -> bool:
    return any(user.name == "quant.qcast" for user in uses(value))


def _widen(point: ir.Value, bits: int) -> None:
    op = CalibrationPointOp(defining_op(point))
    if bits > op.activation_bits:
        op.activation_bits = bits


def _existing_point(value: ir.Value) -> ir.Value | None:
    """The result of the calibration point on `value` (or `value` itself if it is one), else None."""
    producer = defining_op(value)
    if producer is not None and producer.name == CALIBRATION_POINT:
        return value
    for user in uses(value):
        if user.name == CALIBRATION_POINT:
            return user.results[0]
    return None


def point_for_operand(value: ir.Value, loc: ir.Location, method: str, bits: int) -> ir.Value:
    """The point on an activation operand, created after its producer so that every user can share it
    (`loc` is used for a block argument's point, which has no producer)."""
    existing = _existing_point(value)
    if existing is not None:
        _widen(existing, bits)
        return existing
    producer = defining_op(value)
    if producer is None:
        # A block argument: after the points already at the block's start, to keep them in id order.
        block = value.owner
        first = next(op.operation for op in block.operations if op.operation.name != CALIBRATION_POINT)
        insertion_point = ir.InsertionPoint(first)
    else:
        insertion_point = ir.InsertionPoint.after(producer)
        loc = producer.location
    with insertion_point:
        return CalibrationPointOp.build(value, method, bits, loc).result


def point_for_result(result: ir.Value, op: ir.Operation, method: str, bits: int) -> ir.Value:
    """The point on a result of `op`, which every other user of the result then reads."""
    existing = _existing_point(result)
    if existing is not None:
        _widen(existing, bits)
        return existing
    with ir.InsertionPoint.after(op):
        point = CalibrationPointOp.build(result, method, bits, op.location).result
    result.replace_all_uses_except(point, point.owner.operation)
    return point
