"""tfq-quantize-composite-functions: lifted float calls -> `tfq.quantized_op` as each call's spec says.

Rewrites (contract step 4 -> step 5 in `_quant.py`), in program order in every function:

  * static (a call without `tfq.spec` counts as static int8):
    `%y = tf.PartitionedCall(dcast(%xq), %w, [%b]) {f = @composite_..._fn_N, fully_quantizable}`
    whose result goes only to `quant.qcast`s of one type Q ->
    `%y = "tfq.quantized_op"(%xq, scast(%w_i8), [scast(%b_i32)]) {kind, op_attrs, activation} -> Q`;
    the weight symmetric int8 (per output channel when the spec says so; a QAT weight keeps its
    trained parameters), the bias int32 at scale input scale x weight scale. When the result
    reaches no quantized op (only float ops or the function's results), the op returns f32
    instead: no int8 rounding of its output. The input's width (i8 or i16) is the qcast's.
  * dynamic range: `tfq.quantized_op(%x_f32, scast(%w_i8), [%b_f32]) -> f32`: the activation is
    quantized per batch at run time by the lowering.
  * a gather: an int8 table (per tensor); the result takes the table's type, and needs no
    output calibration.
  * a same-scale op (`_op_specs.TF.same_scale`) on `dcast(%a : A)` whose result goes only to
    `quant.qcast`s -> the op on the integer storage of `%a`, its result typed A again; the
    qcasts' users read A instead.

Kind and fusions come from the composite function's body (main op, optional BiasAdd, optional
Relu/Relu6), not from its name. Calls that do not qualify stay float, with a remark saying why;
weight-only, float16 and no-quantize calls are left to other passes. Composite functions left
without callers are erased.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfquant.mlir import ir, symbol_table
from tfquant.pass_registry import PassOption, register_pass
from tfquant.passes._composite import COMPOSITE_PREFIX, KINDS, Composite, analyze_composite, is_lifted_call, weight_axis
from tfquant.passes._op_specs import TF
from tfquant.passes._quant import (QuantParams, bias_params, dequantize_weight, quantize_bias, quantize_weight,
                                   quantized_tensor_type, retyped, storage_tensor_type, storage_type_of, tensor_params,
                                   weight_params, widen_for_bias)
from tfquant.passes._spec import DYNAMIC_RANGE, STATIC, UnitSpec, leave_float, takes_ranges, unit_spec
from tfquant.passes._tf_ops import (CALL_OPS, callee_name, constant_value, create_const, create_op, defining_op,
                                    function_blocks, referenced_symbols, trained_weight, uses, weight_constant)
from tfquant.passes._tfq import QuantizedOp
from tfquant.passes._verify import reading, verify_ops


@register_pass("tfq-quantize-composite-functions",
               "Replace lifted float calls by tfq.quantized_op as their specs say (static: between quant casts; "
               "dynamic range: int8 weight, float input); run same-scale ops on integer storage",
               options=(PassOption("float-output", bool, True,
                                   "ops whose result reaches no quantized op return f32, not int8"),))
def quantize_composite_functions(module_op: ir.Operation, float_output: bool) -> None:
    verify_ops(module_op, reading(*CALL_OPS, *KINDS, TF.bias_add, *TF.same_scale))
    functions = symbol_table(module_op)
    quantized: set[str] = set()
    with module_op.location:  # types built below need a location in scope
        for block in function_blocks(module_op):
            # Program order is topological: a same-scale op is rewritten before its consumers are
            # quantized, so they read the parameters it forwards, and one sweep handles chains.
            for op in [op.operation for op in block.operations]:
                if op.name in CALL_OPS:
                    callee = callee_name(op)
                    if callee in functions and callee.startswith(COMPOSITE_PREFIX) and \
                            _quantize_call(op, functions[callee], float_output):
                        quantized.add(callee)
                elif op.name in TF.same_scale:
                    _run_on_storage(op)
    # Composite functions left without callers would only be inlined back as dead code.
    referenced = referenced_symbols(module_op)
    for name in quantized - referenced:
        functions[name].erase()


# ----------------------------------------------------------------------------- quant casts

def _uniform_params(value: ir.Value) -> QuantParams | None:
    """Per-tensor parameters of a value whose element type is `!quant.uniform`, else None."""
    params = tensor_params(value.type)
    return params if params is not None and params.axis is None else None


def _quantized_source(value: ir.Value) -> ir.Value | None:
    """`%q` when `value` is `quant.dcast(%q)` with `%q` per-tensor quantized, else None."""
    op = defining_op(value)
    if op is None or op.name != "quant.dcast" or _uniform_params(op.operands[0]) is None:
        return None
    return op.operands[0]


def _common_qcast_type(value: ir.Value) -> ir.Type | None:
    """The result type shared by the users of `value` when all are per-tensor `quant.qcast`s."""
    users = uses(value)
    types = {str(u.results[0].type) for u in users if u.name == "quant.qcast"}
    if not users or len(types) != 1 or any(u.name != "quant.qcast" for u in users):
        return None
    result = users[0].results[0]
    return result.type if _uniform_params(result) is not None else None


# ----------------------------------------------------------------------------- rewriting

def _cast(name: str, value: ir.Value, result_type: ir.Type, loc: ir.Location) -> ir.Value:
    return create_op(name, [value], [result_type], {}, loc).result


def _storage(value: ir.Value, loc: ir.Location) -> ir.Value:
    """The integer storage of a quantized value: the scast's source when it comes from one, else a new scast."""
    producer = defining_op(value)
    storage_type = storage_type_of(value.type)
    if producer is not None and producer.name == "quant.scast" and producer.operands[0].type == storage_type:
        return producer.operands[0]
    return _cast("quant.scast", value, storage_type, loc)


def _replace_qcast_users(value: ir.Value, quantized: ir.Value) -> None:
    """Each `quant.qcast` of `value` -> `quantized`; users reading parameters from their type accept it."""
    for user in uses(value):
        if user.name == "quant.qcast":
            user.results[0].replace_all_uses_with(quantized)
            user.erase()


def _only_dcast_users(qcasts: Sequence[ir.Operation]) -> bool:
    """Whether every user of the qcasts is a dcast, which takes its parameters from its operand."""
    return all(u.name == "quant.dcast" for q in qcasts for u in uses(q.results[0]))


def _quantize_call(call: ir.Operation, composite_fn: ir.Operation, allow_float_output: bool) -> bool:
    """Replace one lifted call by its `tfq.quantized_op` as its spec says; False (IR untouched, a
    remark saying why) when it does not qualify."""
    spec = unit_spec(call) or UnitSpec(STATIC)
    if spec.method not in (STATIC, DYNAMIC_RANGE) or not is_lifted_call(call) or len(call.results) != 1:
        return False
    composite = analyze_composite(composite_fn)
    if composite is None:
        leave_float(call, "no quantized form for this pattern")
        return False
    operands = list(call.operands)
    weight = weight_constant(operands[composite.weight_index])
    bias = None if composite.bias_index is None else constant_value(operands[composite.bias_index])
    if weight is None or weight.dtype != np.float32 or (composite.bias_index is not None and bias is None):
        leave_float(call, "its weight or bias is not a float constant")
        return False
    if composite.kind == "gather":
        return _quantize_gather(call, composite, weight)
    if spec.method == DYNAMIC_RANGE:
        return _quantize_dynamic(call, composite, weight, bias, spec)
    source = _quantized_source(operands[composite.input_index])
    if source is None:
        leave_float(call, "no calibration data reached its input")
        return False
    qcasts = [u for u in uses(call.results[0]) if u.name == "quant.qcast"]
    output_type = _common_qcast_type(call.results[0])
    float_output = allow_float_output and not _feeds_quantized(qcasts)
    if output_type is None and not (float_output and not qcasts):
        leave_float(call, "no calibration data reached its output")
        return False
    weights, weight, half_up = _weight_params(operands[composite.weight_index], composite, weight, spec)
    if bias is not None and weights.axis is not None and bias.size != len(weights.scales):
        leave_float(call, "its bias does not run along the weight's channel axis")
        return False
    input_params = tensor_params(source.type)
    if bias is not None:
        weights = widen_for_bias(weights, bias, input_params.scale)
    loc = call.location
    with ir.InsertionPoint(call):
        new_operands = [source, _quantized_constant(quantize_weight(weight, weights, half_up), weights,
                                                    operands[composite.weight_index])]
        if bias is not None:
            biases = bias_params(input_params.scale, weights)
            new_operands.append(_quantized_constant(quantize_bias(bias, biases), biases,
                                                    operands[composite.bias_index]))
        result_type = call.results[0].type if float_output else output_type
        result = QuantizedOp.build(composite.kind, composite.op_attrs, composite.activation, new_operands,
                                   result_type, loc).result
    if float_output:
        _replace_dcast_users(call.results[0], result)
        call.results[0].replace_all_uses_with(result)
    else:
        _replace_qcast_users(call.results[0], result)
    _erase_with_dead_operands(call)
    return True


def _weight_params(weight_value: ir.Value, composite: Composite, weight: np.ndarray,
                   spec: UnitSpec) -> tuple[QuantParams, np.ndarray, bool]:
    """The weight's parameters, the float values to quantize with them, and whether to round
    half up: a QAT weight's trained parameters when they are symmetric int8 (rounded as its
    fake-quant op rounded it), else symmetric int8 from its values.

    A trained weight with a zero point is first snapped to its trained grid, so that the
    quantized model computes with the weights it was trained with.
    """
    trained = trained_weight(weight_value)
    if trained is not None:
        params = tensor_params(trained[1].type)
        if not any(params.zero_points) and params.storage_bits == 8:
            return params, weight, True
        weight = dequantize_weight(quantize_weight(weight, params, half_up=True), params)
    return weight_params(weight, weight_axis(composite, weight, spec.per_channel)), weight, False


def _quantize_dynamic(call: ir.Operation, composite: Composite, weight: np.ndarray, bias: np.ndarray | None,
                      spec: UnitSpec) -> bool:
    """Dynamic range: int8 weight, float input quantized per batch at run time, float bias and result."""
    operands = list(call.operands)
    weights = weight_params(weight, weight_axis(composite, weight, spec.per_channel))
    with ir.InsertionPoint(call):
        new_operands = [operands[composite.input_index],
                        _quantized_constant(quantize_weight(weight, weights), weights,
                                            operands[composite.weight_index])]
        if bias is not None:
            new_operands.append(operands[composite.bias_index])
        result = QuantizedOp.build(composite.kind, composite.op_attrs, composite.activation, new_operands,
                                   call.results[0].type, call.location).result
    call.results[0].replace_all_uses_with(result)
    _erase_with_dead_operands(call)
    return True


def _quantized_constant(storage: np.ndarray, params: QuantParams, like: ir.Value) -> ir.Value:
    """`quant.scast` of a new integer tf.Const to the quant type of `params` (at `like`'s location)."""
    loc = like.owner.location if isinstance(like.owner, (ir.Operation, ir.OpView)) else ir.Location.unknown()
    constant = create_const(storage, loc)
    return _cast("quant.scast", constant, quantized_tensor_type(like.type, params), loc)


def _feeds_quantized(qcasts: Sequence[ir.Operation]) -> bool:
    """Whether a call's quantized result reaches a quantizable call or a same-scale op.

    When it does not (it feeds float ops or the function's results), the quantized call returns
    float directly: accumulator x scale, with no int8 output rounding, as TensorFlow's
    float-output quantized functions do.
    """
    for qcast in qcasts:
        for dcast in uses(qcast.results[0]):
            if dcast.name != "quant.dcast":
                return True
            for user in uses(dcast.results[0]):
                if _runs_on_storage(user) or _is_static_call(user):
                    return True
    return False


def _runs_on_storage(op: ir.Operation) -> bool:
    """Whether `op` is a same-scale op whose result is quantized again or read by a static call (so
    it can run on integer storage). A Pad in front of a float op is not: the value it pads may as
    well stay float.
    """
    users = uses(op.results[0]) if op.name in TF.same_scale and op.results else []
    return bool(users) and (all(u.name == "quant.qcast" for u in users) or any(_is_static_call(u) for u in users))


def _replace_dcast_users(value: ir.Value, float_result: ir.Value) -> None:
    """The dcasts of each qcast of `value` -> `float_result`; the casts are erased (other users of
    `value` are left to the caller)."""
    for qcast in [u for u in uses(value) if u.name == "quant.qcast"]:
        for dcast in uses(qcast.results[0]):
            dcast.results[0].replace_all_uses_with(float_result)
            dcast.erase()
        qcast.erase()


def _quantize_gather(call: ir.Operation, composite: Composite, table: np.ndarray) -> bool:
    """A gather on an int8 table (per tensor); its result keeps the table's parameters."""
    operands = list(call.operands)
    qcasts = uses(call.results[0])
    if constant_value(operands[composite.axis_index]) is None or not _only_dcast_users(
            [u for u in qcasts if u.name == "quant.qcast"]):
        leave_float(call, "its axis is not a constant or its result is quantized with other parameters")
        return False
    table_params = weight_params(table, None)
    result = call.results[0]
    loc = call.location
    with ir.InsertionPoint(call):
        table_q = _quantized_constant(quantize_weight(table, table_params), table_params,
                                      operands[composite.weight_index])
        gathered = QuantizedOp.build(composite.kind, composite.op_attrs, composite.activation,
                                     [table_q, operands[composite.input_index], operands[composite.axis_index]],
                                     quantized_tensor_type(result.type, table_params), loc).result
        _replace_qcast_users(result, gathered)
        if list(result.uses):  # float users read the gathered values through a dcast
            result.replace_all_uses_with(_cast("quant.dcast", gathered, result.type, loc))
    _erase_with_dead_operands(call)
    return True


PURE_PRODUCERS = frozenset({"tf.Const", "quant.qcast", "quant.dcast", "quant.scast"})


def _erase_with_dead_operands(op: ir.Operation) -> None:
    """Erase `op`, then, transitively, the constants and quant casts that fed only it."""
    producers: list[ir.Operation] = []
    for value in op.operands:
        producer = defining_op(value)
        if producer is not None and producer.name in PURE_PRODUCERS and producer not in producers:
            producers.append(producer)
    op.erase()
    for producer in producers:
        if not list(producer.results[0].uses):
            _erase_with_dead_operands(producer)


def _run_on_storage(op: ir.Operation) -> bool:
    """Run a same-scale op on integer storage when its data inputs are dcasts of one type A and its
    result goes only to qcasts read by dcasts (those then read A), or, with no qcast after it (a QAT
    model has fake-quant ops only where training put them), feeds a static lifted call (its users then
    read a dcast of A). False when it does not qualify."""
    data = list(op.operands)[:-1] if op.name == "tf.ConcatV2" else [op.operands[0]]
    sources = [_quantized_source(v) for v in data]
    if any(s is None for s in sources) or len({str(ir.ShapedType(s.type).element_type) for s in sources}) != 1:
        return False
    result = op.results[0]
    qcasts = uses(result)
    requantized = bool(qcasts) and all(u.name == "quant.qcast" for u in qcasts) and _only_dcast_users(qcasts)
    if not requantized and not any(_is_static_call(u) for u in qcasts):
        return False
    quant_element = ir.ShapedType(sources[0].type).element_type
    params = tensor_params(sources[0].type)
    loc = op.location
    with ir.InsertionPoint(op):
        storage_inputs = [_storage(s, loc) for s in sources]
        operands = storage_inputs + list(op.operands)[len(data):]
        name, attrs = op.name, {n: op.attributes[n] for n in op.attributes}
        attrs["T"] = ir.TypeAttr.get(ir.IntegerType.get_signless(params.storage_bits))
        if name == "tf.Pad" and params.zero_point != 0:
            # Pad fills with 0, which is the real value 0 only when the zero point is 0.
            name = "tf.PadV2"
            operands.append(create_const(np.array(params.zero_point, dtype=params.storage_dtype), loc))
        new_op = create_op(name, operands, [storage_tensor_type(result.type, params.storage_bits)], attrs, loc)
        quantized = _cast("quant.scast", new_op.result, retyped(result.type, quant_element), loc)
        if not requantized:
            result.replace_all_uses_with(_cast("quant.dcast", quantized, result.type, loc))
    _replace_qcast_users(result, quantized)
    _erase_with_dead_operands(op)
    return True


def _is_static_call(op: ir.Operation) -> bool:
    """Whether `op` is a lifted call quantized with calibrated (or trained) activation ranges."""
    return is_lifted_call(op) and takes_ranges(op)
