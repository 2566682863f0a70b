"""tfq-tfl-prepare-quantize: give each tfl op its spec and mark its activations for calibration.

Every tfl op that the method concerns gets `tfq.spec = {method, activation_bits, per_channel}`
(`_spec.UnitSpec`): the top-level method, unless a unit-wise spec (the `units` option, as in
tfq-assign-quantization-spec, with `op_type` the builtin name "CONV_2D") matches it. Which ops:

    static          every op of the `tfl` table (passes/_op_specs.py); any other op computing on
                    floats stays float with a remark (integer-only mode later refuses it)
    dynamic_range   table ops with a hybrid kernel, whose weight (an embedding's table) is a
                    constant of at least `min-weight-elements` elements
    float16         every op reading a float constant

For a static unit, each float activation operand (the table's `activations`; a constant one is
quantized from its own values, and a QAT qcast/dcast pair already carries its range) and each
float result gets a `tfq.calibration_point`, shared by every user of the value, with the unit's
activation bits. Ids are renumbered 0, 1, 2, ... in walk order. A value read at two widths (an int8
unit feeding one with 16-bit activations, a unit rule with `activation_bits` 16) has a point per
width, the second reading the first: each side takes the range at its own width, and
tfq-tfl-quantize requantizes between them (LiteRT's QUANTIZE kernel converts int8 <-> int16).

A static unit whose result reaches a divisor, a log or a root (`ZERO_SENSITIVE` in the table)
through float ops stays float: int8 rounding could turn a small positive value into 0 there.
"""
from __future__ import annotations

import warnings

from tfquant.mlir import describe_location, enclosing_function_name, ir, name_of
from tfquant.pass_registry import PassOption, register_pass
from tfquant.passes._op_specs import SAME_SCALE, SHAPE_READERS, TFL, ZERO_SENSITIVE, TflOp
from tfquant.passes._points import feeds_qcast, is_quantized, number_points, point_for_operand, point_for_result
from tfquant.passes._spec import (DYNAMIC_RANGE, FLOAT16, METHODS, NO_QUANTIZE, STATIC, UnitSpec, checked_spec,
                                  is_static_unit, keep_float, set_unit_spec, unit_spec)
from tfquant.passes._tf_ops import defining_op, is_float, uses
from tfquant.passes._tfl import STRUCTURAL_OPS, builtin_name, tfl_constant, tfl_ops
from tfquant.passes._tfq import CalibrationPointOp
from tfquant.passes.assign_quantization_spec import DEFAULT_MIN_WEIGHT_ELEMENTS, UnitRule, parse_unit_rules
from tfquant.passes.insert_calibration_stats import CALIBRATION_METHODS, DEFAULT_METHOD


@register_pass("tfq-tfl-prepare-quantize",
               "Give each tfl op its quantization spec and put calibration points on the activations of "
               "static units",
               options=(PassOption("method", str, STATIC, "the top-level method", choices=METHODS),
                        PassOption("activation-bits", int, 8, "activation bits of the static method (8 or 16)"),
                        PassOption("per-channel", bool, True, "quantize weights per output channel"),
                        PassOption("min-weight-elements", int, DEFAULT_MIN_WEIGHT_ELEMENTS,
                                   "dynamic-range weights with fewer elements stay float"),
                        PassOption("units", str, "[]", "unit-wise specs, as a JSON list"),
                        PassOption("calibration-method", str, DEFAULT_METHOD,
                                   "calibration method recorded on each point", choices=CALIBRATION_METHODS)))
def tfl_prepare_quantize(module_op: ir.Operation, method: str, activation_bits: int, per_channel: bool,
                         min_weight_elements: int, units: str, calibration_method: str) -> None:
    rules = parse_unit_rules(units, module_op.location)
    matched: set[int] = set()
    units_to_mark = []
    for op in tfl_ops(module_op):
        if op.name in STRUCTURAL_OPS or not _computes_on_floats(op):
            continue
        rule = next((r for r in rules if r.matches(_unit_names(op))), None)
        spec = checked_spec(method, activation_bits, per_channel, op.location)
        if rule is not None:
            matched.add(rule.index)
            spec = checked_spec(rule.method, rule.activation_bits or activation_bits, per_channel, op.location)
        if not _concerns(spec.method, op):
            continue
        set_unit_spec(op, spec)
        reason = _float_reason(spec, rule, op, min_weight_elements)
        if reason is not None:
            keep_float(op, reason)
        else:
            units_to_mark.append(op)
    _protect_zero_sensitive_operands(module_op)
    for op in units_to_mark:
        spec = unit_spec(op)
        if spec.method == STATIC:
            _mark_activations(op, TFL[op.name], calibration_method, spec.activation_bits)
    for rule in rules:
        if rule.index not in matched:
            warnings.warn(f"{rule.describe()} matches no quantizable op", stacklevel=2)
    number_points(module_op)


def _computes_on_floats(op: ir.Operation) -> bool:
    return op.name not in SHAPE_READERS and any(is_float(v) for v in (*op.operands, *op.results))


def _unit_names(op: ir.Operation) -> dict[str, str]:
    return {"op_type": builtin_name(op), "node_name": name_of(op.location), "func_name": enclosing_function_name(op)}


def _concerns(method: str, op: ir.Operation) -> bool:
    """Whether `op` is a unit of `method` (see the module docstring)."""
    if method == DYNAMIC_RANGE:
        return op.name in TFL and TFL[op.name].hybrid_version is not None
    if method == FLOAT16:
        return any(tfl_constant(v) is not None and is_float(v) for v in op.operands)
    return True


def _float_reason(spec: UnitSpec, rule: UnitRule | None, op: ir.Operation, min_weight_elements: int) -> str | None:
    if spec.method == NO_QUANTIZE:
        return f"excluded by {rule.describe()}" if rule is not None else "the method is no_quantize"
    if spec.method == STATIC and op.name not in TFL:
        return f"tfquant has no quantized form of {builtin_name(op)}"
    if spec.method == STATIC and spec.activation_bits == 16 and not TFL[op.name].int16:
        return f"TFLite has no 16x8 kernel for {builtin_name(op)}"
    if spec.method == DYNAMIC_RANGE:
        weight = tfl_constant(op.operands[TFL[op.name].hybrid_weight])
        if weight is None:
            return "its weight is not a constant"
        if weight.size < min_weight_elements:
            return (f"its weight has {weight.size} elements, fewer than min_num_elements_for_weights "
                    f"({min_weight_elements})")
    return None


def _protect_zero_sensitive_operands(module_op: ir.Operation) -> None:
    """Keep float the static units whose result reaches a divisor, a log or a root through float ops:
    int8 rounding could turn a small positive value there into 0, and the model return Inf or NaN
    where the float model does not (TensorFlow's converter does that to a log-mel front end)."""
    for op in tfl_ops(module_op):
        if op.name in ZERO_SENSITIVE and not is_static_unit(op):
            for index in ZERO_SENSITIVE[op.name]:
                if index < len(op.operands):
                    _keep_float_upstream(op.operands[index], op, set())


def _keep_float_upstream(value: ir.Value, sink: ir.Operation, seen: set) -> None:
    producer = defining_op(value)
    if producer is None or producer in seen or not is_float(value) or tfl_constant(value) is not None:
        return
    seen.add(producer)
    if is_static_unit(producer):
        where = name_of(sink.location) or describe_location(sink.location)
        keep_float(producer, f"its result reaches {builtin_name(sink)} ({where}), where int8 rounding could turn "
                              f"a small value into 0")
    if producer.name in TFL and TFL[producer.name].output != SAME_SCALE:
        return
    for operand in producer.operands:
        _keep_float_upstream(operand, sink, seen)


def _mark_activations(op: ir.Operation, spec: TflOp, calibration_method: str, bits: int) -> None:
    indices = range(len(op.operands)) if spec.activations is None else spec.activations
    for index in indices:
        operand = op.operands[index]
        if is_float(operand) and tfl_constant(operand) is None and not is_quantized(operand):
            op.operands[index] = _point_at_width(operand, op.location, calibration_method, bits)
    for result in op.results:
        if is_float(result) and not feeds_qcast(result):
            point_for_result(result, op, calibration_method, bits)


def _point_at_width(value: ir.Value, loc: ir.Location, calibration_method: str, bits: int) -> ir.Value:
    """The point of `bits` on `value`: the one already there (or chained after it) of that width, else
    a new one, chained after a point of the other width rather than widening it (its other readers
    keep their width)."""
    root = _point_on(value)
    if root is None:
        return point_for_operand(value, loc, calibration_method, bits)
    for point in (root, *(user.results[0] for user in uses(root) if user.name == CalibrationPointOp.OPERATION_NAME)):
        if CalibrationPointOp(defining_op(point)).activation_bits == bits:
            return point
    with ir.InsertionPoint.after(defining_op(root)):
        return CalibrationPointOp.build(root, calibration_method, bits, defining_op(root).location).result


def _point_on(value: ir.Value) -> ir.Value | None:
    """The result of the point on `value` (`value` itself if it is one), else None."""
    producer = defining_op(value)
    if producer is not None and producer.name == CalibrationPointOp.OPERATION_NAME:
        return value
    return next((user.results[0] for user in uses(value) if user.name == CalibrationPointOp.OPERATION_NAME), None)
