"""Checks that an op has what the passes read from it, before they read it.

TensorFlow ops are unregistered in MLIR, so nothing verifies them: a Conv2D without `strides`,
a MatMul on vectors or a one-operand BiasAdd would surface as a KeyError or IndexError from
inside a pass. Each pass instead calls `verify_ops` on the ops it reads; what is missing or
malformed becomes a CompileError at the op's location, printed as `file:line:col: error: ...`:

    'tf.Conv2D' op requires attribute 'strides' (an array of integers)
    'tf.MatMul' op operand #0 must have rank 2, got tensor<3xf32>

`TF_OPS` says what the passes read from each tf op (operand and result counts, the ranks of
ranked operands, attributes and their kinds); tfq ops declare theirs next to their definition.
A pass names the ops it reads with `reading(...)` and checks them all with `verify_ops` first.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tfquant.mlir import CompileError, ir, walk_ops


@dataclass(frozen=True)
class AttrKind:
    """A kind of attribute, as an error names it."""
    description: str
    matches: Callable[[ir.Attribute], bool]


STRING = AttrKind("a string", lambda a: isinstance(a, ir.StringAttr))
BOOL = AttrKind("a bool", lambda a: isinstance(a, ir.BoolAttr))
INT = AttrKind("an integer", lambda a: isinstance(a, ir.IntegerAttr))
FLOAT = AttrKind("a float", lambda a: isinstance(a, ir.FloatAttr))
INTS = AttrKind("an array of integers",
                lambda a: isinstance(a, ir.ArrayAttr) and all(isinstance(e, ir.IntegerAttr) for e in a))
# NHWC strides and dilations: one per dimension.
INTS_4 = AttrKind("an array of 4 integers", lambda a: INTS.matches(a) and len(a) == 4)
FLOATS = AttrKind("a dense float tensor", lambda a: isinstance(a, ir.DenseFPElementsAttr))
DICT = AttrKind("a dictionary", lambda a: isinstance(a, ir.DictAttr))
SYMBOL = AttrKind("a symbol reference", lambda a: isinstance(a, ir.FlatSymbolRefAttr))


def exactly(count: int) -> range:
    return range(count, count + 1)


def at_least(count: int) -> range:
    return range(count, sys.maxsize)


@dataclass(frozen=True)
class OpSpec:
    """What the passes read from one kind of op, and so require of it."""
    operands: range
    results: range = exactly(1)
    # Operand index -> the ranks it may have. An unranked operand passes: its rank is unknown,
    # not wrong, and a pass that needs it static checks that itself.
    ranks: Mapping[int, range] = field(default_factory=dict)
    float_operands: tuple[int, ...] = ()
    required: Mapping[str, AttrKind] = field(default_factory=dict)
    optional: Mapping[str, AttrKind] = field(default_factory=dict)


_CONVOLUTION = OpSpec(exactly(2), ranks={0: exactly(4), 1: exactly(4)}, required={"strides": INTS_4, "padding": STRING},
                      optional={"data_format": STRING, "dilations": INTS_4, "explicit_paddings": INTS})
_UNARY, _BINARY = OpSpec(exactly(1)), OpSpec(exactly(2))
_CALL = OpSpec(at_least(0), at_least(0), required={"f": SYMBOL},
               optional={"config": STRING, "config_proto": STRING, "executor_type": STRING,
                         "_tfl_quant_trait": STRING})

TF_OPS: dict[str, OpSpec] = {
    "tf.Conv2D": _CONVOLUTION,
    "tf.DepthwiseConv2dNative": _CONVOLUTION,
    "tf.MatMul": OpSpec(exactly(2), ranks={0: exactly(2), 1: exactly(2)},
                        optional={"transpose_a": BOOL, "transpose_b": BOOL}),
    "tf.BatchMatMulV2": OpSpec(exactly(2), ranks={0: at_least(2), 1: at_least(2)},
                               optional={"adj_x": BOOL, "adj_y": BOOL}),
    "tf.Einsum": OpSpec(at_least(1), required={"equation": STRING}),
    "tf.GatherV2": OpSpec(exactly(3), optional={"batch_dims": INT}),
    "tf.BiasAdd": OpSpec(exactly(2), ranks={1: exactly(1)}, optional={"data_format": STRING}),
    "tf.FusedBatchNormV3": OpSpec(exactly(5), exactly(6), ranks={i: exactly(1) for i in range(1, 5)},
                                  optional={"epsilon": FLOAT, "is_training": BOOL, "data_format": STRING}),
    "tf.Mul": _BINARY, "tf.AddV2": _BINARY, "tf.Add": _BINARY, "tf.Sub": _BINARY,
    "tf.Cast": _UNARY, "tf.Identity": _UNARY, "tf.MaxPool": _UNARY, "tf.Squeeze": _UNARY,
    "tf.Reshape": _BINARY, "tf.ExpandDims": _BINARY, "tf.Transpose": _BINARY, "tf.Pad": _BINARY,
    "tf.ConcatV2": OpSpec(at_least(2)),
    "tf.PartitionedCall": _CALL,
    "tf.StatefulPartitionedCall": _CALL,
}


def reading(*names: str) -> dict[str, OpSpec]:
    """What a pass reading the tf ops `names` checks: their entries of TF_OPS."""
    return {name: TF_OPS[name] for name in names}


def verify_ops(root: ir.Operation, specs: Mapping[str, OpSpec]) -> None:
    """`verify` every op under `root` that `specs` names, against its spec."""
    for op in walk_ops(root, lambda op: op.name in specs):
        verify(op, specs[op.name])


def verify(op: ir.Operation, spec: OpSpec) -> None:
    """Raise a CompileError at `op` unless it has the operands, results and attributes `spec` requires."""
    what = f"'{op.name}' op"
    check_count(op, "operand", len(op.operands), spec.operands, what)
    check_count(op, "result", len(op.results), spec.results, what)
    check_ranks(op, spec.ranks, what)
    for index in spec.float_operands:
        value_type = op.operands[index].type
        if not (isinstance(value_type, ir.ShapedType) and isinstance(ir.ShapedType(value_type).element_type,
                                                                     ir.FloatType)):
            raise CompileError(f"{what} operand #{index} must be a float tensor, got {value_type}", op.location)
    check_attributes(op.attributes, spec, what, op.location)


def check_ranks(op: ir.Operation, ranks: Mapping[int, range], what: str) -> None:
    """Raise unless each ranked operand named in `ranks` has one of its ranks."""
    for index, allowed in ranks.items():
        value_type = op.operands[index].type
        if isinstance(value_type, ir.RankedTensorType) and value_type.rank not in allowed:
            raise CompileError(f"{what} operand #{index} must have rank {_describe(allowed)}, got {value_type}",
                               op.location)


def check_attributes(attributes: Mapping[str, ir.Attribute], spec: OpSpec, what: str, loc: ir.Location) -> None:
    """Raise unless `attributes` hold each required attribute of `spec`, and each one present is of its kind."""
    for name, kind in spec.required.items():
        if name not in attributes:
            raise CompileError(f"{what} requires attribute '{name}' ({kind.description})", loc)
    for name, kind in {**spec.optional, **spec.required}.items():
        if name in attributes and not kind.matches(attributes[name]):
            raise CompileError(f"{what} attribute '{name}' must be {kind.description}, got {attributes[name]}", loc)


def check_count(op: ir.Operation, noun: str, count: int, allowed: range, what: str) -> None:
    """Raise unless `count` (of `op`'s operands, results, ...) is in `allowed`."""
    if count not in allowed:
        raise CompileError(f"{what} expects {_describe(allowed)} {noun}s, got {count}", op.location)


def _describe(allowed: range) -> str:
    if len(allowed) == 1:
        return str(allowed.start)
    return f"at least {allowed.start}" if allowed.stop == sys.maxsize else f"{allowed.start} to {allowed.stop - 1}"
