"""TensorFlow's quantized dtypes (qint8, qint32) beside tfquant's integer storage (i8, i32): the
kernels of the UNIFORM_QUANTIZED and ONEDNN opsets take qint tensors, the IR between them carries
the storage; a tf.Bitcast converts, and `fold_bitcast_pairs` removes the conversions that cancel.
"""
from __future__ import annotations

from tfquant.mlir import ir, ops_named, parse_type_cached
from tfquant.passes._quant import retyped
from tfquant.passes._tf_arith import emit
from tfquant.passes._tf_ops import defining_op, erase_dead_ops, function_blocks, named_loc, type_attr

# The storage integer type of each quantized TensorFlow type.
STORAGE_BITS = {"!tf_type.qint8": 8, "!tf_type.qint32": 32}


def qint(bits: int) -> ir.Type:
    return parse_type_cached(f"!tf_type.qint{bits}", ir.Context.current)


def bitcast(value: ir.Value, element: ir.Type, loc: ir.Location) -> ir.Value:
    return emit("tf.Bitcast", [value], retyped(value.type, element),
                {"T": type_attr(value), "type": ir.TypeAttr.get(element)}, named_loc(loc, "bitcast"))


def to_quantized(value: ir.Value, loc: ir.Location) -> ir.Value:
    """An int8 / int32 storage value as qint8 / qint32."""
    return bitcast(value, qint(ir.IntegerType(ir.ShapedType(value.type).element_type).width), loc)


def to_storage(value: ir.Value, loc: ir.Location) -> ir.Value:
    """A qint8 / qint32 value as its int8 / int32 storage."""
    return bitcast(value, ir.IntegerType.get_signless(STORAGE_BITS[str(ir.ShapedType(value.type).element_type)]),
                    loc)


def as_storage(value: ir.Value, loc: ir.Location) -> ir.Value:
    """A qint value as its integer storage, any other value as it is."""
    quantized = str(ir.ShapedType(value.type).element_type) in STORAGE_BITS
    return to_storage(value, loc) if quantized else value


def fold_bitcast_pairs(module_op: ir.Operation) -> None:
    """Bitcast(Bitcast(v)) back to v's type -> v: between two quantized ops (or a qcast and a
    quantized op) the int8 storage is converted out and back; then drop the dead Bitcasts and the
    weight constants that were rearranged into new ones."""
    for op in ops_named(module_op, "tf.Bitcast"):
        inner = defining_op(op.operands[0])
        if inner is not None and inner.name == "tf.Bitcast" and inner.operands[0].type == op.results[0].type:
            op.results[0].replace_all_uses_with(inner.operands[0])
    for block in function_blocks(module_op):
        erase_dead_ops(block, frozenset({"tf.Bitcast", "tf.Const"}))
