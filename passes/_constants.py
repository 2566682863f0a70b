"""Giving one op a changed copy of a constant operand, leaving every other user of the old one intact."""
from __future__ import annotations

import numpy as np

from tfquant.mlir import ir
from tfquant.passes._tf_ops import create_const, defining_op


def replace_constant_operand(op: ir.Operation, index: int, array: np.ndarray) -> None:
    """Make operand `index` of `op` a new tf.Const holding `array` (the old constant's dtype), built
    before `op` at the old constant's location; the old constant goes once nothing uses it.

    A weight or bias constant may be shared by several calls, so it is never changed in place.
    The new constant carries no `tfq.variable`: its value is no longer the variable's.
    """
    old = defining_op(op.operands[index])
    with ir.InsertionPoint(op):
        op.operands[index] = create_const(array.astype(np.asarray(old.attributes["value"]).dtype), old.location)
    if not list(old.results[0].uses):
        old.erase()
