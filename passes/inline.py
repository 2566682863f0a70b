"""tfq-inline: inline the calls of composite and quantized functions, then drop those functions.

Rewrites `%y = tf.PartitionedCall|tf.StatefulPartitionedCall(%a...) {f = @F}`, where @F is a
private single-block function named `composite_*` or `quantized_*`, into a copy of @F's body
(its arguments replaced by %a..., %y by the returned values), repeated until no such call is
left; then erases the private `composite_*` / `quantized_*` functions nothing refers to. The
exported graph is then flat, its int8 ops visible to users and tests.
"""
from __future__ import annotations

from tfquant.mlir import ir, symbol_table
from tfquant.pass_registry import register_pass
from tfquant.passes._tf_ops import (CALL_OPS, callee_name, function_blocks, referenced_symbols, replace_op,
                                    string_attribute)
from tfquant.passes._verify import reading, verify_ops

INLINED_PREFIXES = ("composite_", "quantized_")


@register_pass("tfq-inline", "Inline calls of private composite_*/quantized_* functions and erase those functions")
def inline(module_op: ir.Operation) -> None:
    verify_ops(module_op, reading(*CALL_OPS))
    functions = {name: fn for name, fn in symbol_table(module_op).items() if _is_inlinable(fn)}
    # Inlining may expose a call from the inlined body: repeat until none is left.
    while sum(_inline_calls(block, functions) for block in function_blocks(module_op)):
        pass
    referenced = referenced_symbols(module_op)
    for name, fn in functions.items():
        if name not in referenced:
            fn.erase()


def _is_inlinable(fn: ir.Operation) -> bool:
    name = string_attribute(fn, "sym_name")
    return (name.startswith(INLINED_PREFIXES) and string_attribute(fn, "sym_visibility") == "private"
            and len(fn.regions[0].blocks) == 1)


def _inline_calls(block: ir.Block, functions: dict[str, ir.Operation]) -> int:
    inlined = 0
    for op in [op.operation for op in block.operations]:
        if op.name in CALL_OPS:
            callee = callee_name(op)
            if callee in functions and block.owner.operation != functions[callee]:
                inline_call(op, functions[callee])
                inlined += 1
    return inlined


def inline_call(call: ir.Operation, function: ir.Operation) -> None:
    """Replace `call` by a copy of `function`'s body."""
    body = function.regions[0].blocks[0]
    mapping: dict[ir.Value, ir.Value] = dict(zip(body.arguments, call.operands))
    returned: list[ir.Value] = []
    with ir.InsertionPoint(call):
        for op in body.operations:
            op = op.operation
            if op.name == "func.return":
                returned = [mapping.get(v, v) for v in op.operands]
                break
            clone = op.clone()
            _remap_operands(clone, mapping)
            mapping.update(zip(op.results, clone.results))
    replace_op(call, returned)


def _remap_operands(op: ir.Operation, mapping: dict[ir.Value, ir.Value]) -> None:
    """Point `op`'s operands, and those of ops nested in its regions, at the caller's values."""
    def visit(nested: ir.Operation) -> ir.WalkResult:
        for index, value in enumerate(nested.operands):
            if value in mapping:
                nested.operands[index] = mapping[value]
        return ir.WalkResult.ADVANCE

    op.walk(visit)
