"""tfq-tfl-post-quantize: turn the quantize/dequantize pairs left by tfq-tfl-quantize into TFLite ops.

In this order, in every function:
0. An op reading only its operand's shape (SHAPE) reads the quantized value behind a dcast.
1. `quant.dcast(quant.qcast(%x))` with %x float (a calibrated edge between float ops, or the float
   users of an edge whose quantized users now read the qcast): its users read %x.
2. `quant.qcast(quant.dcast(%y))`: %y where the types are equal; else a `tfl.quantize` of %y
   (a requantize). `quant.qcast(%x)` of a float %x: `tfl.quantize`.
3. `quant.dcast(%y)`: `tfl.dequantize`.
4. A requantize of a quantized op's own-range result that nothing else reads: the op writes the
   requantized type directly (its range holds the result's, so nothing is clipped).
5. Constants and tfl.quantize/dequantize that nothing reads are erased, and the spec attributes
   (`tfq.spec`, `tfq.float_reason`) dropped.

With `integer-only`, any op that still computes on floats is an error at that op (TFLite's
converter would leave it float silently), but for the `tfl.quantize` of an input and the
`tfl.dequantize` of an output, which tfq-tfl-modify-io removes when the IO is integer.
"""
from __future__ import annotations

from tfquant.mlir import CompileError, ir, module_funcs, ops_named
from tfquant.pass_registry import PassOption, register_pass
from tfquant.passes._op_specs import OWN_RANGE, SHAPE_READERS, TFL
from tfquant.passes._quant import tensor_params
from tfquant.passes._spec import FLOAT_REASON, SPEC
from tfquant.passes._tf_ops import create_op, defining_op, erase_dead_ops, has_one_use, is_float, replace_op, uses
from tfquant.passes._tfl import CONST, DEQUANTIZE, NO_VALUE, QCONST, QUANTIZE, builtin_name, signature_functions

_REMOVABLE = frozenset({CONST, QCONST, NO_VALUE, QUANTIZE, DEQUANTIZE, "quant.qcast", "quant.dcast"})


@register_pass("tfq-tfl-post-quantize",
               "Turn the qcast/dcast pairs around quantized tfl ops into tfl.quantize/tfl.dequantize or remove "
               "them; in integer-only mode refuse any float op left",
               options=(PassOption("integer-only", bool, False, "refuse any op left computing on floats"),))
def tfl_post_quantize(module_op: ir.Operation, integer_only: bool) -> None:
    for reader in ops_named(module_op, *SHAPE_READERS):
        dcast = defining_op(reader.operands[0])
        if dcast is not None and dcast.name == "quant.dcast":
            reader.operands[0] = dcast.operands[0]
    for dcast in ops_named(module_op, "quant.dcast"):
        qcast = defining_op(dcast.operands[0])
        if qcast is not None and qcast.name == "quant.qcast" and is_float(qcast.operands[0]):
            dcast.results[0].replace_all_uses_with(qcast.operands[0])
    for qcast in ops_named(module_op, "quant.qcast"):
        _lower_qcast(qcast)
    for dcast in ops_named(module_op, "quant.dcast"):
        if list(dcast.results[0].uses):
            with ir.InsertionPoint(dcast):
                new = create_op(DEQUANTIZE, [dcast.operands[0]], [dcast.results[0].type], {}, dcast.location)
            replace_op(dcast, [new.result])
    for requantize in ops_named(module_op, QUANTIZE):
        _fold_requantize(requantize)
    for function in module_funcs(module_op):
        for block in function.regions[0].blocks:
            erase_dead_ops(block, _REMOVABLE)
    if integer_only:
        _check_integer_only(module_op)
    for function in module_funcs(module_op):
        for block in function.regions[0].blocks:
            for op in block.operations:
                for name in (SPEC, FLOAT_REASON):
                    if name in op.operation.attributes:
                        del op.operation.attributes[name]


def _lower_qcast(qcast: ir.Operation) -> None:
    value = qcast.operands[0]
    producer = defining_op(value)
    if producer is not None and producer.name == "quant.dcast":
        value = producer.operands[0]
        if value.type == qcast.results[0].type:
            replace_op(qcast, [value])
            return
    with ir.InsertionPoint(qcast):
        new = create_op(QUANTIZE, [value], [qcast.results[0].type], {}, qcast.location)
    replace_op(qcast, [new.result])


def _fold_requantize(requantize: ir.Operation) -> None:
    value = requantize.operands[0]
    producer = defining_op(value)
    if (producer is None or tensor_params(value.type) is None or not has_one_use(value)
            or len(producer.results) != 1 or producer.name not in TFL or TFL[producer.name].output != OWN_RANGE
            or tensor_params(value.type).storage_bits != tensor_params(requantize.results[0].type).storage_bits):
        return
    value.set_type(requantize.results[0].type)
    replace_op(requantize, [value])


def _check_integer_only(module_op: ir.Operation) -> None:
    """Refuse the first op left computing on floats, the root cause first: an op with no quantized
    form, then a unit kept float, then the quantize/dequantize that only say a neighbour is float."""
    offenders = []
    for function in signature_functions(module_op):
        for op in function.regions[0].blocks[0].operations:
            op = op.operation
            if op.name in (CONST, QCONST, NO_VALUE, "func.return") or _is_io_cast(op):
                continue
            if any(is_float(v) for v in (*op.operands, *op.results)):
                offenders.append(op)
    if not offenders:
        return
    op = min(offenders, key=lambda o: 2 if o.name in (QUANTIZE, DEQUANTIZE) else 1 if o.name in TFL else 0)
    reason = ir.StringAttr(op.attributes[FLOAT_REASON]).value if FLOAT_REASON in op.attributes \
        else "it computes on floats"
    raise CompileError(f"{builtin_name(op)} cannot be quantized ({reason}), and integer-only mode leaves no op "
                       f"float", op.location)


def _is_io_cast(op: ir.Operation) -> bool:
    """A tfl.quantize of a function argument or a tfl.dequantize that only the return reads."""
    if op.name == QUANTIZE:
        return defining_op(op.operands[0]) is None
    if op.name == DEQUANTIZE:
        return all(user.name == "func.return" for user in uses(op.results[0]))
    return False
