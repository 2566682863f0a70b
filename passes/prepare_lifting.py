"""tfq-prepare-lifting: put a float graph in the shape the quantizable patterns expect.

Rewrites, repeated until nothing changes:
  * `Identity`/`IdentityN`/`Snapshot`/`StopGradient`(x) -> x;
  * an op whose operands are all constants -> a `tf.Const` holding its value, computed by
    TensorFlow (e.g. `Rsqrt(var + eps) * gamma` of an inference batch norm);
  * `FusedBatchNormV3(op(x, W), scale, offset, mean, var)` in inference mode ->
    `BiasAdd(op(x, W * s), offset - mean * s)` with `s = scale * rsqrt(var + eps)`;
  * `Mul(op(x, W), c)` -> `op(x, W * c)` and `Mul(BiasAdd(op(x, W), b), c)` ->
    `BiasAdd(op(x, W * c), b * c)`, for c constant per output channel;
  * `AddV2/Add(op(x, W), c)` -> `BiasAdd(op(x, W), c)`, `Sub(op, c)` -> `BiasAdd(op, -c)`, and
    `AddV2(BiasAdd(op, b), c)` -> `BiasAdd(op, b + c)`;
where op is Conv2D or DepthwiseConv2dNative (NHWC) or MatMul with a constant weight W. Dead
constants are removed.
"""
from __future__ import annotations

import numpy as np

from tfquant.mlir import CompileError, ir
from tfquant.pass_registry import register_pass
from tfquant.passes._tf_ops import (bool_attribute, constant_value, create_const, create_op, defining_op,
                                    erase_dead_ops, function_blocks, has_one_use, named_loc, replace_op, static_shape,
                                    string_attribute, type_attr, weight_constant)
from tfquant.passes._verify import reading, verify_ops

IDENTITY_OPS = frozenset({"tf.Identity", "tf.Snapshot", "tf.StopGradient", "tf.IdentityN"})
WEIGHTED_OPS = frozenset({"tf.Conv2D", "tf.DepthwiseConv2dNative", "tf.MatMul"})
# Per-channel arithmetic after a weighted op that folds into its weight or bias.
FOLDED_ARITHMETIC = frozenset({"tf.Mul", "tf.AddV2", "tf.Add", "tf.Sub"})
# A folded constant may be larger than its inputs (Fill, Tile): only up to this many elements.
MAX_FOLDED_ELEMENTS = 1 << 22


@register_pass("tfq-prepare-lifting",
               "Remove identities, fold constants and batch norms into conv/matmul weights, adds into BiasAdd")
def prepare_lifting(module_op: ir.Operation) -> None:
    verify_ops(module_op, reading(*WEIGHTED_OPS, *FOLDED_ARITHMETIC, "tf.FusedBatchNormV3", "tf.BiasAdd"))
    for block in function_blocks(module_op):
        while remove_identities(block) + fold_constants(block) + fold_batch_norms(block):
            pass
        erase_dead_ops(block, frozenset({"tf.Const"}))


def remove_identities(block: ir.Block) -> int:
    """Forward the operands of identity ops to their users; returns how many were removed."""
    removed = 0
    for op in list(block.operations):
        op = op.operation
        if op.name in IDENTITY_OPS:
            replace_op(op, list(op.operands))
            removed += 1
    return removed


def _is_foldable(op: ir.Operation) -> bool:
    if not op.name.startswith("tf.") or not op.operands or not op.results or len(op.regions):
        return False
    if any(constant_value(v) is None for v in op.operands):
        return False
    for result in op.results:
        shape = static_shape(result)
        if shape is None or int(np.prod(shape)) > MAX_FOLDED_ELEMENTS:
            return False
        if not isinstance(ir.ShapedType(result.type).element_type, (ir.FloatType, ir.IntegerType)):
            return False
    return _evaluates_alone(op.name[len("tf."):])


def _evaluates_alone(op_type: str) -> bool:
    """Whether TensorFlow computes the value of an `op_type` op from its operands alone.

    TensorFlow's op registry says: not for an op it does not know, nor for a stateful one (random
    ops, I/O, variables: the value is not a function of the operands, or evaluating it has an
    effect), nor for one that calls a function (evaluation runs the op without a function library).
    """
    # Imports TensorFlow (~4 s): only reached for an op whose operands are all constants.
    from tensorflow.python.framework import op_def_registry
    op_def = op_def_registry.get(op_type)
    return (op_def is not None and not op_def.is_stateful
            and not any(attr.type in ("func", "list(func)") for attr in op_def.attr))


def fold_constants(block: ir.Block) -> int:
    """Replace each op with only constant operands by its value; returns how many were folded."""
    foldable = [op.operation for op in block.operations if _is_foldable(op.operation)]
    if not foldable:
        return 0
    from tfquant.exporter import evaluate  # imports TensorFlow
    fetches = [r for op in foldable for r in op.results]
    try:
        values = evaluate(foldable, fetches)
    except Exception as error:  # TensorFlow reports a bad node as one of several error types
        raise CompileError(f"cannot fold constants: {error}", foldable[0].location) from error
    index = 0
    for op in foldable:
        with ir.InsertionPoint(op), op.location:
            new_values = []
            for result in op.results:
                new_values.append(create_const(np.asarray(values[index]).reshape(static_shape(result)),
                                               op.location))
                index += 1
        replace_op(op, new_values)
    return len(foldable)


def _weighted_producer(value: ir.Value, trained: bool = False) -> ir.Operation | None:
    """The conv/matmul producing `value` through nothing, with a constant NHWC weight and one use.

    With `trained`, the weight may also be a QAT weight (`dcast(qcast(tf.Const))`): fine for adding a
    bias, but not for scaling the weight, which would leave its trained range behind."""
    op = defining_op(value)
    if op is None or op.name not in WEIGHTED_OPS or not has_one_use(value):
        return None
    if (weight_constant if trained else constant_value)(op.operands[1]) is None:
        return None
    return op if string_attribute(op, "data_format", "NHWC") == "NHWC" else None


def _output_channels(op: ir.Operation) -> int:
    return static_shape(op.results[0])[-1] if static_shape(op.results[0]) else _weight_channels(op)


def _weight_channels(op: ir.Operation) -> int:
    weight = weight_constant(op.operands[1])
    if op.name == "tf.DepthwiseConv2dNative":
        return weight.shape[2] * weight.shape[3]
    if op.name == "tf.MatMul" and bool_attribute(op, "transpose_b"):
        return weight.shape[0]
    return weight.shape[-1]


def _per_channel(value: ir.Value, channels: int) -> np.ndarray | None:
    """A constant broadcast only along the last axis, as a vector of `channels` values, else None."""
    array = constant_value(value)
    if array is None or array.ndim > 4 or any(d != 1 for d in array.shape[:-1]):
        return None
    vector = array.reshape(-1)
    if vector.size == 1:
        return np.full(channels, vector[0], dtype=array.dtype)
    return vector if vector.size == channels else None


def _scaled_weight(op: ir.Operation, scale: np.ndarray) -> np.ndarray:
    weight = constant_value(op.operands[1])
    if op.name == "tf.DepthwiseConv2dNative":
        return weight * scale.reshape(weight.shape[2], weight.shape[3])
    if op.name == "tf.MatMul" and bool_attribute(op, "transpose_b"):
        return weight * scale[:, None]
    return weight * scale


def _rescale_weight(op: ir.Operation, scale: np.ndarray) -> None:
    with ir.InsertionPoint(op):
        new_weight = create_const(_scaled_weight(op, scale).astype(constant_value(op.operands[1]).dtype),
                                  defining_op(op.operands[1]).location)
    op.operands[1] = new_weight


def _bias_add(value: ir.Value, bias: np.ndarray, loc: ir.Location, before: ir.Operation) -> ir.Value:
    with ir.InsertionPoint(before):
        bias_value = create_const(bias, named_loc(loc, "bias"))
        return create_op("tf.BiasAdd", [value, bias_value], [value.type],
                         {"T": type_attr(value), "data_format": ir.StringAttr.get("NHWC")}, loc).result


def _with_bias(value: ir.Value, trained: bool) -> tuple[ir.Operation | None, ir.Operation | None, np.ndarray | None]:
    """(weighted op, BiasAdd or None, bias) for `op(x, W)` or `BiasAdd(op(x, W), b)`."""
    op = defining_op(value)
    if op is not None and op.name == "tf.BiasAdd" and has_one_use(value):
        weighted = _weighted_producer(op.operands[0], trained)
        bias = constant_value(op.operands[1])
        if weighted is not None and bias is not None:
            return weighted, op, bias
        return None, None, None
    return _weighted_producer(value, trained), None, None


def _const_and_other(op: ir.Operation) -> tuple[ir.Value, ir.Value] | None:
    lhs, rhs = op.operands[0], op.operands[1]
    if constant_value(rhs) is not None:
        return lhs, rhs
    if constant_value(lhs) is not None and op.name in ("tf.Mul", "tf.AddV2", "tf.Add"):
        return rhs, lhs
    return None


def fold_batch_norms(block: ir.Block) -> int:
    """Fold per-channel Mul/Add/Sub and inference FusedBatchNormV3 into conv/matmul; returns the count."""
    folded = 0
    for op in list(block.operations):
        op = op.operation
        if op.name == "tf.FusedBatchNormV3":
            folded += _fold_fused_batch_norm(op)
        elif op.name in FOLDED_ARITHMETIC:
            folded += _fold_arithmetic(op)
    return folded


def _fold_arithmetic(op: ir.Operation) -> int:
    pair = _const_and_other(op)
    if pair is None or op.results[0].type != pair[0].type:
        return 0
    value, const = pair
    weighted, bias_add, bias = _with_bias(value, trained=op.name != "tf.Mul")
    if weighted is None:
        return 0
    channels = _output_channels(weighted)
    vector = _per_channel(const, channels)
    if vector is None:
        return 0
    if op.name == "tf.Mul":
        _rescale_weight(weighted, vector)
        if bias_add is None:
            replace_op(op, [weighted.results[0]])
        else:
            new_value = _bias_add(weighted.results[0], (bias * vector).astype(bias.dtype), op.location, op)
            replace_op(op, [new_value])
            bias_add.erase()
        return 1
    delta = -vector if op.name == "tf.Sub" else vector
    total = delta if bias is None else bias + delta
    new_value = _bias_add(weighted.results[0], total.astype(vector.dtype), op.location, op)
    replace_op(op, [new_value])
    if bias_add is not None:
        bias_add.erase()
    return 1


def _fold_fused_batch_norm(op: ir.Operation) -> int:
    if bool_attribute(op, "is_training") or any(list(r.uses) for r in list(op.results)[1:]):
        return 0
    weighted = _weighted_producer(op.operands[0])
    if weighted is None:
        return 0
    params = [_per_channel(v, _output_channels(weighted)) for v in list(op.operands)[1:5]]
    if any(p is None for p in params):
        return 0
    scale, offset, mean, variance = (p.astype(np.float32) for p in params)
    epsilon = ir.FloatAttr(op.attributes["epsilon"]).value if "epsilon" in op.attributes else 1e-4
    multiplier = scale / np.sqrt(variance + np.float32(epsilon))
    _rescale_weight(weighted, multiplier.astype(np.float32))
    new_value = _bias_add(weighted.results[0], (offset - mean * multiplier).astype(np.float32), op.location, op)
    replace_op(op, [new_value] + [new_value] * (len(op.results) - 1))
    return 1
