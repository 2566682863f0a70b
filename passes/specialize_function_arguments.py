"""tfq-specialize-function-arguments: give If branches and While bodies what every caller passes.

The importer passes a variable that an If branch or a While body reads in as an operand of the
functional op (its value, a `tf.Const` in the caller), and types each function argument as the
TensorFlow function declares it, unranked (`tensor<*xf32>`) for a branch's activation. Inside the
function the weight of a MatMul or Conv2D is then a block argument, which
tfq-lift-quantizable-spots-as-functions cannot lift, and the quantized activation has no rank
to lower. For each argument of a private function that functional ops call, where every call site
agrees, this pass

  * clones the `tf.Const` they all pass into the function and uses the clone instead of the
    argument:

      %w = "tf.Const"() {value = W}                func.func private @then(%a: ..., %w: ...) {
      "tf.If"(%c, %x, %w) {then_branch = @then}  ->  %w2 = "tf.Const"() {value = W}
                                                     ... uses %w2 where %w was used ...

  * gives the argument the type they all pass when it is a tensor type the argument's type is
    less static than (`tensor<*xf32>` -> `tensor<?x6x6x3xf32>`), for If/Case branches and
    PartitionedCall callees only (a While's loop-carried shapes may change from one iteration to
    the next).

Callers (lifted calls aside): If / StatelessIf / Case / StatelessCase branches (operand i + 1), PartitionedCall callees
(operand i), While / StatelessWhile cond and body (operand i) for constants only, and only when the
body passes the argument through unchanged (returns it as result i), so that it holds the constant
on every iteration. A function named any other way (a signature, another attribute) is left
alone. The pass repeats until nothing changes, so that constants reach nested branches.

Then an operand that no function of its op reads any more is dropped, with the argument (and, for
a While, the loop-carried value: its result is the operand, passed through), when the op is the
functions' only caller: otherwise the float weight would stay in the caller, passed in unread.
"""
from __future__ import annotations

from tfquant.mlir import ir, symbol_table, walk_ops
from tfquant.pass_registry import register_pass
from tfquant.passes._composite import is_lifted_call
from tfquant.passes._tf_ops import defining_op, string_attribute

# Functional op -> (its function attributes, how many leading operands are not passed to them).
FUNCTIONAL_OPS = {
    "tf.If": (("then_branch", "else_branch"), 1), "tf.StatelessIf": (("then_branch", "else_branch"), 1),
    "tf.Case": (("branches",), 1), "tf.StatelessCase": (("branches",), 1),
    "tf.While": (("cond", "body"), 0), "tf.StatelessWhile": (("cond", "body"), 0),
    "tf.PartitionedCall": (("f",), 0), "tf.StatefulPartitionedCall": (("f",), 0),
}
LOOPS = frozenset({"tf.While", "tf.StatelessWhile"})


@register_pass("tfq-specialize-function-arguments",
               "Clone into If/While/Case functions the constants every caller passes; type branch "
               "arguments as every caller passes them")
def specialize_function_arguments(module_op: ir.Operation) -> None:
    functions = symbol_table(module_op)
    while True:
        calls = _call_sites(module_op, functions)
        changed = False
        for (name, index), operands in calls.items():
            block = functions[name].regions[0].blocks[0]
            argument = block.arguments[index]
            const = _common_constant(operands, index, functions)
            if const is not None and any(use.owner != _terminator(block) for use in argument.uses):
                _sink(functions[name], index, const)
                changed = True
            refined = _common_type(operands, argument.type)
            if refined is not None:
                _retype(functions[name], index, refined)
                changed = True
        if not changed:
            break
    for op, indices in _unread_operands(module_op, functions):
        _drop_operands(op, indices, functions)


def _call_sites(module_op: ir.Operation, functions: dict[str, ir.Operation]) -> dict[tuple[str, int], list]:
    """(function, argument index) -> (functional op, operand passed there), one per call site, for the
    private functions only functional ops name."""
    calls: dict[tuple[str, int], list] = {}
    for op in _functional_ops(module_op):
        skipped = FUNCTIONAL_OPS[op.name][1]
        for name in _callees(op):
            if name not in functions or string_attribute(functions[name], "sym_visibility") != "private":
                continue
            for index in range(len(functions[name].regions[0].blocks[0].arguments)):
                calls.setdefault((name, index), []).append((op, op.operands[skipped + index]))
    elsewhere = _named_elsewhere(module_op)
    return {key: sites for key, sites in calls.items() if key[0] not in elsewhere}


def _functional_ops(module_op: ir.Operation) -> list[ir.Operation]:
    """The ops that call functions with their operands; not lifted calls, whose composite functions
    take their weights as arguments on purpose."""
    return walk_ops(module_op, lambda op: op.name in FUNCTIONAL_OPS and not is_lifted_call(op))


def _symbols(attr: ir.Attribute) -> list[str]:
    if isinstance(attr, ir.ArrayAttr):
        return [name for element in attr for name in _symbols(element)]
    return [attr.value] if isinstance(attr, ir.FlatSymbolRefAttr) else []


def _named_elsewhere(module_op: ir.Operation) -> set[str]:
    """Symbols named by an attribute that is not a functional op's function attribute."""
    names: set[str] = set()

    def visit(op: ir.Operation) -> ir.WalkResult:
        ignored = FUNCTIONAL_OPS[op.name][0] if op.name in FUNCTIONAL_OPS else ()
        for attr_name, attr in op.attributes.items():
            if attr_name not in ignored:
                names.update(_symbols(attr))
        return ir.WalkResult.ADVANCE

    module_op.walk(visit)
    return names


def _common_constant(sites: list, index: int, functions: dict[str, ir.Operation]) -> ir.Operation | None:
    """The tf.Const that every call site passes (equal values), None if any passes something else."""
    consts = [defining_op(operand) for _, operand in sites]
    if any(c is None or c.name != "tf.Const" for c in consts):
        return None
    if any(op.name in LOOPS and not _passes_through(op, index, functions) for op, _ in sites):
        return None
    first = consts[0]
    return first if all(c.attributes["value"] == first.attributes["value"] for c in consts) else None


def _passes_through(loop: ir.Operation, index: int, functions: dict[str, ir.Operation]) -> bool:
    """Whether a While's body returns its argument `index` unchanged as result `index`."""
    block = functions[_symbols(loop.attributes["body"])[0]].regions[0].blocks[0]
    return _terminator(block).operands[index] == block.arguments[index]


def _common_type(sites: list, current: ir.Type) -> ir.Type | None:
    """The tensor type every non-loop call site passes, if it is more static than `current`."""
    if any(op.name in LOOPS for op, _ in sites):
        return None
    types = {str(operand.type) for _, operand in sites}
    if len(types) != 1:
        return None
    passed = sites[0][1].type
    return passed if _refines(passed, current) else None


def _refines(passed: ir.Type, current: ir.Type) -> bool:
    """Whether `passed` is a ranked tensor type that `current` (same element type) only generalizes."""
    if passed == current or not isinstance(passed, ir.RankedTensorType) or not isinstance(current, ir.ShapedType):
        return False
    if ir.ShapedType(passed).element_type != ir.ShapedType(current).element_type:
        return False
    if not isinstance(current, ir.RankedTensorType):
        return True
    return current.rank == passed.rank and all(
        c == p or ir.ShapedType.is_dynamic_size(c) for c, p in zip(current.shape, passed.shape))


def _sink(fn: ir.Operation, index: int, const: ir.Operation) -> None:
    """Use a clone of `const`, at the start of `fn`, wherever `fn` uses its argument `index` but in
    its return (a While body still passes the argument through)."""
    block = fn.regions[0].blocks[0]
    with ir.InsertionPoint.at_block_begin(block):
        clone = const.clone()
    block.arguments[index].replace_all_uses_except(clone.results[0], _terminator(block))


def _terminator(block: ir.Block) -> ir.Operation:
    return block.operations[len(block.operations) - 1].operation


def _unread_operands(module_op: ir.Operation, functions: dict[str, ir.Operation]) -> list[tuple[ir.Operation, set[int]]]:
    """Each functional op that is the only caller of its functions, with the indices of the
    arguments none of them reads."""
    sites = _call_sites(module_op, functions)
    callers: dict[str, set] = {}
    for (name, _), calls in sites.items():
        callers.setdefault(name, set()).update(op for op, _ in calls)
    unread = []
    for op in _functional_ops(module_op):
        names = _callees(op)
        if not names or any(n not in callers or callers[n] != {op} for n in names):
            continue
        count = len(functions[names[0]].regions[0].blocks[0].arguments)
        indices = {i for i in range(count) if all(_unread(functions[n], i, op.name in LOOPS) for n in names)}
        if indices:
            unread.append((op, indices))
    return unread


def _callees(op: ir.Operation) -> list[str]:
    return [n for a in FUNCTIONAL_OPS[op.name][0] if a in op.attributes for n in _symbols(op.attributes[a])]


def _unread(fn: ir.Operation, index: int, in_loop: bool) -> bool:
    """Whether `fn` does not read argument `index`; a loop function may only pass it through."""
    block = fn.regions[0].blocks[0]
    argument = block.arguments[index]
    users = [use.owner for use in argument.uses]
    if not in_loop:
        return not users
    terminator = _terminator(block)
    return all(user == terminator for user in users) and (
        not users or (len(terminator.operands) > index and terminator.operands[index] == argument
                      and len(users) == 1))


def _drop_operands(op: ir.Operation, indices: set[int], functions: dict[str, ir.Operation]) -> None:
    """Drop the arguments `indices` from `op`'s functions and the operands from `op` (for a While,
    also the loop-carried results, which are the operands passed through)."""
    in_loop = op.name in LOOPS
    body = _symbols(op.attributes["body"])[0] if in_loop else None
    for name in dict.fromkeys(_callees(op)):
        _drop_arguments(functions[name], indices, drop_results=name == body)
    skipped = FUNCTIONAL_OPS[op.name][1]
    dropped = [op.operands[skipped + i] for i in sorted(indices)]
    attributes = {name: attr for name, attr in op.attributes.items()}
    for name in ("Tin", "T") + (("output_shapes",) if in_loop else ()):
        if name in attributes:
            attributes[name] = _without(attributes[name], indices)
    results = list(op.results)
    if in_loop:
        for i in indices:
            results[i].replace_all_uses_with(op.operands[i])
        results = [r for i, r in enumerate(results) if i not in indices]
    with ir.InsertionPoint(op):
        new = ir.Operation.create(op.name, results=[r.type for r in results],
                                  operands=[v for i, v in enumerate(op.operands) if i - skipped not in indices],
                                  attributes=attributes, loc=op.location)
    for old, replacement in zip(results, new.results):
        old.replace_all_uses_with(replacement)
    op.erase()
    for operand in dropped:
        producer = defining_op(operand)
        if producer is not None and producer.name == "tf.Const" and not list(operand.uses):
            producer.erase()


def _drop_arguments(fn: ir.Operation, indices: set[int], drop_results: bool) -> None:
    """Erase the arguments `indices` of `fn` (and the same results, for a While body passing them through)."""
    block = fn.regions[0].blocks[0]
    fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
    results = list(fn_type.results)
    if drop_results:
        terminator = _terminator(block)
        with ir.InsertionPoint(terminator):
            ir.Operation.create(terminator.name, loc=terminator.location,
                                operands=[v for i, v in enumerate(terminator.operands) if i not in indices])
        terminator.erase()
        results = [t for i, t in enumerate(results) if i not in indices]
        if "res_attrs" in fn.attributes:
            fn.attributes["res_attrs"] = _without(fn.attributes["res_attrs"], indices)
    for index in sorted(indices, reverse=True):
        block.erase_argument(index)
    inputs = [t for i, t in enumerate(fn_type.inputs) if i not in indices]
    fn.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(inputs, results))
    if "arg_attrs" in fn.attributes:
        fn.attributes["arg_attrs"] = _without(fn.attributes["arg_attrs"], indices)


def _without(attr: ir.Attribute, indices: set[int]) -> ir.ArrayAttr:
    return ir.ArrayAttr.get([a for i, a in enumerate(ir.ArrayAttr(attr)) if i not in indices])


def _retype(fn: ir.Operation, index: int, new_type: ir.Type) -> None:
    """Type argument `index` of `fn` (its block argument and its function type) as `new_type`."""
    fn.regions[0].blocks[0].arguments[index].set_type(new_type)
    fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
    inputs = list(fn_type.inputs)
    inputs[index] = new_type
    fn.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(inputs, list(fn_type.results)))
