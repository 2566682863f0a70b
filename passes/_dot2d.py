"""A matmul, batch matmul or einsum as one 2-D dot ([free_x, contracted] x [contracted, free_w]),
for kernels that take only 2-D operands (UniformQuantizedDot, oneDNN's _QuantizedMatMul): the
plan, and the reshapes around the dot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tfquant.mlir import i64_attr, ir
from tfquant.passes._lowering import QuantizedOp, dot_letters
from tfquant.passes._tf_arith import const, emit, i32, rank
from tfquant.passes._tf_ops import named_loc, type_attr


@dataclass(frozen=True)
class DotPlan:
    """A matmul / batch matmul / einsum as one 2-D dot: [free_x, contracted] x [contracted, free_w]."""
    x_perm: list[int]          # the activation's dims in (free_x, contracted) order
    w_perm: list[int]          # the weight's dims in (contracted, free_w) order
    free_x: list[int]          # sizes (dynamic: ShapedType.get_dynamic_size())
    free_w: list[int]
    contracted: int
    out_perm: list[int]        # (free_x, free_w) layout -> the result's dims
    channel: int | None        # the per-channel weight letter's index in free_w


def tiled_weight_scales(q: QuantizedOp, plan: DotPlan) -> np.ndarray:
    """The weight's scales per column of the 2-D weight: per-channel scales repeated over the
    weight's other free dims, or the one scale (a vector of 1) per tensor."""
    scales = np.asarray(q.weight.scales, np.float64)
    if plan.channel is None:
        return scales[:1]
    along = [1] * len(plan.free_w)
    along[plan.channel] = -1
    return np.broadcast_to(scales.reshape(along), plan.free_w).reshape(-1)


def dot_plan(q: QuantizedOp) -> DotPlan | None:
    """How `q` maps onto a 2-D dot; None where it does not (a weight dimension shared with the
    activation but not contracted, a dimension summed within one operand, a bias along the
    activation's side)."""
    lhs, rhs, out = dot_letters(q)
    contracted = [c for c in lhs if c in rhs and c not in out]
    free_x, free_w = [c for c in out if c in lhs], [c for c in out if c in rhs]
    if set(free_x) & set(free_w) or len(contracted) + len(free_x) != len(lhs) or \
            len(contracted) + len(free_w) != len(rhs):
        return None
    if q.bias is not None and (not free_w or out[-1] != free_w[-1]):
        return None
    x_shape, w_shape = list(ir.RankedTensorType(q.x.type).shape), list(ir.RankedTensorType(q.w.type).shape)
    k_sizes = [w_shape[rhs.index(c)] for c in contracted]
    free_x_sizes = [x_shape[lhs.index(c)] for c in free_x]
    layout = free_x + free_w
    channel = None
    if q.weight.axis is not None and len(q.weight.scales) > 1:
        if rhs[q.weight.axis] not in free_w:
            raise q.error("the per-channel weight axis is contracted")
        channel = free_w.index(rhs[q.weight.axis])
    return DotPlan([lhs.index(c) for c in free_x + contracted], [rhs.index(c) for c in contracted + free_w],
                    free_x_sizes, [w_shape[rhs.index(c)] for c in free_w], math.prod(k_sizes),
                    [layout.index(c) for c in out], channel)


def reshape(value: ir.Value, sizes: list[int], loc: ir.Location, shape: ir.Value | None = None) -> ir.Value:
    """tf.Reshape to `sizes`: a constant shape (a dynamic size as -1) unless `shape` is given."""
    dynamic = ir.ShapedType.get_dynamic_size()
    if list(ir.RankedTensorType(value.type).shape) == sizes:
        return value
    if shape is None:
        shape = const(np.array([-1 if d == dynamic else d for d in sizes], np.int32), named_loc(loc, "shape"))
    return emit("tf.Reshape", [value, shape], ir.RankedTensorType.get(sizes, ir.ShapedType(value.type).element_type),
                {"T": type_attr(value), "Tshape": ir.TypeAttr.get(i32())}, named_loc(loc, "reshape"))


def i32s(values: list[int], loc: ir.Location, name: str) -> ir.Value:
    return const(np.array(values, np.int32), named_loc(loc, name))


def leading_shape_and(value: ir.Value, count: int, tail: list[int], loc: ir.Location) -> ir.Value:
    """The run-time shape [value's first `count` dims..., tail...] (int32): for a reshape back to
    more than one dynamic dimension, which a -1 cannot express."""
    shape = emit("tf.Shape", [value], ir.RankedTensorType.get([rank(value)], i32()),
                 {"T": type_attr(value), "out_type": ir.TypeAttr.get(i32())}, named_loc(loc, "shape"))
    leading = emit("tf.StridedSlice", [shape, i32s([0], loc, "begin"), i32s([count], loc, "end"),
                                        i32s([1], loc, "strides")],
                   ir.RankedTensorType.get([count], i32()),
                   {"T": ir.TypeAttr.get(i32()), "Index": ir.TypeAttr.get(i32()),
                    **{mask: i64_attr(0) for mask in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                                                  "shrink_axis_mask")}}, named_loc(loc, "leading"))
    return emit("tf.ConcatV2", [leading, i32s(tail, loc, "tail"), const(np.int32(0), named_loc(loc, "axis"))],
                ir.RankedTensorType.get([count + len(tail)], i32()),
                {"N": i64_attr(2), "T": ir.TypeAttr.get(i32()), "Tidx": ir.TypeAttr.get(i32())},
                named_loc(loc, "concat"))


def flat_size(sizes: list[int]) -> int:
    dynamic = ir.ShapedType.get_dynamic_size()
    return dynamic if dynamic in sizes else math.prod(sizes)
