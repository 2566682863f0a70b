"""tfq-tfl-quantize: rewrite each tfl unit into its quantized form, as its `tfq.spec` says.

Static units (after tfq-apply-calibration-stats turned the calibration points into
`quant.qcast`/`quant.dcast` pairs), with the TFLite quantization spec of the `tfl` table
(passes/_op_specs.py):

    %d = quant.dcast %q                        %y = "tfl.conv_2d"(%q, %wq, %bq) : (..i8.., ..) -> ..!quant.uniform<i8..>
    %y = "tfl.conv_2d"(%d, %w, %b)     ==>     %d2 = quant.dcast %y
    %r = quant.qcast %y : .. to T              %r = quant.qcast %d2 : .. to T

* activations: the quantized value behind the operand's dcast (the producer's own quantized
  result when it has the same width: a consumer reads what its producer wrote); a constant
  activation is quantized from its own range;
* the weight: symmetric int8 in [-127, 127], per channel along the table's axis (per tensor when
  the spec says so); a bias that would overflow its storage at input x weight scale widens that
  channel's weight scale;
* the bias: int32 (int8 activations) or int64 storage (16-bit activations, with `quantizedBiasType`
  INT64) at input x weight scale;
* the result: its calibrated range (the qcast on it), its activation's scale (same-scale ops),
  or the fixed range of softmax, logistic and tanh; a concatenation's inputs take its result's
  range first, back through same-scale ops to the layers writing them, as TensorFlow's converter
  does (an input at another scale, after a fixed-range op, is requantized);
* the opcode version rises to what the quantized kernel needs.

tfq-tfl-post-quantize then folds the pairs left around the units. A unit that cannot be
quantized (an activation without a range, a weight that is not a constant) stays float with a
remark. Dynamic-range units get int8 weights that the op reads directly (hybrid kernels, inputs
quantized asymmetrically at run time); float16 units read float16 constants behind one
`tfl.dequantize` per constant.
"""
from __future__ import annotations

import numpy as np

from tfquant.mlir import ir
from tfquant.pass_registry import register_pass
from tfquant.passes._op_specs import SAME_SCALE, TFL, TflOp
from tfquant.passes._quant import (INT16_MAX, QuantParams, activation_params, bias_params, quantize_bias,
                                   quantize_weight, quantized_tensor_type, retyped, tensor_params, weight_params,
                                   widen_for_bias)
from tfquant.passes._spec import (DYNAMIC_RANGE, FLOAT16, SPEC, STATIC, float_reason, is_static_unit, leave_float,
                                  unit_spec)
from tfquant.passes._tf_ops import create_op, defining_op, is_float, is_float32, uses
from tfquant.passes._tfl import (DEQUANTIZE, QUANTIZE, create_tfl_const, create_tfl_qconst, set_version,
                                 tfl_constant, tfl_ops)

CONCATENATION = "tfl.concatenation"
# The option a hybrid kernel reads to quantize its float input asymmetrically at run time.
ASYMMETRIC_INPUTS = "asymmetricQuantizeInputs"
# The option saying a 16x8 kernel's bias is int64 (the schema's TensorType INT64).
BIAS_TYPE = "quantizedBiasType"
INT64_TENSOR_TYPE = 4


class _StaysFloat(Exception):
    """Why a unit cannot be quantized; the unit keeps its float form."""


@register_pass("tfq-tfl-quantize",
               "Rewrite each tfl unit into its quantized form (static int8/16x8, dynamic-range or float16 "
               "weights) as its tfq.spec says")
def tfl_quantize(module_op: ir.Operation) -> None:
    narrowed: list[tuple[ir.Operation, ir.Value]] = []  # float16: (constant, its one dequantize)
    for op in list(tfl_ops(module_op)):
        if op.name == CONCATENATION and is_static_unit(op):
            with op.location:  # building types needs one
                _widen_inputs_to_result(op)
    for op in list(tfl_ops(module_op)):
        spec = unit_spec(op)
        if spec is None or float_reason(op) is not None:
            continue
        try:
            if spec.method == STATIC:
                _quantize_static(op, TFL[op.name], spec.activation_bits, spec.per_channel)
            elif spec.method == DYNAMIC_RANGE:
                with op.location:  # building types needs one
                    _quantize_weights(op, TFL[op.name], spec.per_channel)
            elif spec.method == FLOAT16:
                _narrow_constants(op, narrowed)
        except _StaysFloat as reason:
            leave_float(op, str(reason))


# --- static -------------------------------------------------------------------------------------

def _widen_inputs_to_result(concat: ir.Operation) -> None:
    """Give each input of a concatenation the result's calibrated range, back through same-scale
    ops to the layer writing it, as TensorFlow's converter does: the layers then write the
    concatenation's scale and no requantize runs between (the result's range holds theirs)."""
    try:
        params = _calibrated(concat.results[0], unit_spec(concat).activation_bits)
    except _StaysFloat:
        return
    for operand in concat.operands:
        _widen_range(operand, params)


def _widen_range(value: ir.Value, params: QuantParams) -> None:
    """Set the calibrated range of `value` (a dcast of a qcast) to `params` where they hold it, and so
    on up through the same-scale units producing it."""
    dcast = defining_op(value)
    qcast = defining_op(dcast.operands[0]) if dcast is not None and dcast.name == "quant.dcast" else None
    if qcast is None or qcast.name != "quant.qcast":
        return
    calibrated = tensor_params(qcast.results[0].type)
    if calibrated.storage_bits != params.storage_bits or not _holds(params, calibrated):
        return
    qcast.results[0].set_type(quantized_tensor_type(qcast.operands[0].type, params))
    producer = defining_op(qcast.operands[0])
    if producer is not None and producer.name in TFL and TFL[producer.name].output == SAME_SCALE \
            and is_static_unit(producer):
        _widen_range(producer.operands[0], params)


def _holds(outer: QuantParams, inner: QuantParams) -> bool:
    """Whether the reals `outer` represents hold those of `inner` (per-tensor parameters)."""
    def reals(p: QuantParams) -> tuple[float, float]:
        return (p.storage_min - p.zero_point) * p.scale, (p.storage_max - p.zero_point) * p.scale
    (outer_low, outer_high), (inner_low, inner_high) = reals(outer), reals(inner)
    return outer_low <= inner_low + 1e-9 and inner_high <= outer_high + 1e-9

def _quantize_static(op: ir.Operation, table: TflOp, bits: int, per_channel: bool) -> None:
    if len(op.results) != 1 or not is_float(op.results[0]):
        raise _StaysFloat("it does not have exactly one float result")
    result = op.results[0]
    operands = list(op.operands)
    indices = range(len(operands)) if table.activations is None else table.activations
    output = _fixed_params(table.output, bits) if isinstance(table.output, tuple) else None
    if table.activations is None:  # every input at the result's scale
        output = _calibrated(result, bits)
    with ir.InsertionPoint(op), op.location:
        for index in indices:
            if is_float(operands[index]):
                operands[index] = _activation(operands[index], bits, index)
                if table.activations is None:
                    operands[index] = _requantized(operands[index], output, op.location)
        if output is None:
            output = (tensor_params(operands[indices[0]].type) if table.output == SAME_SCALE
                      else _calibrated(result, bits))
        attributes = _attributes(op)
        if table.weight is not None:
            _quantize_weight_and_bias(op, table, operands, bits, per_channel)
            if bits == 16 and BIAS_TYPE in attributes:
                attributes[BIAS_TYPE] = ir.IntegerAttr.get(ir.IntegerType.get_signless(32), INT64_TENSOR_TYPE)
        quantized = create_op(op.name, operands, [quantized_tensor_type(result.type, output)], attributes,
                              op.location)
        set_version(quantized, table.version)
    with ir.InsertionPoint.after(quantized), op.location:
        dequantized = create_op("quant.dcast", [quantized.result], [result.type], {}, op.location).result
    result.replace_all_uses_with(dequantized)
    op.erase()


def _fixed_params(fixed: tuple[tuple[float, int], tuple[float, int]], bits: int) -> QuantParams:
    scale, zero_point = fixed[bits == 16]
    if bits == 16:
        return QuantParams((scale,), (zero_point,), None, -INT16_MAX, INT16_MAX)
    return QuantParams((scale,), (zero_point,))


def _calibrated(result: ir.Value, bits: int) -> QuantParams:
    """The parameters calibration (or training) chose for `result`: those of the qcast reading it, or
    of the one after the same-scale ops that alone read it (a QAT model's fake quant often sits after
    the reshape that follows the layer)."""
    value = result
    while True:
        readers = uses(value)
        for reader in readers:
            if reader.name == "quant.qcast":
                params = tensor_params(reader.results[0].type)
                if params.storage_bits == bits:
                    return params
        if len(readers) != 1 or readers[0].name not in TFL or TFL[readers[0].name].output != SAME_SCALE:
            raise _StaysFloat("calibration gave its result no range")
        value = readers[0].results[0]


def _activation(value: ir.Value, bits: int, index: int) -> ir.Value:
    """The quantized form of an activation operand (see the module docstring)."""
    if tensor_params(value.type) is not None:
        return value
    constant = tfl_constant(value)
    if constant is not None:
        params = activation_params(float(np.min(constant, initial=0.0)), float(np.max(constant, initial=0.0)), bits)
        return create_tfl_qconst(quantize_weight(np.asarray(constant, np.float64), params),
                                 quantized_tensor_type(value.type, params), defining_op(value).location)
    dcast = defining_op(value)
    if dcast is None or dcast.name != "quant.dcast":
        raise _StaysFloat(f"its operand {index} has no calibrated range")
    quantized = dcast.operands[0]
    if tensor_params(quantized.type).storage_bits != bits:
        raise _StaysFloat(f"its operand {index} is calibrated for other activation bits")
    qcast = defining_op(quantized)
    if qcast is not None and qcast.name == "quant.qcast":
        inner = defining_op(qcast.operands[0])
        if inner is not None and inner.name == "quant.dcast":
            produced = inner.operands[0]
            if tensor_params(produced.type).storage_bits == tensor_params(quantized.type).storage_bits:
                return produced
    return quantized


def _requantized(value: ir.Value, params: QuantParams, loc: ir.Location) -> ir.Value:
    """`value` at `params`: itself, or a `tfl.quantize` (requantize) to them."""
    if tensor_params(value.type) == params:
        return value
    return create_op(QUANTIZE, [value], [quantized_tensor_type(retyped(value.type, ir.F32Type.get()), params)], {},
                     loc).result


def _quantize_weight_and_bias(op: ir.Operation, table: TflOp, operands: list[ir.Value], bits: int,
                              per_channel: bool) -> None:
    weight, params = _weight(operands[table.weight], table, per_channel)
    input_scale = tensor_params(operands[(table.activations or (0,))[0]].type).scale
    bias = None
    if table.bias is not None and table.bias < len(operands) and is_float(operands[table.bias]):
        bias = tfl_constant(operands[table.bias])
        if bias is None:
            raise _StaysFloat("its bias is not a constant")
        if bits == 8:
            params = widen_for_bias(params, bias, input_scale)
    weight_loc = defining_op(operands[table.weight]).location
    # A trained weight lands on the step it was trained at: TensorFlow's fake quant rounds half up.
    storage = quantize_weight(weight, params, half_up=_trained(operands[table.weight]) is not None)
    operands[table.weight] = create_tfl_qconst(storage, quantized_tensor_type(operands[table.weight].type, params),
                                               weight_loc)
    if bias is not None:
        storage_bits = 64 if bits == 16 else 32
        storage = quantize_bias(np.asarray(bias, np.float64), bias_params(input_scale, params, storage_bits))
        # MLIR's quant types stop at 32 bits: a 64-bit bias has an i32 type and i64 values (passes/_tfl.py).
        carrier = bias_params(input_scale, params, 32)
        operands[table.bias] = create_tfl_qconst(storage, quantized_tensor_type(operands[table.bias].type, carrier),
                                                 defining_op(operands[table.bias]).location)


def _weight(value: ir.Value, table: TflOp, per_channel: bool) -> tuple[np.ndarray, QuantParams]:
    """The float weight and its parameters: trained ones (QAT), else symmetric int8 of its values."""
    trained = _trained(value)
    if trained is not None:
        return trained
    weight = tfl_constant(value)
    if weight is None or not is_float(value):
        raise _StaysFloat("its weight is not a float constant")
    weight = np.asarray(weight, np.float64)
    return weight, weight_params(weight, table.channel_axis if per_channel else None)


def _trained(value: ir.Value) -> tuple[np.ndarray, QuantParams] | None:
    """(the constant, its trained parameters) for a QAT weight `dcast(qcast(tfl.pseudo_const))`."""
    dcast = defining_op(value)
    qcast = defining_op(dcast.operands[0]) if dcast is not None and dcast.name == "quant.dcast" else None
    if qcast is None or qcast.name != "quant.qcast" or tfl_constant(qcast.operands[0]) is None:
        return None
    return np.asarray(tfl_constant(qcast.operands[0]), np.float64), tensor_params(qcast.results[0].type)


def _attributes(op: ir.Operation) -> dict[str, ir.Attribute]:
    """The op's attributes but its spec (a quantized unit needs it no more)."""
    return {name: op.attributes[name] for name in op.attributes if name != SPEC}


# --- dynamic range and float16 -----------------------------------------------------------------

def _quantize_weights(op: ir.Operation, table: TflOp, per_channel: bool) -> None:
    """int8 weights read directly by the op's hybrid kernel (float inputs quantized asymmetrically at
    run time); an embedding lookup reads its int8 table and its rows are dequantized after it."""
    value = op.operands[table.hybrid_weight]
    weight = np.asarray(tfl_constant(value), np.float64)
    params = weight_params(weight, table.channel_axis if per_channel and not table.lookup else None)
    with ir.InsertionPoint(op):
        quantized = create_tfl_qconst(quantize_weight(weight, params), quantized_tensor_type(value.type, params),
                                      defining_op(value).location)
    op.operands[table.hybrid_weight] = quantized
    if ASYMMETRIC_INPUTS in op.attributes:
        op.attributes[ASYMMETRIC_INPUTS] = ir.BoolAttr.get(True)
    set_version(op, table.hybrid_version)
    del op.attributes[SPEC]
    if table.lookup:
        result = op.results[0]
        rows_type = result.type
        result.set_type(quantized_tensor_type(rows_type, params))
        with ir.InsertionPoint.after(op):
            rows = create_op(DEQUANTIZE, [result], [rows_type], {}, op.location).result
        result.replace_all_uses_except(rows, rows.owner.operation)


def _narrow_constants(op: ir.Operation, narrowed: list[tuple[ir.Operation, ir.Value]]) -> None:
    """Every float32 constant operand stored as float16, dequantized to float32 once, right after
    it, for every op reading it (`narrowed` holds the constants done so far)."""
    for index, value in enumerate(op.operands):
        constant = tfl_constant(value)
        if constant is None or not is_float32(value):
            continue
        producer = defining_op(value)
        dequantized = next((d for c, d in narrowed if c == producer), None)
        if dequantized is None:
            with ir.InsertionPoint.after(producer):
                narrow = create_tfl_const(np.asarray(constant, np.float16), producer.location)
                dequantized = create_op(DEQUANTIZE, [narrow], [value.type], {}, producer.location).result
            narrowed.append((producer, dequantized))
        op.operands[index] = dequantized
    del op.attributes[SPEC]
