"""tfq-quantize-composite-functions: lifted float calls between quant casts -> int8 calls.

Rewrites (contract step 3 -> step 4 in `_quant.py`), in program order in every function:

  * `%y = tf.PartitionedCall(dcast(%xq), %w, [%b]) {f = @composite_..._fn_N, fully_quantizable}`
    whose result goes only to `quant.qcast`s of one type Q ->
    `scast<Q>(tf.PartitionedCall(scast<i8>(%xq), %w_i8, [%b_i32]) {f = @quantized_..._fn_N,
    _tfq_quantized = true, _tfq_kind = KIND})`, where `@quantized_..._fn_N` holds one
    `tfq.quantized_op`; the weight is symmetric int8 (per output channel when `per-channel`),
    the bias int32 at scale input scale x weight scale. A gather needs no output calibration:
    its result takes the table's per-tensor parameters.
    When the result reaches no quantized op (only float ops or the function's results), the
    quantized call returns f32 instead (`float_output = true`): no int8 rounding of its output.
  * a same-scale op (Reshape, Identity, MaxPool, Squeeze, ExpandDims, Transpose, Pad, ConcatV2)
    on `dcast(%a : A)` whose result goes only to `quant.qcast`s -> the op on the int8 storage of
    `%a`, its result typed A again; the qcasts' users read A instead.

Kind and fusions come from the composite function's body (main op, optional BiasAdd, optional
Relu/Relu6), not from its name. Calls that do not qualify stay float. Composite functions left
without callers are erased.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfquant.mlir import func, i64_attr, ir, str_attr, symbol_table
from tfquant.pass_registry import PassOption, register_pass
from tfquant.passes._composite import (COMPOSITE_PREFIX, KINDS, Composite, analyze_composite, is_lifted_call,
                                       weight_axis)
from tfquant.passes._quant import (QUANTIZED_KIND, QUANTIZED_OP, QuantParams, parse_uniform, quantize_bias,
                                   quantize_weight, quantized_tensor_type, retyped, storage_tensor_type,
                                   weight_params, widen_for_bias)
from tfquant.passes._tf_ops import (CALL_OPS, callee_name, constant_value, create_const, create_op, defining_op,
                                    function_blocks, referenced_symbols, uses)
from tfquant.passes._verify import reading, verify_ops

# Ops whose int8 result has the scale and zero point of their (first) int8 input.
SAME_SCALE_OPS = frozenset({"tf.Reshape", "tf.Identity", "tf.MaxPool", "tf.Squeeze", "tf.ExpandDims",
                            "tf.Transpose", "tf.Pad", "tf.ConcatV2"})


@register_pass("tfq-quantize-composite-functions",
               "Replace lifted float calls between quant casts by int8 calls of tfq.quantized_op; "
               "run same-scale ops on int8",
               options=(PassOption("per-channel", bool, True, "quantize weights per output channel"),
                        PassOption("float-output", bool, True,
                                   "calls whose result reaches no quantized op return f32, not int8")))
def quantize_composite_functions(module_op: ir.Operation, per_channel: bool, float_output: bool) -> None:
    verify_ops(module_op, reading(*CALL_OPS, *KINDS, "tf.BiasAdd", *SAME_SCALE_OPS))
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
                            _quantize_call(op, functions[callee], functions, per_channel, float_output):
                        quantized.add(callee)
                elif op.name in SAME_SCALE_OPS:
                    _run_on_storage(op)
    # Composite functions left without callers would only be inlined back as dead code.
    referenced = referenced_symbols(module_op)
    for name in quantized - referenced:
        functions[name].erase()


# ----------------------------------------------------------------------------- quant casts

def _uniform_params(value: ir.Value) -> QuantParams | None:
    """Per-tensor parameters of a value whose element type is `!quant.uniform`, else None."""
    if not isinstance(value.type, ir.ShapedType):
        return None
    params = parse_uniform(ir.ShapedType(value.type).element_type)
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
    """The int8 storage of a quantized value: the scast's source when it comes from one, else a new scast."""
    producer = defining_op(value)
    storage_type = storage_tensor_type(value.type)
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


def _quantized_op_attrs(composite: Composite, input_params: QuantParams, weights: QuantParams,
                        output_params: QuantParams) -> dict[str, ir.Attribute]:
    return {
        "kind": str_attr(composite.kind),
        "op_attrs": ir.DictAttr.get(composite.op_attrs),
        "input_scale": ir.FloatAttr.get_f64(input_params.scale),
        "input_zero_point": i64_attr(input_params.zero_point),
        "weight_scales": ir.DenseElementsAttr.get(np.asarray(weights.scales, dtype=np.float64)),
        "weight_axis": i64_attr(-1 if weights.axis is None else weights.axis),
        "output_scale": ir.FloatAttr.get_f64(output_params.scale),
        "output_zero_point": i64_attr(output_params.zero_point),
        "activation": str_attr(composite.activation),
    }


def _unique_name(base: str, functions: dict[str, ir.Operation]) -> str:
    name, suffix = base, 0
    while name in functions:
        suffix += 1
        name = f"{base}_{suffix}"
    return name


def _create_quantized_function(composite_fn: ir.Operation, composite: Composite, operands: Sequence[ir.Value],
                               result_type: ir.Type, attrs: dict[str, ir.Attribute],
                               functions: dict[str, ir.Operation]) -> str:
    """A private `@quantized_<suffix>` next to the composite function, returning one tfq.quantized_op."""
    old_name = ir.StringAttr(composite_fn.attributes["sym_name"]).value
    name = _unique_name("quantized_" + old_name[len(COMPOSITE_PREFIX):], functions)
    function_type = ir.FunctionType.get([v.type for v in operands], [result_type])
    with ir.InsertionPoint(composite_fn), composite_fn.location:
        new_fn = func.FuncOp(name, function_type, visibility="private")
        entry = new_fn.add_entry_block()
        with ir.InsertionPoint(entry):
            result = create_op(QUANTIZED_OP, list(entry.arguments), [result_type], attrs,
                               composite.main.location).result
            func.ReturnOp([result])
    functions[name] = new_fn.operation
    return name


def _quantize_call(call: ir.Operation, composite_fn: ir.Operation, functions: dict[str, ir.Operation],
                   per_channel: bool, allow_float_output: bool) -> bool:
    """Replace one lifted call by its int8 form; False (IR untouched) when it does not qualify."""
    if not is_lifted_call(call) or len(call.results) != 1:
        return False
    composite = analyze_composite(composite_fn)
    if composite is None:
        return False
    operands = list(call.operands)
    weight = constant_value(operands[composite.weight_index])
    bias = None if composite.bias_index is None else constant_value(operands[composite.bias_index])
    if weight is None or weight.dtype != np.float32 or (composite.bias_index is not None and bias is None):
        return False
    if composite.kind == "gather":
        return _quantize_gather(call, composite, composite_fn, functions, weight)
    source = _quantized_source(operands[composite.input_index])
    output_type = _common_qcast_type(call.results[0])
    if source is None or output_type is None:
        return False
    float_output = allow_float_output and not _feeds_quantized(uses(call.results[0]))
    input_params = _uniform_params(source)
    output_params = FLOAT_OUTPUT if float_output else _uniform_params_of_type(output_type)
    weights = weight_params(weight, weight_axis(composite, weight, per_channel))
    if bias is not None and weights.axis is not None and bias.size != len(weights.scales):
        return False
    if bias is not None:
        weights = widen_for_bias(weights, bias, input_params.scale)
    loc = call.location
    with ir.InsertionPoint(call):
        new_operands = [_storage(source, loc),
                        create_const(quantize_weight(weight, weights), operands[composite.weight_index].location)]
        if bias is not None:
            new_operands.append(create_const(quantize_bias(bias, input_params.scale, weights.scales),
                                             operands[composite.bias_index].location))
    attrs = _quantized_op_attrs(composite, input_params, weights, output_params)
    if float_output:
        attrs["float_output"] = ir.BoolAttr.get(True)
        result_type = call.results[0].type
    else:
        result_type = storage_tensor_type(call.results[0].type)
    name = _create_quantized_function(composite_fn, composite, new_operands, result_type, attrs, functions)
    new_result = _create_call(call, name, new_operands, result_type, composite.kind)
    if float_output:
        _replace_dcast_users(call.results[0], new_result)
    else:
        with ir.InsertionPoint(call):
            quantized = _cast("quant.scast", new_result, output_type, loc)
        _replace_qcast_users(call.results[0], quantized)
    _erase_with_dead_operands(call)
    return True


# Output parameters of a call whose result stays float (recorded, not used).
FLOAT_OUTPUT = QuantParams((1.0,), (0,))


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
                if _runs_on_storage(user) or (user.name in CALL_OPS and (
                        is_lifted_call(user) or "_tfq_quantized" in user.attributes)):
                    return True
    return False


def _runs_on_storage(op: ir.Operation) -> bool:
    """Whether `op` is a same-scale op whose result is quantized again (so it can run on int8).

    A Pad in front of a float op is not: the value it pads may as well stay float.
    """
    users = uses(op.results[0]) if op.name in SAME_SCALE_OPS and op.results else []
    return bool(users) and all(u.name == "quant.qcast" for u in users)


def _replace_dcast_users(value: ir.Value, float_result: ir.Value) -> None:
    """The dcasts of each qcast of `value` -> `float_result`; the casts are erased."""
    for qcast in uses(value):
        for dcast in uses(qcast.results[0]):
            dcast.results[0].replace_all_uses_with(float_result)
            dcast.erase()
        qcast.erase()


def _quantize_gather(call: ir.Operation, composite: Composite, composite_fn: ir.Operation,
                     functions: dict[str, ir.Operation], table: np.ndarray) -> bool:
    """A gather on an int8 table (per tensor); its result keeps the table's parameters."""
    operands = list(call.operands)
    qcasts = uses(call.results[0])
    if constant_value(operands[composite.axis_index]) is None or not _only_dcast_users(
            [u for u in qcasts if u.name == "quant.qcast"]):
        return False
    table_params = weight_params(table, None)
    output_params = QuantParams(table_params.scales, table_params.zero_points)
    loc = call.location
    with ir.InsertionPoint(call):
        table_i8 = create_const(quantize_weight(table, table_params), operands[composite.weight_index].location)
    new_operands = [table_i8, operands[composite.input_index], operands[composite.axis_index]]
    attrs = _quantized_op_attrs(composite, output_params, table_params, output_params)
    result = call.results[0]
    storage = storage_tensor_type(result.type)
    name = _create_quantized_function(composite_fn, composite, new_operands, storage, attrs, functions)
    new_result = _create_call(call, name, new_operands, storage, composite.kind)
    with ir.InsertionPoint(call):
        quantized = _cast("quant.scast", new_result, quantized_tensor_type(result.type, output_params), loc)
        _replace_qcast_users(result, quantized)
        if list(result.uses):  # float users read the gathered values through a dcast
            result.replace_all_uses_with(_cast("quant.dcast", quantized, result.type, loc))
    _erase_with_dead_operands(call)
    return True


def _uniform_params_of_type(value_type: ir.Type) -> QuantParams:
    return parse_uniform(ir.ShapedType(value_type).element_type)


def _create_call(call: ir.Operation, callee: str, operands: Sequence[ir.Value], result_type: ir.Type,
                 kind: str) -> ir.Value:
    attrs = {"f": ir.FlatSymbolRefAttr.get(callee), "_tfq_quantized": ir.BoolAttr.get(True),
             QUANTIZED_KIND: str_attr(kind)}
    for name in ("config", "config_proto", "executor_type"):
        attrs[name] = call.attributes[name] if name in call.attributes else str_attr("")
    with ir.InsertionPoint(call):
        return create_op("tf.PartitionedCall", operands, [result_type], attrs, call.location).result


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
    """Run a same-scale op on int8 storage when its data inputs are dcasts of one type A and its
    result goes only to qcasts read by dcasts; those then read A. False when it does not qualify."""
    data = list(op.operands)[:-1] if op.name == "tf.ConcatV2" else [op.operands[0]]
    sources = [_quantized_source(v) for v in data]
    if any(s is None for s in sources) or len({str(ir.ShapedType(s.type).element_type) for s in sources}) != 1:
        return False
    result = op.results[0]
    qcasts = uses(result)
    if not qcasts or any(u.name != "quant.qcast" for u in qcasts) or not _only_dcast_users(qcasts):
        return False
    quant_element = ir.ShapedType(sources[0].type).element_type
    params = parse_uniform(quant_element)
    loc = op.location
    with ir.InsertionPoint(op):
        storage_inputs = [_storage(s, loc) for s in sources]
        operands = storage_inputs + list(op.operands)[len(data):]
        name, attrs = op.name, {n: op.attributes[n] for n in op.attributes}
        attrs["T"] = ir.TypeAttr.get(ir.IntegerType.get_signless(8))
        if name == "tf.Pad" and params.zero_point != 0:
            # Pad fills with 0, which is the real value 0 only when the zero point is 0.
            name = "tf.PadV2"
            operands.append(create_const(np.array(params.zero_point, dtype=np.int8), loc))
        new_op = create_op(name, operands, [storage_tensor_type(result.type)], attrs, loc)
        quantized = _cast("quant.scast", new_op.result, retyped(result.type, quant_element), loc)
    _replace_qcast_users(result, quantized)
    _erase_with_dead_operands(op)
    return True
