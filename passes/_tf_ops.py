"""Helpers the passes share for reading and building generic tf.* ops."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfquant.mlir import ir, name_of


def defining_op(value: ir.Value) -> ir.Operation | None:
    """The op producing `value`, None for a block argument."""
    owner = value.owner
    return owner.operation if isinstance(owner, ir.OpView) or isinstance(owner, ir.Operation) else None


def constant_value(value: ir.Value) -> np.ndarray | None:
    """The numpy value of `value` if a tf.Const defines it (read-only view), else None."""
    op = defining_op(value)
    if op is None or op.name != "tf.Const":
        return None
    attr = op.attributes["value"]
    if not isinstance(attr, ir.DenseElementsAttr):
        return None
    return np.asarray(attr)


def trained_weight(value: ir.Value) -> tuple[ir.Value, ir.Value] | None:
    """(the float constant, the qcast result) when `value` is a QAT weight `dcast(qcast(tf.Const))`."""
    dcast = defining_op(value)
    if dcast is None or dcast.name != "quant.dcast":
        return None
    qcast = defining_op(dcast.operands[0])
    if qcast is None or qcast.name != "quant.qcast" or constant_value(qcast.operands[0]) is None:
        return None
    return qcast.operands[0], dcast.operands[0]


def weight_constant(value: ir.Value) -> np.ndarray | None:
    """The float weight feeding `value`: a tf.Const, or the constant of a QAT weight's qcast/dcast pair."""
    trained = trained_weight(value)
    return constant_value(trained[0] if trained is not None else value)


def uses(value: ir.Value) -> list[ir.Operation]:
    """The ops using `value` (one entry per use)."""
    return [use.owner.operation if isinstance(use.owner, ir.OpView) else use.owner for use in value.uses]


def has_one_use(value: ir.Value) -> bool:
    return len(list(value.uses)) == 1


def element_type(value: ir.Value) -> ir.Type:
    return ir.ShapedType(value.type).element_type


def static_shape(value: ir.Value) -> list[int] | None:
    """The shape of a value whose type is fully static, else None."""
    value_type = value.type
    if not isinstance(value_type, ir.RankedTensorType) or not value_type.has_static_shape:
        return None
    return list(value_type.shape)


def create_op(name: str, operands: Sequence[ir.Value], result_types: Sequence[ir.Type],
              attributes: dict[str, ir.Attribute], loc: ir.Location) -> ir.Operation:
    """A generic op at the current insertion point."""
    return ir.Operation.create(name, results=list(result_types), operands=list(operands),
                               attributes=attributes, loc=loc)


def create_const(array: np.ndarray, loc: ir.Location) -> ir.Value:
    """A tf.Const holding `array`, at the current insertion point."""
    # Built here rather than with tf_attrs.dense_attr, which would import TensorFlow (4 s).
    array = np.require(array, requirements="C")
    attr = ir.DenseElementsAttr.get(array, signless=array.dtype.kind != "u")
    return create_op("tf.Const", [], [attr.type], {"value": attr, "dtype": ir.TypeAttr.get(attr.type.element_type)},
                     loc).result


def type_attr(value: ir.Value) -> ir.TypeAttr:
    """The `T` attribute for an op on `value`."""
    return ir.TypeAttr.get(element_type(value))


def named_loc(base: ir.Location, suffix: str) -> ir.Location:
    """A name location `<base's name>/<suffix>`."""
    name = name_of(base)
    return ir.Location.name(f"{name}/{suffix}" if name else suffix)


def replace_op(op: ir.Operation, new_values: Sequence[ir.Value]) -> None:
    """Replace every result of `op` by `new_values` and erase it."""
    for result, new in zip(op.results, new_values):
        result.replace_all_uses_with(new)
    op.erase()


def erase_dead_ops(block: ir.Block, removable: frozenset[str]) -> int:
    """Erase ops named in `removable` whose results are unused, repeatedly; returns how many."""
    erased = 0
    changed = True
    while changed:
        changed = False
        for op in reversed(list(block.operations)):
            op = op.operation
            if op.name in removable and op.results and all(not list(r.uses) for r in op.results):
                op.erase()
                erased += 1
                changed = True
    return erased


def function_blocks(module_op: ir.Operation) -> list[ir.Block]:
    """The entry blocks of every func.func in a module op."""
    blocks = []
    for op in module_op.regions[0].blocks[0].operations:
        if op.operation.name == "func.func" and op.operation.regions[0].blocks:
            blocks.append(op.operation.regions[0].blocks[0])
    return blocks


def is_float32(value: ir.Value) -> bool:
    """Whether `value` is a tensor of f32."""
    return isinstance(value.type, ir.ShapedType) and str(element_type(value)) == "f32"


def is_float(value: ir.Value) -> bool:
    """Whether `value` is a tensor of a floating-point element type."""
    return isinstance(value.type, ir.ShapedType) and isinstance(element_type(value), ir.FloatType)


def string_attribute(op: ir.Operation, name: str, default: str = "") -> str:
    """The value of a string attribute of `op`, `default` when it is absent."""
    return ir.StringAttr(op.attributes[name]).value if name in op.attributes else default


def bool_attribute(op: ir.Operation, name: str) -> bool:
    """The value of a bool attribute of `op`, false when it is absent (as TensorFlow defaults them)."""
    return name in op.attributes and ir.BoolAttr(op.attributes[name]).value


def create_partitioned_call(callee: str, operands: Sequence[ir.Value], result_types: Sequence[ir.Type],
                            loc: ir.Location, attributes: dict[str, ir.Attribute] | None = None) -> ir.Operation:
    """A `tf.PartitionedCall` of `@callee` at the current insertion point, with the `Tin`/`Tout` type
    lists TensorFlow's op requires (the exporter rebuilds it with Graph.create_op)."""
    def types(element_types: Sequence[ir.Type]) -> ir.ArrayAttr:
        return ir.ArrayAttr.get([ir.TypeAttr.get(ir.ShapedType(t).element_type) for t in element_types])
    empty = ir.StringAttr.get("")
    return create_op("tf.PartitionedCall", operands, result_types,
                     {"f": ir.FlatSymbolRefAttr.get(callee), "config": empty, "config_proto": empty,
                      "executor_type": empty, "Tin": types([v.type for v in operands]), "Tout": types(result_types),
                      **(attributes or {})}, loc)


CALL_OPS = frozenset({"tf.PartitionedCall", "tf.StatefulPartitionedCall"})


def callee_name(call: ir.Operation) -> str:
    """The function a tf.PartitionedCall / tf.StatefulPartitionedCall calls ("" when it has no `f`)."""
    return ir.FlatSymbolRefAttr(call.attributes["f"]).value if "f" in call.attributes else ""


def referenced_symbols(module_op: ir.Operation) -> set[str]:
    """The names that a FlatSymbolRefAttr attribute of any op in the module refers to."""
    names: set[str] = set()

    def visit(op: ir.Operation) -> ir.WalkResult:
        for name in op.attributes:
            attr = op.attributes[name]
            if isinstance(attr, ir.FlatSymbolRefAttr):
                names.add(attr.value)
        return ir.WalkResult.ADVANCE

    module_op.walk(visit)
    return names
