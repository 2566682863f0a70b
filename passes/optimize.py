"""tfq-optimize: remove requantizations that cancel, exact cast round trips and dead ops.

Rewrites, in every function, until nothing changes:
  * `quant.qcast(quant.dcast(%x : Q)) : Q` -> `%x` (dequantize then quantize to the same type);
  * `tf.Cast(tf.Cast(%x : X) : Y) : X` -> `%x` when Y holds every value of X exactly
    (i8 -> i32 -> i8, i8 -> f32 -> i8, f16 -> f32 -> f16, ...);
  * dead `tf.Const`, dead quant casts, and dead side-effect-free tf ops (the set below).
Runs before lowering (quant ops present) and after it (tf ops only).
"""
from __future__ import annotations

from tfquant.mlir import ir
from tfquant.pass_registry import register_pass
from tfquant.passes._tf_ops import defining_op, element_type, erase_dead_ops, function_blocks, replace_op

# Ops without side effects whose only purpose is their results.
REMOVABLE_WHEN_DEAD = frozenset({
    "tf.Const", "quant.qcast", "quant.dcast", "quant.scast",
    "tf.Cast", "tf.Mul", "tf.AddV2", "tf.Add", "tf.Sub", "tf.RealDiv", "tf.Div", "tf.Neg", "tf.Round",
    "tf.Floor", "tf.Maximum", "tf.Minimum", "tf.ClipByValue", "tf.Reshape", "tf.Identity", "tf.Transpose",
    "tf.ExpandDims", "tf.Squeeze", "tf.BiasAdd", "tf.Relu", "tf.Relu6", "tf.Shape", "tf.Fill", "tf.Pack",
    "tf.ZerosLike", "tf.OnesLike",
})
# Element type -> the element types that represent each of its values exactly.
EXACT_WIDENINGS = {
    "i1": {"i8", "i16", "i32", "i64", "ui8", "f16", "bf16", "f32", "f64"},
    "i8": {"i16", "i32", "i64", "f16", "bf16", "f32", "f64"},
    "ui8": {"i16", "i32", "i64", "ui16", "ui32", "ui64", "f16", "bf16", "f32", "f64"},
    "i16": {"i32", "i64", "f32", "f64"},
    "ui16": {"i32", "i64", "ui32", "ui64", "f32", "f64"},
    "i32": {"i64", "f64"},
    "ui32": {"i64", "ui64", "f64"},
    "f16": {"f32", "f64"},
    "bf16": {"f32", "f64"},
    "f32": {"f64"},
}


@register_pass("tfq-optimize", "Remove requantize pairs that cancel, exact cast round trips, and dead ops")
def optimize(module_op: ir.Operation) -> None:
    for block in function_blocks(module_op):
        while fold_round_trips(block) + erase_dead_ops(block, REMOVABLE_WHEN_DEAD):
            pass


def _round_trip_source(op: ir.Operation) -> ir.Value | None:
    """`%x` when `op` undoes, exactly, the op that produced its operand from `%x`; else None."""
    inner = defining_op(op.operands[0])
    result_type = op.results[0].type
    if op.name == "quant.qcast" and inner is not None and inner.name == "quant.dcast":
        source = inner.operands[0]
        return source if source.type == result_type else None
    if op.name == "tf.Cast" and inner is not None and inner.name == "tf.Cast":
        source = inner.operands[0]
        widened = str(element_type(inner.results[0]))
        if source.type == result_type and widened in EXACT_WIDENINGS.get(str(element_type(source)), ()):
            return source
    return None


def fold_round_trips(block: ir.Block) -> int:
    """Replace each cancelling qcast(dcast) or Cast(Cast) by its source; returns how many."""
    folded = 0
    for op in [op.operation for op in block.operations]:
        if op.name in ("quant.qcast", "tf.Cast"):
            source = _round_trip_source(op)
            if source is not None:
                replace_op(op, [source])
                folded += 1
    return folded
