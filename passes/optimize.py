"""tfq-optimize: remove requantizations that cancel, exact cast round trips and dead ops.

Rewrites, in every function, until nothing changes:
  * `quant.qcast(quant.dcast(%x : Q)) : Q` -> `%x` (dequantize then quantize to the same type);
  * `tf.Cast(tf.Cast(%x : X) : Y) : X` -> `%x` when Y holds every value of X exactly
    (i8 -> i32 -> i8, i8 -> f32 -> i8, f16 -> f32 -> f16, ...);
  * `tf.AddV2(tf.Sub(%x, c1), c2)` -> `tf.AddV2(%x, c2 - c1)` for integer constants of one shape
    (a zero-point correction and a bias: one pass over the accumulator instead of two);
  * dead `tf.Const`, dead quant casts, and dead side-effect-free tf ops (the set below).
Runs before lowering (quant ops present) and after it (tf ops only).
"""
from __future__ import annotations

import numpy as np

from tfquant.mlir import ir
from tfquant.pass_registry import register_pass
from tfquant.passes._tf_ops import (constant_value, create_const, defining_op, element_type, erase_dead_ops,
                                    function_blocks, has_one_use, replace_op)
from tfquant.passes._verify import reading, verify_ops

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
    verify_ops(module_op, reading("tf.Cast", "tf.AddV2", "tf.Sub"))
    for block in function_blocks(module_op):
        while fold_round_trips(block) + fold_constant_offsets(block) + erase_dead_ops(block, REMOVABLE_WHEN_DEAD):
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


def _combined_offset(add: ir.Operation) -> tuple[ir.Value, np.ndarray] | None:
    """(%x, c2 - c1) for `AddV2(Sub(%x, c1), c2)` on integers, when the difference fits the type."""
    sub = defining_op(add.operands[0])
    c2 = constant_value(add.operands[1])
    if sub is None or sub.name != "tf.Sub" or c2 is None or not has_one_use(add.operands[0]):
        return None
    c1 = constant_value(sub.operands[1])
    if c1 is None or c1.shape != c2.shape or c1.dtype != c2.dtype or c1.dtype.kind not in "iu":
        return None
    combined = c2.astype(np.int64) - c1.astype(np.int64)
    limits = np.iinfo(c1.dtype)
    if combined.min(initial=0) < limits.min or combined.max(initial=0) > limits.max:
        return None
    return sub.operands[0], combined.astype(c1.dtype)


def fold_constant_offsets(block: ir.Block) -> int:
    """Merge each integer `AddV2(Sub(x, c1), c2)` into `AddV2(x, c2 - c1)`; returns how many."""
    folded = 0
    for op in [op.operation for op in block.operations]:
        if op.name != "tf.AddV2":
            continue
        found = _combined_offset(op)
        if found is None:
            continue
        source, offset = found
        sub = defining_op(op.operands[0])
        with ir.InsertionPoint(op):
            op.operands[1] = create_const(offset, defining_op(op.operands[1]).location)
        op.operands[0] = source
        sub.erase()
        folded += 1
    return folded
